/**
 * Where loadModel's `weightCache` keeps converted weights, and the key that says whether a cache
 * file matches this checkpoint and these options. The file itself is written and checked
 * natively (native/models/weight_cache.h): TypeScript only names it.
 * @internal
 * @module
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, realpath, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { inputError } from '../errors.js';

/**
 * Bumped whenever the conversion changes: old files then never match (a new name). A change of the
 * converted layouts bumps the native file version instead (native/models/weight_cache.cpp): the
 * old file, at the same name, is then refused and rewritten in place.
 */
// 2: q4 in 64-groups where the input size allows, scales and zero points fitted (native/core/weight_quant.h).
// 3: q8 in 64-groups where the input size allows.
export const WEIGHT_CACHE_VERSION = 3;

/** `$XDG_CACHE_HOME/qwenvl/weights`, else `~/.cache/qwenvl/weights`. */
export function userWeightCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  return join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.cache'), 'qwenvl', 'weights');
}

async function writable(dir: string): Promise<boolean> {
  try {
    await access(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The cache file for a checkpoint's weight files converted as `text`/`vision` say: next to the
 * checkpoint when `option` is true and that folder is writable (else, and for a Hub download whose
 * snapshot folder belongs to the Hub cache, the user cache folder), or in the folder `option` names.
 *
 * The name says which checkpoint and conversion the file is for (the library's cache version, the
 * conversions, the weight files' names and, in a folder other than the checkpoint's own, the
 * checkpoint's real path), so a checkpoint rewritten since has its file replaced rather than a
 * second one of gigabytes left beside it. The key, checked against the file's header, says which
 * state of those files it holds: each one's size, modification time and change time. The change
 * time catches a rewrite that kept the size and had its modification time set back (a copy that
 * preserves timestamps), which the user cannot set.
 */
export async function weightCachePlan(
  option: boolean | string,
  dir: string,
  weightFiles: readonly string[],
  text: string,
  vision: string,
  fromHub = false,
): Promise<{ path: string; key: string }> {
  const files = [];
  for (const f of [...weightFiles].sort()) {
    const s = await stat(f);
    // The change time in whole milliseconds: a key then keeps one length across rewrites of the same files.
    files.push({ name: basename(f), size: s.size, mtimeMs: s.mtimeMs, ctimeMs: Math.floor(s.ctimeMs) });
  }
  const key = JSON.stringify({ version: WEIGHT_CACHE_VERSION, text, vision, files });
  let folder: string;
  if (option === true) {
    folder = !fromHub && (await writable(dir)) ? dir : userWeightCacheDir();
  } else {
    folder = option as string;
  }
  try {
    await mkdir(folder, { recursive: true });
  } catch (e) {
    throw inputError(`loadModel: options.weightCache: cannot create ${folder} (${(e as Error).message})`);
  }
  // Next to the checkpoint the path is left out: a checkpoint folder moved with its cache file keeps it.
  const [home, there] = await Promise.all([realpath(dir), realpath(folder)]);
  const checkpoint = home === there ? null : home;
  const name = JSON.stringify({ version: WEIGHT_CACHE_VERSION, text, vision, checkpoint, files: files.map((f) => f.name) });
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 16);
  return { path: join(folder, `qwenvl-${text}-${vision}-${hash}.weights`), key };
}
