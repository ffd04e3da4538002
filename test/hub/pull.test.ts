// The Hub client against a loopback fake of the Hub: the cache layout huggingface_hub uses, only
// the needed files, resume after a cut connection, verification, tokens, 404s, offline mode, reuse
// of a hand-made huggingface_hub cache, and loadModel('org/name') answering like the folder.
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadModel, pullModel, QwenVLError, type PullProgress } from '../../lib/index.js';
import { checkpointDir, fixtureDir } from '../helpers/fixtures.js';
import { FakeHub, describeFile, fakeCommit } from '../helpers/fake-hub.js';
import { hubSettings } from '../../lib/hub/settings.js';
import { chunksOf } from '../../lib/hub/download.js';

const CKPT = checkpointDir('qwen2-vl');
const IMG = join(fixtureDir('qwen2-vl'), 'inputs/gradient_224x224.png');
const REPO = 'fixture-org/qwen2-vl-tiny';
const COMMIT = fakeCommit('qwen2-vl-tiny@1');
const WEIGHTS = 'model.safetensors';

/** The fixture checkpoint as a repository's files, plus files a model does not need. */
function fixtureRepoFiles(): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const name of readdirSync(CKPT).sort()) files.set(name, readFileSync(join(CKPT, name)));
  expect(files.has('tokenizer.json')).toBe(true);
  files.set('README.md', Buffer.from('# tiny\n'));
  files.set('vocab.json', Buffer.from('{}'));
  files.set('merges.txt', Buffer.from('#version: 0.2\n'));
  files.set('pytorch_model.bin', Buffer.alloc(4096, 7));
  return files;
}
const NEEDED = [...readdirSync(CKPT)].sort();

async function expectCode(p: Promise<unknown>, code: string, match?: RegExp): Promise<QwenVLError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(QwenVLError);
    expect((e as QwenVLError).code, (e as Error).message).toBe(code);
    if (match) expect((e as QwenVLError).message).toMatch(match);
    return e as QwenVLError;
  }
  throw new Error(`expected ${code}`);
}

let hub: FakeHub;
let cacheDir: string;
// Everything explicit, so a developer's own HF_* settings cannot change what the tests see.
const opts = (extra: object = {}) => ({ cacheDir, endpoint: hub.endpoint, token: false as const, offline: false, ...extra });
const repoRoot = () => join(cacheDir, `models--${REPO.replace('/', '--')}`);
const weightsEtag = () => describeFile(WEIGHTS, readFileSync(join(CKPT, WEIGHTS))).etag;

beforeAll(async () => {
  hub = await new FakeHub().start();
});
afterAll(async () => {
  await hub.stop();
});
beforeEach(() => {
  hub.repos.clear();
  hub.repos.set(REPO, { commit: COMMIT, files: fixtureRepoFiles() });
  hub.cutAfter.clear();
  hub.stallAfter.clear();
  hub.renamed.clear();
  hub.seen.length = 0;
  hub.corrupt.clear();
  hub.chunkDelayMs = 0;
  cacheDir = mkdtempSync(join(tmpdir(), 'qwenvl-hub-'));
});
afterEach(() => rmSync(cacheDir, { recursive: true, force: true }));

