/**
 * The media policy: which image and video sources a request may name, how large each may be and
 * how many a request may hold. Every rule is checked before anything is read or decoded, so a
 * server can hand client requests to the library (see README, "Untrusted input / servers").
 *
 * A policy is set per model (`LoadOptions.media`) and per request (`media` in the options
 * of chat, stream, prepare and estimateTokens). A request policy can only narrow the model's:
 * numbers take the smaller value, and a local file must pass the folder rules of both.
 * @module
 */
import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, sep } from 'node:path';
import { inputError } from '../errors.js';

/**
 * Local files (paths and `file:` URLs): `'allow'` any, `'deny'` none, or a list of folders a
 * file's real path (symlinks and `../` resolved) must lie within.
 */
export type LocalFilesRule = 'allow' | 'deny' | readonly string[];

/** Limits on the images and videos of a request (all optional; see {@link DEFAULT_MEDIA_POLICY}). */
export interface MediaPolicy {
  /** Which local files may be read. Default `'allow'` (a local program expects paths to work). */
  localFiles?: LocalFilesRule;
  /**
   * Most encoded bytes of one image (a file's size, a Buffer's length, a `data:` URL's decoded
   * length estimated from its text before decoding). Default 64 MiB.
   */
  maxImageBytes?: number;
  /** Most bytes of one video file. Default: no limit (files are decoded as a stream). */
  maxVideoBytes?: number;
  /** Most image parts in one request (all conversations of a batch together). Default 1024. */
  maxImages?: number;
  /** Most video parts in one request. Default 64. */
  maxVideos?: number;
  /**
   * Largest width × height of an image or video frame, read from the header before decoding.
   * Default: no limit beyond the model's `maxInputPixels`.
   */
  maxInputPixels?: number;
}

/** A validated policy with every limit set; local folder rules are lists of real paths. @internal */
export interface ResolvedMediaPolicy {
  /** `'allow'`, `'deny'`, or folder lists: a file must lie within one folder of every list. */
  readonly localFiles: 'allow' | 'deny' | readonly (readonly string[])[];
  readonly maxImageBytes: number;
  readonly maxVideoBytes: number;
  readonly maxImages: number;
  readonly maxVideos: number;
  readonly maxInputPixels: number;
}

/** The library defaults, meant for a local program (a server should narrow them; see README). */
export const DEFAULT_MEDIA_POLICY: Readonly<Required<Omit<MediaPolicy, 'localFiles'>>> & { localFiles: 'allow' } = Object.freeze({
  localFiles: 'allow',
  maxImageBytes: 64 * 2 ** 20,
  maxVideoBytes: Infinity,
  maxImages: 1024,
  maxVideos: 64,
  maxInputPixels: Infinity,
});

const resolved = new WeakSet<object>();

function freeze(p: ResolvedMediaPolicy): ResolvedMediaPolicy {
  const out = Object.freeze({ ...p });
  resolved.add(out);
  return out;
}

const DEFAULT_RESOLVED = freeze({ ...DEFAULT_MEDIA_POLICY });

const LIMITS = ['maxImageBytes', 'maxVideoBytes', 'maxImages', 'maxVideos', 'maxInputPixels'] as const;
/** Limits where 0 makes sense (no images, no videos); the byte and pixel limits need at least 1. */
const ZERO_OK = new Set<string>(['maxImages', 'maxVideos']);

function checkLimit(name: string, v: unknown, where: string): number {
  const min = ZERO_OK.has(name) ? 0 : 1;
  if (typeof v !== 'number' || !(v === Infinity || (Number.isSafeInteger(v) && v >= min))) {
    throw inputError(`${where}.${name} must be an integer >= ${min} (or Infinity for no limit), got ${String(v)}`);
  }
  return v;
}

async function resolveRoots(roots: readonly unknown[], where: string): Promise<string[]> {
  if (roots.length === 0) throw inputError(`${where}.localFiles: an empty folder list allows nothing; use 'deny'`);
  const out: string[] = [];
  for (const root of roots) {
    if (typeof root !== 'string' || root.length === 0) throw inputError(`${where}.localFiles: folders must be non-empty strings`);
    let real: string;
    try {
      real = await realpath(root);
      if (!(await stat(real)).isDirectory()) throw new Error('not a folder');
    } catch {
      // The caller's own configuration, not a client's input: naming the folder is safe.
      throw inputError(`${where}.localFiles: "${root}" is not an existing folder`);
    }
    out.push(real);
  }
  return out;
}

