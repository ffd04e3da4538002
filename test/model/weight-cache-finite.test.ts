// The NaN scan (checkFinite) and the weight cache: a hit reads the cache file, not the checkpoint
// tensors it was converted from (they were scanned by the load that wrote it), while a file written
// without the scan vouches for nothing, and a tensor the file fails to supply is scanned before it
// is converted. The checkpoint is edited in place with its modification time put back, and the
// cache file's key re-stamped with the edited file's change time (which no edit can put back), so
// the file still matches and only the scan can tell the difference.
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Conversation, loadModel, type LoadOptions, type Model, QwenVLError } from '../../lib/index.js';
import { weightCachePlan } from '../../lib/model/weight-cache.js';
import { native } from '../../lib/native/binding.js';
import { checkpointDir } from '../helpers/fixtures.js';

const ask: Conversation = [{ role: 'user', content: [{ type: 'text', text: 'Say something.' }] }];
// A round modification time, set before the first load and after each edit (the key holds mtimeMs).
const MTIME = 1_700_000_000;
const BAD = 'model.layers.1.mlp.down_proj.weight';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function freshCheckpoint(): string {
  const dir = mkdtempSync(join(tmpdir(), 'qwenvl-cache-finite-'));
  dirs.push(dir);
  cpSync(checkpointDir('qwen2-vl'), dir, { recursive: true });
  utimesSync(join(dir, 'model.safetensors'), MTIME, MTIME);
  return dir;
}

/**
 * Writes a NaN over element 5 of `tensor`, keeping the file's size and modification time, then
 * re-stamps the cache file's key in place with the edited checkpoint's, which differs in the
 * change time only (whole milliseconds: the same length).
 */
async function poison(dir: string, tensor: string): Promise<void> {
  const path = join(dir, 'model.safetensors');
  const buf = readFileSync(path);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const { dtype, data_offsets: [begin] } = header[tensor]!;
  const at = 8 + headerLen + begin;
  if (dtype === 'BF16') buf.writeUInt16LE(0x7fc0, at + 5 * 2);
  else if (dtype === 'F32') buf.writeFloatLE(Number.NaN, at + 5 * 4);
  else throw new Error(`poison: ${dtype}`);
  writeFileSync(path, buf);
  utimesSync(path, MTIME, MTIME);
  const file = cacheFile(dir);
  const { key } = await weightCachePlan(true, dir, [path], 'q4', 'stored');
  const old = cacheHeader(file);
  expect(Buffer.byteLength(key)).toBe(Buffer.byteLength(old.key));
  expect(old.key).not.toBe(key);
  const bytes = readFileSync(file);
  bytes.write(key, old.keyAt, 'utf8');
  writeFileSync(file, bytes);
}

interface CacheEntry { name: string; source: string; offsets: bigint[] }

/** The cache file's header (native/models/weight_cache.cpp, layout version 4); `keyAt`: where the key's bytes start. */
function cacheHeader(file: string): { version: bigint; key: string; keyAt: number; flags: bigint; entries: CacheEntry[] } {
  const b = readFileSync(file);
  let at = 16;
  const u64 = () => { const v = b.readBigUInt64LE(at); at += 8; return v; };
  const str = () => { const n = Number(u64()); const s = b.subarray(at, at + n).toString('utf8'); at += n; return s; };
  const version = u64();
  const keyAt = at + 8;
  const key = str();
  const flags = u64();
  const entries: CacheEntry[] = [];
  for (let i = Number(u64()); i > 0; i--) {
    const name = str(), source = str();
    at += 4 + 3 * 8; // format, out, in, group
    const offsets: bigint[] = [];
    for (let k = 0; k < 3; k++) { offsets.push(u64()); u64(); u64(); } // offset, length, checksum
    entries.push({ name, source, offsets });
  }
  return { version, key, keyAt, flags, entries };
}

const cacheFile = (dir: string) => join(dir, readdirSync(dir).find((f) => f.endsWith('.weights'))!);
const status = (m: Model) => native.modelWeightFormat((m as unknown as { handle: Parameters<typeof native.modelWeightFormat>[0] }).handle);

async function load(dir: string, options: LoadOptions): Promise<{ cache: string; logits: Buffer }> {
  const m = await loadModel(dir, { weights: 'q4', weightCache: true, ...options });
  try {
    const data = (await m.logits(await m.prepare(ask))).data as Float32Array;
    return { cache: status(m).cache, logits: Buffer.from(data.buffer, data.byteOffset, data.byteLength) };
  } finally {
    m.dispose();
  }
}

async function loadError(dir: string, options: LoadOptions): Promise<QwenVLError> {
  const e = await loadModel(dir, options).then((m) => { m.dispose(); return undefined; }, (x: unknown) => x);
  expect(e).toBeInstanceOf(QwenVLError);
  return e as QwenVLError;
}

