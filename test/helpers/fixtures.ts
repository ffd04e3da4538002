/**
 * The one place tests (and benchmarks) get fixture paths from.
 *
 * The reference fixtures live in the repository under test/fixtures/<family>/ (checkpoint/,
 * inputs/, cases/<name>/). Their tokenizer.json files are stored split (one shared byte-level BPE
 * file plus each family's added_tokens) and joined back into checkpoint/tokenizer.json, a
 * git-ignored file, by {@link materializeTokenizers} (vitest's globalSetup calls it), so every test
 * sees ordinary checkpoint folders.
 *
 * A fuller fixture tree may sit beside the clone in ../shared/fixtures (CI puts one there with
 * more cases of the same kinds), or be named by QWENVL_FIXTURES. Tests that iterate fixture
 * folders or cases get the union of both trees, de-duplicated by folder and case name, the
 * external tree winning. Tests that name one family's files use the in-repo copy.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** The fixtures committed to this repository. */
export const REPO_FIXTURES = join(REPO, 'test', 'fixtures');

/** An optional fuller fixture tree outside the repository (used only when it exists). */
export const EXTERNAL_FIXTURES = process.env.QWENVL_FIXTURES ?? join(REPO, '..', 'shared', 'fixtures');

/** Published checkpoint configs of real models (small JSON files; see its README.md). */
export const MODEL_CONFIGS = join(REPO_FIXTURES, 'model-configs');

/** The shared part of every fixture tokenizer.json: everything but the added_tokens array. */
export const TOKENIZER_BASE = join(REPO_FIXTURES, 'tokenizer', 'base.json');

/** Per family, the file holding its tokenizer.json's added_tokens array. */
export const ADDED_TOKENS_FILE = 'tokenizer.added_tokens.json';

/** The four families of the in-repo fixtures. */
export const FAMILIES = ['qwen2-vl', 'qwen2.5-vl', 'qwen3-vl', 'qwen3-vl-moe'] as const;

/** The in-repo folder of a family (checkpoint/, inputs/, cases/, README.md, manifest.json). */
export function fixtureDir(family: string): string {
  return join(REPO_FIXTURES, family);
}

/** The in-repo checkpoint folder of a family. */
export function checkpointDir(family: string): string {
  return join(REPO_FIXTURES, family, 'checkpoint');
}

/** A fixture folder: a family's checkpoint/, inputs/ and cases/. */
export interface FixtureFolder {
  /** Folder name, e.g. qwen2-vl. */
  family: string;
  /** Absolute path of the folder. */
  dir: string;
}

/** One reference case, with the folder whose checkpoint/ and inputs/ it was made from. */
export interface FixtureCaseRef {
  family: string;
  name: string;
  /** The fixture folder holding checkpoint/ and inputs/ (meta.json paths are relative to it). */
  root: string;
  /** The case folder (meta.json, tensors.safetensors). */
  dir: string;
}

/** The fixture trees that exist, the external one first (it wins on equal names). */
export function fixtureRoots(): string[] {
  return [EXTERNAL_FIXTURES, REPO_FIXTURES].filter((r, i, all) => existsSync(r) && all.indexOf(r) === i);
}

function isFolder(dir: string): boolean {
  return existsSync(join(dir, 'checkpoint')) && existsSync(join(dir, 'cases'));
}

/** Every fixture folder of the trees, by name, the earlier tree winning; sorted by name. */
export function fixtureFolders(roots: readonly string[] = fixtureRoots()): FixtureFolder[] {
  const seen = new Map<string, string>();
  for (const root of roots) {
    for (const family of readdirSync(root).sort()) {
      const dir = join(root, family);
      if (!seen.has(family) && isFolder(dir)) seen.set(family, dir);
    }
  }
  return [...seen].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([family, dir]) => ({ family, dir }));
}

/** The folder a family's iterated tests use: the external one when it exists, else the in-repo one. */
export function folderOf(family: string): string {
  const hit = fixtureFolders().find((f) => f.family === family);
  if (!hit) throw new Error(`no fixture folder for ${family}`);
  return hit.dir;
}

/**
 * Every case (a folder with meta.json under <folder>/cases/) of the trees, de-duplicated by
 * family and case name with the earlier tree winning; sorted by family, then name.
 */