/** Both rules: 'deny' wins, 'allow' yields, folder lists all apply. */
function narrowFiles(a: ResolvedMediaPolicy['localFiles'], b: ResolvedMediaPolicy['localFiles']): ResolvedMediaPolicy['localFiles'] {
  if (a === 'deny' || b === 'deny') return 'deny';
  if (a === 'allow') return b;
  if (b === 'allow') return a;
  return [...a, ...b];
}

function narrow(a: ResolvedMediaPolicy, b: ResolvedMediaPolicy): ResolvedMediaPolicy {
  if (a === b) return a;
  const out = { localFiles: narrowFiles(a.localFiles, b.localFiles) } as Record<string, unknown>;
  for (const k of LIMITS) out[k] = Math.min(a[k], b[k]);
  return freeze(out as unknown as ResolvedMediaPolicy);
}

/** The library defaults, resolved. @internal */
export function defaultMediaPolicy(): ResolvedMediaPolicy {
  return DEFAULT_RESOLVED;
}

/**
 * Validates `policy` (folders must exist; they are resolved to real paths). Without `base` the
 * policy's fields replace the library defaults (a model's or a standalone call's policy); with
 * `base` they can only narrow it (a request's policy under its model's): a field left out keeps
 * the base's value, a limit set takes the smaller of the two, folder rules add up and 'deny'
 * wins. `where` names the option in error messages (E_INPUT).
 * @internal
 */
export async function resolveMediaPolicy(
  policy: MediaPolicy | ResolvedMediaPolicy | undefined,
  base?: ResolvedMediaPolicy,
  where = 'media',
): Promise<ResolvedMediaPolicy> {
  if (policy === undefined) return base ?? DEFAULT_RESOLVED;
  if (policy === null || typeof policy !== 'object' || Array.isArray(policy)) throw inputError(`${where} must be an object`);
  if (resolved.has(policy)) return base ? narrow(base, policy as ResolvedMediaPolicy) : (policy as ResolvedMediaPolicy);
  const known = new Set<string>(['localFiles', ...LIMITS]);
  for (const key of Object.keys(policy)) {
    if (!known.has(key)) throw inputError(`${where}: unknown option '${key}' (expected ${[...known].join(', ')})`);
  }
  const p = policy as MediaPolicy;
  const from = base ?? DEFAULT_RESOLVED;
  let localFiles: ResolvedMediaPolicy['localFiles'] = from.localFiles;
  if (p.localFiles !== undefined) {
    let own: ResolvedMediaPolicy['localFiles'];
    if (p.localFiles === 'allow' || p.localFiles === 'deny') own = p.localFiles;
    else if (Array.isArray(p.localFiles)) own = [await resolveRoots(p.localFiles, where)];
    else throw inputError(`${where}.localFiles must be 'allow', 'deny' or a list of folders, got ${String(p.localFiles)}`);
    localFiles = base ? narrowFiles(base.localFiles, own) : own;
  }
  const out = { localFiles } as Record<string, unknown>;
  for (const k of LIMITS) {
    if (p[k] === undefined) out[k] = from[k];
    else out[k] = base ? Math.min(base[k], checkLimit(k, p[k], where)) : checkLimit(k, p[k], where);
  }
  return freeze(out as unknown as ResolvedMediaPolicy);
}

/** Whether a real path lies within a real folder (the folder itself is not "within"). */
function within(folder: string, real: string): boolean {
  const rel = relative(folder, real);
  return rel !== '' && rel !== '..' && !rel.startsWith('..' + sep) && !isAbsolute(rel);
}

/** Whether the folder rules admit a file with this real path. @internal */
export function filePermitted(policy: ResolvedMediaPolicy, real: string): boolean {
  const rule = policy.localFiles;
  if (rule === 'allow') return true;
  if (rule === 'deny') return false;
  return rule.every((folders) => folders.some((f) => within(f, real)));
}