describe('weightCache and the NaN scan', () => {
  it('a file written by a scanning load names each entry\'s source tensor and vouches for them', async () => {
    const dir = freshCheckpoint();
    expect((await load(dir, {})).cache).toBe('written');
    const h = cacheHeader(cacheFile(dir));
    expect(h.version).toBe(4n);
    expect(h.flags).toBe(1n);
    expect(h.entries.find((e) => e.source === BAD)?.name).toBe(`tensor ${BAD}`);
    // The tied LM head is the embedding table, which decoding also reads as stored: never vouched.
    expect(h.entries.filter((e) => e.source === '').map((e) => e.name)).toEqual(['weight']);
    await load(dir, { checkFinite: false }).then((r) => expect(r.cache).toBe('hit'));
    expect(cacheHeader(cacheFile(dir)).flags).toBe(1n); // a hit leaves the file as it was
  });

  it('a hit skips the scan of the tensors the file supplies, and answers from the file', async () => {
    const dir = freshCheckpoint();
    const first = await load(dir, {});
    await poison(dir, BAD);
    const hit = await load(dir, {});
    expect(hit.cache).toBe('hit');
    expect(hit.logits.equals(first.logits)).toBe(true);
    // Without the cache the same load scans the poisoned tensor and refuses it.
    const e = await loadError(dir, { weights: 'q4' });
    expect(e.code).toBe('E_MODEL_FORMAT');
    expect(e.message).toMatch(new RegExp(`tensor ${BAD.replaceAll('.', '\\.')} holds a non-finite value .* at element 5`));
  });

  it('tensors read as stored are still scanned on a hit', async () => {
    const dir = freshCheckpoint();
    await load(dir, {});
    await poison(dir, 'model.embed_tokens.weight');
    const e = await loadError(dir, { weights: 'q4', weightCache: true });
    expect(e.code).toBe('E_MODEL_FORMAT');
    expect(e.message).toMatch(/tensor model\.embed_tokens\.weight holds a non-finite value/);
  });

  it('a file written without the scan vouches for nothing', async () => {
    const dir = freshCheckpoint();
    expect((await load(dir, { checkFinite: false })).cache).toBe('written');
    expect(cacheHeader(cacheFile(dir)).flags).toBe(0n);
    await poison(dir, BAD);
    const e = await loadError(dir, { weights: 'q4', weightCache: true });
    expect(e.code).toBe('E_MODEL_FORMAT');
    expect(e.message).toMatch(new RegExp(`model\\.safetensors: tensor ${BAD.replaceAll('.', '\\.')} holds a non-finite value`));
  });

  it('a scanning load that hits a file written without the scan makes the file vouch from then on', async () => {
    const dir = freshCheckpoint();
    const first = await load(dir, { checkFinite: false });
    expect(first.cache).toBe('written');
    expect(cacheHeader(cacheFile(dir)).flags).toBe(0n);
    await load(dir, { checkFinite: false }).then((r) => expect(r.cache).toBe('hit'));
    expect(cacheHeader(cacheFile(dir)).flags).toBe(0n); // a load that did not scan vouches for nothing
    const scanned = await load(dir, {});
    expect(scanned.cache).toBe('hit');
    expect(cacheHeader(cacheFile(dir)).flags).toBe(1n);
    await poison(dir, BAD);
    const hit = await load(dir, {});
    expect(hit.cache).toBe('hit');
    expect(hit.logits.equals(first.logits)).toBe(true);
  });

  it('a vouched tensor the file fails to supply is scanned before it is converted', async () => {
    const dir = freshCheckpoint();
    const first = await load(dir, {});
    // A bad checksum on the first entry: it and every entry after it are converted again.
    const file = cacheFile(dir);
    const { entries } = cacheHeader(file);
    const bytes = readFileSync(file);
    bytes[Number(entries[0]!.offsets[0])] ^= 0x01;
    writeFileSync(file, bytes);
    const clean = await load(dir, {});
    expect(clean.cache).toBe('written');
    expect(clean.logits.equals(first.logits)).toBe(true);

    writeFileSync(file, bytes); // the corrupt file again, and now a NaN behind a later entry
    expect(entries.findIndex((e) => e.source === BAD)).toBeGreaterThan(0);
    await poison(dir, BAD);
    const e = await loadError(dir, { weights: 'q4', weightCache: true });
    expect(e.code).toBe('E_MODEL_FORMAT');
    expect(e.message).toMatch(new RegExp(`model\\.safetensors: tensor ${BAD.replaceAll('.', '\\.')} holds a non-finite value .* at element 5`));
  });
});