describe('pullModel', () => {
  it('lays the files out as huggingface_hub does, fetching only the needed ones', async () => {
    // Byte reports come at most every 100 ms: the weights must take longer than that to arrive for
    // one to fall inside the file (unpaced, a fast machine fetches 10 MB from loopback in less).
    hub.chunkDelayMs = 2;
    const events: PullProgress[] = [];
    const r = await pullModel(REPO, opts({ onProgress: (p: PullProgress) => events.push(p) }));
    expect(r.commit).toBe(COMMIT);
    expect(r.dir).toBe(join(repoRoot(), 'snapshots', COMMIT));
    expect(readFileSync(join(repoRoot(), 'refs', 'main'), 'utf8')).toBe(COMMIT);
    expect(readdirSync(r.dir).sort()).toEqual(NEEDED);
    for (const name of NEEDED) {
      const data = readFileSync(join(CKPT, name));
      const { etag, lfs } = describeFile(name, data);
      const link = join(r.dir, name);
      expect(lstatSync(link).isSymbolicLink(), name).toBe(true);
      expect(readlinkSync(link)).toBe(`../../blobs/${etag}`);
      expect(readFileSync(link).equals(data), name).toBe(true);
      expect(etag).toMatch(lfs ? /^[0-9a-f]{64}$/ : /^[0-9a-f]{40}$/);
    }
    expect(readdirSync(join(repoRoot(), 'blobs')).sort()).toHaveLength(NEEDED.length);
    // Nothing else was asked for; the token-less client sent no Authorization anywhere.
    const asked = hub.seen.map((s) => s.path);
    for (const skipped of ['README.md', 'vocab.json', 'merges.txt', 'pytorch_model.bin']) expect(asked.join('\n')).not.toContain(skipped);
    expect(hub.seen.every((s) => s.authorization === undefined)).toBe(true);
    // LFS bytes (the weights, and the tokenizer.json over 1 MiB) came from the CDN after a redirect, small files from resolve.
    const lfs = NEEDED.map((n) => describeFile(n, readFileSync(join(CKPT, n)))).filter((f) => f.lfs);
    expect(lfs.map((f) => f.etag)).toContain(weightsEtag());
    expect(hub.seen.filter((s) => s.server === 'cdn').map((s) => s.path).sort()).toEqual(lfs.map((f) => `/cdn/${f.etag}?signature=x`).sort());
    expect(hub.seen.filter((s) => s.method === 'GET' && s.path.includes('/resolve/')).length).toBe(NEEDED.length - lfs.length);
    // Progress: per file and in total, ending complete.
    const total = NEEDED.reduce((n, f) => n + statSync(join(CKPT, f)).size, 0);
    const done = events.at(-1)!;
    expect(done.event).toBe('done');
    expect(done).toMatchObject({ bytes: total, totalBytes: total, filesDone: NEEDED.length, fileCount: NEEDED.length, etaSeconds: 0 });
    expect(events.filter((e) => e.event === 'file').map((e) => e.file).sort()).toEqual(NEEDED);
    expect(events.some((e) => e.event === 'bytes' && e.file === WEIGHTS && e.fileBytes < e.fileSize)).toBe(true);
    expect(r.downloadedBytes).toBe(total);
  });

  it('a second pull asks the Hub for the commit only and reuses every blob', async () => {
    await pullModel(REPO, opts());
    const from = hub.seen.length;
    const events: PullProgress[] = [];
    const r = await pullModel(REPO, opts({ onProgress: (p: PullProgress) => events.push(p) }));
    expect(hub.since(from).map((s) => s.path)).toEqual([`/api/models/${REPO}/revision/main?blobs=true`]);
    expect(r.downloadedBytes).toBe(0);
    expect(events.filter((e) => e.event === 'file').every((e) => e.fromCache === true)).toBe(true);
  });

  it('reports a transfer rate and a time left while a large file arrives', async () => {
    hub.chunkDelayMs = 5;
    const events: PullProgress[] = [];
    await pullModel(REPO, opts({ onProgress: (p: PullProgress) => events.push(p) }));
    const mid = events.filter((e) => e.event === 'bytes' && e.fileBytes < e.fileSize && e.bytesPerSecond > 0);
    expect(mid.length).toBeGreaterThan(0);
    for (const e of mid) {
      expect(e.etaSeconds).toBeGreaterThan(0);
      expect(e.bytes).toBeLessThan(e.totalBytes);
    }
  });

  it('resumes a cut download with a Range request from the partial length and verifies it', async () => {
    const etag = weightsEtag();
    hub.cutAfter.set(etag, 3_000_000);
    await expectCode(pullModel(REPO, opts({ retries: 0 })), 'E_NETWORK', /connection lost after \d+ of \d+ bytes.*resume/);
    const partial = join(repoRoot(), 'blobs', `${etag}.incomplete`);
    const have = statSync(partial).size;
    expect(have).toBeGreaterThan(0);
    expect(have).toBeLessThanOrEqual(3_000_000);
    expect(existsSync(join(repoRoot(), 'blobs', etag))).toBe(false);
    expect(existsSync(join(repoRoot(), 'snapshots', COMMIT, WEIGHTS))).toBe(false);

    const from = hub.seen.length;
    const events: PullProgress[] = [];
    const r = await pullModel(REPO, opts({ onProgress: (p: PullProgress) => events.push(p) }));
    // (Files downloading beside it were stopped too and resume as well.)
    const cdn = hub.since(from, 'cdn').filter((s) => s.path.startsWith(`/cdn/${etag}`));
    expect(cdn).toHaveLength(1);
    expect(cdn[0]!.range).toBe(`bytes=${have}-`);
    expect(events.find((e) => e.event === 'start' && e.file === WEIGHTS)?.fileBytes).toBe(have);
    expect(readFileSync(join(r.dir, WEIGHTS)).equals(readFileSync(join(CKPT, WEIGHTS)))).toBe(true);
    expect(existsSync(partial)).toBe(false);
    // Only the missing bytes travel: each file that started downloading brings its size less what
    // it resumed from (the weights their tail alone; a file cut beside them its own rest).
    const started = events.filter((e) => e.event === 'start');
    expect(started.some((e) => e.file === WEIGHTS)).toBe(true);
    expect(r.downloadedBytes).toBe(started.reduce((n, e) => n + e.fileSize - e.fileBytes, 0));
    expect(r.downloadedBytes).toBeLessThan(started.reduce((n, e) => n + e.fileSize, 0));
  });

  it('retries a cut connection within the same pull, resuming with a Range request', async () => {
    const etag = weightsEtag();
    hub.cutAfter.set(etag, 2_000_000);
    const r = await pullModel(REPO, opts());
    const cdn = hub.seen.filter((s) => s.server === 'cdn' && s.path.startsWith(`/cdn/${etag}`));
    expect(cdn).toHaveLength(2);
    expect(cdn[0]!.range).toBeUndefined();
    expect(cdn[1]!.range).toMatch(/^bytes=\d+-$/);
    expect(Number(/\d+/.exec(cdn[1]!.range!)![0])).toBeGreaterThan(0);
    expect(readFileSync(join(r.dir, WEIGHTS)).equals(readFileSync(join(CKPT, WEIGHTS)))).toBe(true);
    expect(r.downloadedBytes).toBe(NEEDED.reduce((n, f) => n + statSync(join(CKPT, f)).size, 0));
  });

  it('a connection that goes silent is dropped after downloadTimeoutMs and resumed', async () => {
    const etag = weightsEtag();
    hub.stallAfter.set(etag, 1_000_000);
    const r = await pullModel(REPO, opts({ downloadTimeoutMs: 300 }));
    const gets = hub.seen.filter((s) => s.server === 'cdn' && s.path.startsWith(`/cdn/${etag}`));
    expect(gets.map((s) => s.range)).toEqual([undefined, 'bytes=1000000-']);
    expect(readFileSync(join(r.dir, WEIGHTS)).equals(readFileSync(join(CKPT, WEIGHTS)))).toBe(true);
    // Without retries: a typed error that says what happened; the partial file stays.
    rmSync(repoRoot(), { recursive: true });
    hub.stallAfter.set(etag, 500_000);
    await expectCode(pullModel(REPO, opts({ downloadTimeoutMs: 300, retries: 0 })), 'E_NETWORK', /no data for 0\.3 s after 500000 of \d+ bytes \(HF_HUB_DOWNLOAD_TIMEOUT\)/);
    expect(statSync(join(repoRoot(), 'blobs', `${etag}.incomplete`)).size).toBe(500_000);
  });

  it('a body read that never settles still ends when the download is stopped', async () => {
    // What fetch's body can do after an abort: a read that stays pending for good.
    let pulls = 0;
    const stuck = new ReadableStream<Uint8Array>({
      pull(c) {
        if (pulls++ === 0) c.enqueue(new Uint8Array([1, 2, 3]));
        else return new Promise<void>(() => undefined);
      },
    });
    const ac = new AbortController();
    const got: number[] = [];
    const done = (async () => {
      for await (const chunk of chunksOf(stuck, ac.signal)) {
        got.push(...chunk);
        setTimeout(() => ac.abort(), 20);
      }
    })();
    await expect(done).rejects.toMatchObject({ name: 'AbortError' });
    expect(got).toEqual([1, 2, 3]);
  });

  it('reads HF_HUB_DOWNLOAD_TIMEOUT in seconds, as huggingface_hub does', () => {
    expect(hubSettings({}, 'x', { HF_HUB_DOWNLOAD_TIMEOUT: '2.5' }).downloadTimeoutMs).toBe(2500);
    expect(hubSettings({}, 'x', {}).downloadTimeoutMs).toBe(10_000);
    expect(hubSettings({}, 'x', { HF_HUB_DOWNLOAD_TIMEOUT: 'soon' }).downloadTimeoutMs).toBe(10_000);
    expect(hubSettings({ downloadTimeoutMs: 50 }, 'x', { HF_HUB_DOWNLOAD_TIMEOUT: '2' }).downloadTimeoutMs).toBe(50);
    expect(() => hubSettings({ downloadTimeoutMs: 0 }, 'x', {})).toThrow(/downloadTimeoutMs/);
  });

  it('an abort stops the download with E_ABORTED and keeps the partial file for the next pull', async () => {
    hub.chunkDelayMs = 5;
    const ac = new AbortController();
    const onProgress = (p: PullProgress) => {
      if (p.event === 'bytes' && p.file === WEIGHTS && p.fileBytes > 1_000_000) ac.abort();
    };
    await expectCode(pullModel(REPO, opts({ onProgress, signal: ac.signal })), 'E_ABORTED');
    hub.chunkDelayMs = 0;
    const partial = join(repoRoot(), 'blobs', `${weightsEtag()}.incomplete`);
    const have = statSync(partial).size;
    expect(have).toBeGreaterThan(1_000_000);
    const from = hub.seen.length;
    const r = await pullModel(REPO, opts());
    expect(hub.since(from, 'cdn').filter((s) => s.path.startsWith(`/cdn/${weightsEtag()}`)).map((s) => s.range)).toEqual([`bytes=${have}-`]);
    expect(readFileSync(join(r.dir, WEIGHTS)).equals(readFileSync(join(CKPT, WEIGHTS)))).toBe(true);
  });

  it('concurrent pulls of one model download each blob once and both succeed', async () => {
    hub.chunkDelayMs = 2;
    const [a, b] = await Promise.all([pullModel(REPO, opts()), pullModel(REPO, opts())]);
    expect(a.dir).toBe(b.dir);
    expect(hub.seen.filter((s) => s.server === 'cdn' && s.path.startsWith(`/cdn/${weightsEtag()}`))).toHaveLength(1);
    expect(readFileSync(join(a.dir, WEIGHTS)).equals(readFileSync(join(CKPT, WEIGHTS)))).toBe(true);
    expect(a.downloadedBytes + b.downloadedBytes).toBe(NEEDED.reduce((n, f) => n + statSync(join(CKPT, f)).size, 0));
    // huggingface_hub's lock files, one per blob fetched, left in place as its filelock leaves them.
    const locks = readdirSync(join(cacheDir, '.locks', `models--${REPO.replace('/', '--')}`));
    expect(locks).toContain(`${weightsEtag()}.lock`);
    expect(locks.every((n) => /^[0-9a-f]{40}(?:[0-9a-f]{24})?\.lock$/.test(n)), locks.join()).toBe(true);
  });

  it('a corrupted body is an integrity error and nothing is committed', async () => {
    const etag = weightsEtag();
    hub.corrupt.add(etag);
    await expectCode(pullModel(REPO, opts()), 'E_INTEGRITY', new RegExp(`model\\.safetensors: sha256 is [0-9a-f]{64}, expected ${etag}`));
    const blobs = readdirSync(join(repoRoot(), 'blobs'));
    expect(blobs.filter((b) => b.startsWith(etag))).toEqual([]);
    expect(existsSync(join(repoRoot(), 'snapshots', COMMIT, WEIGHTS))).toBe(false);
    // Fixed on the server: the next pull starts over and succeeds.
    hub.corrupt.clear();
    const from = hub.seen.length;
    const r = await pullModel(REPO, opts());
    expect(hub.since(from, 'cdn')[0]!.range).toBeUndefined();
    expect(readFileSync(join(r.dir, WEIGHTS)).equals(readFileSync(join(CKPT, WEIGHTS)))).toBe(true);
  });

  it('a small file whose git blob id does not match is an integrity error too', async () => {
    const { etag } = describeFile('config.json', readFileSync(join(CKPT, 'config.json')));
    hub.corrupt.add(etag);
    await expectCode(pullModel(REPO, opts()), 'E_INTEGRITY', new RegExp(`config\\.json: git blob id is [0-9a-f]{40}, expected ${etag}`));
    expect(readdirSync(join(repoRoot(), 'blobs')).filter((b) => b.startsWith(etag))).toEqual([]);
    expect(existsSync(join(repoRoot(), 'snapshots', COMMIT, 'config.json'))).toBe(false);
  });

  it('a gated repository needs the token: E_AUTH without, success with (not sent to the CDN)', async () => {
    hub.repos.get(REPO)!.gatedToken = 'hf_good';
    await expectCode(pullModel(REPO, opts()), 'E_AUTH', /gated or private: set HF_TOKEN/);
    await expectCode(pullModel(REPO, opts({ token: 'hf_bad' })), 'E_AUTH', /token was not accepted/);
    const from = hub.seen.length;
    const r = await pullModel(REPO, opts({ token: 'hf_good' }));
    expect(readdirSync(r.dir).sort()).toEqual(NEEDED);
    expect(hub.since(from, 'hub').every((s) => s.authorization === 'Bearer hf_good')).toBe(true);
    expect(hub.since(from, 'cdn').every((s) => s.authorization === undefined)).toBe(true);
  });

  it('takes the token from HF_TOKEN, else from the token file under HF_HOME', async () => {
    hub.repos.get(REPO)!.gatedToken = 'hf_file';
    const saved = { HF_TOKEN: process.env.HF_TOKEN, HF_HOME: process.env.HF_HOME, HF_TOKEN_PATH: process.env.HF_TOKEN_PATH };
    const home = mkdtempSync(join(tmpdir(), 'qwenvl-hfhome-'));
    try {
      delete process.env.HF_TOKEN;
      delete process.env.HF_TOKEN_PATH;
      process.env.HF_HOME = home;
      writeFileSync(join(home, 'token'), 'hf_file\n');
      const noToken = { cacheDir, endpoint: hub.endpoint, offline: false };
      await pullModel(REPO, noToken);
      hub.repos.get(REPO)!.gatedToken = 'hf_env';
      await expectCode(pullModel(REPO, noToken), 'E_AUTH');
      process.env.HF_TOKEN = 'hf_env';
      await pullModel(REPO, noToken);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('a missing repository, revision or listed shard is E_NOT_FOUND', async () => {
    await expectCode(pullModel('fixture-org/nope', opts()), 'E_NOT_FOUND', /repository not found.*HF_TOKEN/);
    await expectCode(pullModel(REPO, opts({ revision: 'v9' })), 'E_NOT_FOUND', /revision not found/);
    const files = hub.repos.get(REPO)!.files;
    files.set('model.safetensors.index.json', Buffer.from(JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors' } })));
    await expectCode(pullModel(REPO, opts()), 'E_NOT_FOUND', /model-00001-of-00002\.safetensors is listed in the weights index but not in the repository/);
  });

  it('fetches only the shards the index lists', async () => {
    const files = hub.repos.get(REPO)!.files;
    files.delete(WEIGHTS);
    files.set('model-00001-of-00002.safetensors', Buffer.alloc(3000, 1));
    files.set('model-00002-of-00002.safetensors', Buffer.alloc(5000, 2));
    files.set('model-fp32.safetensors', Buffer.alloc(7000, 3));
    files.set('model.safetensors.index.json', Buffer.from(JSON.stringify({
      metadata: { total_size: 8000 },
      weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors', c: 'model-00001-of-00002.safetensors' },
    })));
    const events: PullProgress[] = [];
    const r = await pullModel(REPO, opts({ onProgress: (p: PullProgress) => events.push(p) }));
    const names = readdirSync(r.dir).sort();
    expect(names).toContain('model-00001-of-00002.safetensors');
    expect(names).toContain('model-00002-of-00002.safetensors');
    expect(names).toContain('model.safetensors.index.json');
    expect(names).not.toContain('model-fp32.safetensors');
    expect(hub.seen.map((s) => s.path).join('\n')).not.toContain('fp32');
    const done = events.at(-1)!;
    expect(done.bytes).toBe(done.totalBytes);
    expect(done.fileCount).toBe(names.length);
  });

  it('follows the relative redirect of a renamed repository (and not the CDN redirect of a HEAD)', async () => {
    hub.renamed.set('fixture-org/old-name', REPO);
    const r = await pullModel('fixture-org/old-name', opts());
    expect(r.dir).toBe(join(cacheDir, 'models--fixture-org--old-name', 'snapshots', COMMIT));
    expect(readdirSync(r.dir).sort()).toEqual(NEEDED);
    expect(hub.seen.filter((s) => s.method === 'HEAD' && s.server === 'cdn')).toEqual([]);
    hub.renamed.clear();
  });

  it('offline: answers from the cache with no request, or names what is missing', async () => {
    await expectCode(pullModel(REPO, opts({ offline: true })), 'E_NOT_FOUND', /offline .* no cached revision 'main'/);
    expect(hub.seen).toHaveLength(0);
    const online = await pullModel(REPO, opts());
    const from = hub.seen.length;
    const r = await pullModel(REPO, opts({ offline: true }));
    expect(r.dir).toBe(online.dir);
    expect(r.online).toBe(false);
    expect(hub.since(from)).toHaveLength(0);
    // HF_HUB_OFFLINE=1 does the same; a snapshot lacking a file names it.
    rmSync(join(online.dir, 'tokenizer.json'));
    const saved = process.env.HF_HUB_OFFLINE;
    process.env.HF_HUB_OFFLINE = '1';
    try {
      await expectCode(pullModel(REPO, { cacheDir, endpoint: hub.endpoint }), 'E_NOT_FOUND', new RegExp(`snapshot ${COMMIT} lacks tokenizer\\.json`));
    } finally {
      if (saved === undefined) delete process.env.HF_HUB_OFFLINE;
      else process.env.HF_HUB_OFFLINE = saved;
    }
    expect(hub.since(from)).toHaveLength(0);
  });

  it('reuses a cache laid out by huggingface_hub: loadModel makes no request, pull no file request', async () => {
    // The layout huggingface_hub writes: blobs named by etag, relative snapshot links, refs/main.
    const root = repoRoot();
    mkdirSync(join(root, 'blobs'), { recursive: true });
    mkdirSync(join(root, 'snapshots', COMMIT), { recursive: true });
    mkdirSync(join(root, 'refs'), { recursive: true });
    for (const name of NEEDED) {
      const data = readFileSync(join(CKPT, name));
      const { etag } = describeFile(name, data);
      writeFileSync(join(root, 'blobs', etag), data);
      symlinkSync(`../../blobs/${etag}`, join(root, 'snapshots', COMMIT, name));
    }
    writeFileSync(join(root, 'refs', 'main'), COMMIT);

    const m = await loadModel(REPO, { hub: opts() });
    try {
      expect(hub.seen).toHaveLength(0);
      expect(m.dir).toBe(join(root, 'snapshots', COMMIT));
    } finally {
      m.dispose();
    }
    const r = await pullModel(REPO, opts());
    expect(hub.seen.map((s) => s.path)).toEqual([`/api/models/${REPO}/revision/main?blobs=true`]);
    expect(r.downloadedBytes).toBe(0);
  });

  it('loadModel(org/name) downloads and answers exactly like the checkpoint folder', async () => {
    const ask = [{ role: 'user', content: [{ type: 'image', image: IMG }, { type: 'text', text: 'What is shown?' }] }];
    const local = await loadModel(CKPT);
    let expected: number[];
    try {
      expected = (await local.chat(ask, { doSample: false, maxTokens: 8 })).tokens;
    } finally {
      local.dispose();
    }
    const events: PullProgress[] = [];
    const m = await loadModel(REPO, { hub: opts({ onProgress: (p: PullProgress) => events.push(p) }) });
    try {
      expect(events.at(-1)?.event).toBe('done');
      expect(hub.seen.some((s) => s.server === 'cdn')).toBe(true);
      expect((await m.chat(ask, { doSample: false, maxTokens: 8 })).tokens).toEqual(expected);
    } finally {
      m.dispose();
    }
  });

  it('rejects what is not a model id or a folder, and bad options, with E_INPUT', async () => {
    await expectCode(pullModel('just-a-name', opts()), 'E_INPUT', /org\/name/);
    await expectCode(pullModel('../x/y', opts()), 'E_INPUT');
    await expectCode(pullModel(REPO, opts({ revision: '' })), 'E_INPUT', /revision/);
    await expectCode(pullModel(REPO, opts({ endpoint: 'ftp://x' })), 'E_INPUT', /endpoint/);
    await expectCode(loadModel('no/such-folder-or-model', { hub: { ...opts(), offline: true } }), 'E_NOT_FOUND', /offline/);
    await expectCode(loadModel('./no-such-folder'), 'E_INPUT', /does not exist/);
    await expectCode(loadModel(REPO, { hub: 5 as never }), 'E_INPUT', /options\.hub/);
    await expectCode(loadModel(REPO, { hub: { ...opts(), retries: -1 } }), 'E_INPUT', /retries/);
    await expectCode(pullModel(REPO, opts({ token: '' })), 'E_INPUT', /token/);
    expect(hub.seen).toHaveLength(0);
  });
});