export function fixtureCaseRefs(family?: string, roots: readonly string[] = fixtureRoots()): FixtureCaseRef[] {
  const seen = new Map<string, FixtureCaseRef>();
  for (const root of roots) {
    for (const fam of readdirSync(root).sort()) {
      if (family !== undefined && fam !== family) continue;
      const folder = join(root, fam);
      if (!isFolder(folder)) continue;
      for (const name of readdirSync(join(folder, 'cases')).sort()) {
        const dir = join(folder, 'cases', name);
        const key = `${fam}/${name}`;
        if (!seen.has(key) && existsSync(join(dir, 'meta.json'))) seen.set(key, { family: fam, name, root: folder, dir });
      }
    }
  }
  return [...seen.values()].sort((a, b) => (a.family === b.family ? (a.name < b.name ? -1 : 1) : a.family < b.family ? -1 : 1));
}

// ---------------------------------------------------------------------------------------------
// Tokenizer de-duplication

const ADDED_KEY = '"added_tokens":';

/** Span [start, end) of the JSON array value of the first top-level "added_tokens" key. */
function addedTokensSpan(json: string): [number, number] {
  const key = json.indexOf(ADDED_KEY);
  if (key < 0 || json[key + ADDED_KEY.length] !== '[') throw new Error('tokenizer.json: no "added_tokens" array');
  const start = key + ADDED_KEY.length;
  let depth = 0;
  let inString = false;
  for (let i = start; i < json.length; i++) {
    const c = json[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') {
      depth--;
      if (depth === 0) return [start, i + 1];
    }
  }
  throw new Error('tokenizer.json: unterminated "added_tokens" array');
}

/** Splits a tokenizer.json's text into its shared part (added_tokens emptied) and its added_tokens array. */
export function splitTokenizer(json: string): { base: string; addedTokens: string } {
  const [start, end] = addedTokensSpan(json);
  return { base: `${json.slice(0, start)}[]${json.slice(end)}`, addedTokens: json.slice(start, end) };
}

/** The inverse of {@link splitTokenizer}: the original tokenizer.json text, byte for byte. */
export function joinTokenizer(base: string, addedTokens: string): string {
  const [start, end] = addedTokensSpan(base);
  if (end - start !== 2) throw new Error('tokenizer base: "added_tokens" is not empty');
  return base.slice(0, start) + addedTokens + base.slice(end);
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The sha256 the family's manifest.json records for checkpoint/tokenizer.json. */
function expectedTokenizerSha(family: string): string {
  const manifest = JSON.parse(readFileSync(join(fixtureDir(family), 'manifest.json'), 'utf8')) as {
    checkpoint_files: Record<string, { sha256: string }>;
  };
  const sha = manifest.checkpoint_files['tokenizer.json']?.sha256;
  if (!sha) throw new Error(`${family}/manifest.json: no sha256 for tokenizer.json`);
  return sha;
}

/**
 * Writes checkpoint/tokenizer.json of every in-repo fixture family that stores its tokenizer
 * split, checked against the sha256 in the family's manifest.json. Idempotent; a file that is
 * already right is left alone. Returns the files it wrote.
 */
export function materializeTokenizers(): string[] {
  const written: string[] = [];
  let base: string | undefined;
  for (const family of readdirSync(REPO_FIXTURES).sort()) {
    const addedFile = join(fixtureDir(family), ADDED_TOKENS_FILE);
    if (!existsSync(addedFile)) continue;
    const target = join(checkpointDir(family), 'tokenizer.json');
    const want = expectedTokenizerSha(family);
    if (existsSync(target) && sha256(readFileSync(target)) === want) continue;
    base ??= readFileSync(TOKENIZER_BASE, 'utf8');
    const text = joinTokenizer(base, readFileSync(addedFile, 'utf8'));
    const got = sha256(Buffer.from(text, 'utf8'));
    if (got !== want) throw new Error(`${family}: joined tokenizer.json has sha256 ${got}, manifest.json says ${want}`);
    // Write then rename: a concurrent reader never sees half a file.
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, target);
    written.push(target);
  }
  return written;
}
