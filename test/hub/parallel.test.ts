// Parallel downloads of a pull: files (here a sharded checkpoint's shards) are fetched several at
// once, never more than `concurrency`, each verified; progress stays right per file and in total;
// the first failure stops the other transfers before pullModel rejects.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pullModel, QwenVLError, type PullProgress } from '../../lib/index.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { FakeHub, describeFile, fakeCommit } from '../helpers/fake-hub.js';

const CKPT = checkpointDir('qwen2-vl');
const REPO = 'fixture-org/sharded';
const SHARDS = Array.from({ length: 7 }, (_, i) => `model-0000${i + 1}-of-00007.safetensors`);

/** The fixture's small files and an index naming seven shards of odd sizes (random bytes: pull does not parse them). */
function shardedRepo(): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const name of readdirSync(CKPT)) if (name !== 'model.safetensors') files.set(name, readFileSync(join(CKPT, name)));
  const weightMap: Record<string, string> = {};
  SHARDS.forEach((s, i) => {
    files.set(s, randomBytes(150_000 + 40_961 * i));
    weightMap[`layer.${i}.weight`] = s;
  });
  files.set('model.safetensors.index.json', Buffer.from(JSON.stringify({ metadata: {}, weight_map: weightMap })));
  return files;
}

let hub: FakeHub;
let cacheDir: string;
let files: Map<string, Buffer>;
const opts = (extra: object = {}) => ({ cacheDir, endpoint: hub.endpoint, token: false as const, offline: false, ...extra });

beforeAll(async () => {
  hub = await new FakeHub().start();
});
afterAll(async () => {
  await hub.stop();
});
beforeEach(() => {
  files = shardedRepo();
  hub.repos.clear();
  hub.repos.set(REPO, { commit: fakeCommit('sharded@1'), files });
  hub.corrupt.clear();
  hub.maxInFlight = 0;
  hub.overlapGate = 0;
  hub.chunkDelayMs = 3;
  cacheDir = mkdtempSync(join(tmpdir(), 'qwenvl-par-'));
});
afterEach(() => rmSync(cacheDir, { recursive: true, force: true }));

describe('parallel downloads', () => {
  it('fetches several files at once, at most `concurrency`, each verified, with right progress', async () => {
    hub.overlapGate = 4;
    const events: PullProgress[] = [];
    const r = await pullModel(REPO, opts({ concurrency: 4, onProgress: (p: PullProgress) => events.push(p) }));
    // The server saw overlapping transfers, never more than asked (the index is fetched alone first).
    expect(hub.maxInFlight).toBe(4);
    expect(hub.inFlight).toBe(0);
    for (const [name, data] of files) {
      expect(readFileSync(join(r.dir, name)).equals(data), name).toBe(true);
    }
    const total = [...files.values()].reduce((n, d) => n + d.length, 0);
    expect(r.downloadedBytes).toBe(total);
    // Reports interleave between files, yet each file's bytes rise to its size and the total adds up.
    expect(Math.max(...events.map((e) => e.filesActive))).toBeGreaterThan(1);
    const lastOf = new Map<string, number>();
    for (const e of events) {
      if (e.event !== 'bytes' || e.file === undefined) continue;
      expect(e.fileBytes, e.file).toBeGreaterThanOrEqual(lastOf.get(e.file) ?? 0);
      lastOf.set(e.file, e.fileBytes);
    }
    for (const s of SHARDS) expect(lastOf.get(s), s).toBe(files.get(s)!.length);
    const starts = events.map((e, i) => ({ e, i })).filter(({ e }) => e.event === 'start');
    const firstDone = events.findIndex((e) => e.event === 'file' && SHARDS.includes(e.file ?? ''));
    expect(starts.filter(({ e, i }) => SHARDS.includes(e.file ?? '') && i < firstDone).length).toBeGreaterThan(1);
    const totals = events.map((e) => e.bytes);
    expect(totals).toEqual([...totals].sort((a, b) => a - b));
    expect(events.at(-1)).toMatchObject({ event: 'done', bytes: total, totalBytes: total, filesDone: files.size, fileCount: files.size, filesActive: 0 });
  });

  it('concurrency 1 fetches one file at a time', async () => {
    await pullModel(REPO, opts({ concurrency: 1 }));
    expect(hub.maxInFlight).toBe(1);
  });

  it('the default is 8 at once', async () => {
    hub.overlapGate = 8;
    await pullModel(REPO, opts());
    expect(hub.maxInFlight).toBe(8);
  });

  it('the first failure stops the other transfers and is what the pull throws', async () => {
    hub.chunkDelayMs = 10;
    const bad = SHARDS[0]!;
    hub.corrupt.add(describeFile(bad, files.get(bad)!).etag);
    const err = await pullModel(REPO, opts({ concurrency: 8 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QwenVLError);
    expect((err as QwenVLError).code).toBe('E_INTEGRITY');
    expect((err as QwenVLError).message).toContain(bad);
    // Nothing is still downloading once the pull has rejected (the server notices the closed sockets).
    await new Promise((r) => setTimeout(r, 50));
    expect(hub.inFlight).toBe(0);
    // The next pull completes (resuming what the stopped transfers left) and every file verifies.
    hub.corrupt.clear();
    const r = await pullModel(REPO, opts());
    for (const s of SHARDS) expect(readFileSync(join(r.dir, s)).equals(files.get(s)!), s).toBe(true);
  });

  it('refuses a bad concurrency', async () => {
    for (const c of [0, 65, 1.5, '4']) {
      const err = await pullModel(REPO, opts({ concurrency: c })).catch((e: unknown) => e);
      expect((err as QwenVLError).code, String(c)).toBe('E_INPUT');
      expect((err as QwenVLError).message).toContain('concurrency');
    }
  });
});
