// The blob lock shared with Python's huggingface_hub: an flock on
// <cache>/.locks/models--org--name/<etag>.lock. A Python process holding it (as filelock does)
// makes a pull wait, and then use the blob Python wrote; a pull downloading holds it against Python.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { pullModel, QwenVLError, type PullProgress } from '../../lib/index.js';
import { native } from '../../lib/native/binding.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { FakeHub, describeFile, fakeCommit } from '../helpers/fake-hub.js';

const CKPT = checkpointDir('qwen2-vl');
const REPO = 'fixture-org/locked';
const WEIGHTS = 'model.safetensors';
const weights = readFileSync(join(CKPT, WEIGHTS));
const etag = describeFile(WEIGHTS, weights).etag;

let hub: FakeHub;
let cacheDir: string;
const children: ChildProcessWithoutNullStreams[] = [];
const opts = (extra: object = {}) => ({ cacheDir, endpoint: hub.endpoint, token: false as const, offline: false, ...extra });
const lockDir = () => join(cacheDir, '.locks', `models--${REPO.replace('/', '--')}`);
const lockPath = () => join(lockDir(), `${etag}.lock`);
const blobPath = () => join(cacheDir, `models--${REPO.replace('/', '--')}`, 'blobs', etag);

/**
 * A Python process holding LOCK_EX on `path` as filelock's UnixFileLock does (open, flock); on a
 * line from stdin it copies `writeFrom` to `writeTo` (a download finishing) and releases.
 */
function pythonHolder(path: string, writeFrom?: string, writeTo?: string): Promise<ChildProcessWithoutNullStreams> {
  const script = [
    'import fcntl, os, shutil, sys',
    'fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o664)',
    'fcntl.flock(fd, fcntl.LOCK_EX)',
    'print("locked", flush=True)',
    'sys.stdin.readline()',
    'if len(sys.argv) > 3: shutil.copyfile(sys.argv[2], sys.argv[3])',
    'fcntl.flock(fd, fcntl.LOCK_UN)',
    'os.close(fd)',
    'print("released", flush=True)',
  ].join('\n');
  const child = spawn('python3', ['-c', script, path, ...(writeFrom && writeTo ? [writeFrom, writeTo] : [])]);
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`python exited early (${code}): ${child.stderr.read() ?? ''}`)));
    child.stdout.once('data', () => resolve(child));
  });
}

/** A Python attempt at the lock that does not wait: 'busy' or 'free'. */
function pythonTry(path: string): Promise<string> {
  const script = [
    'import fcntl, os, sys',
    'fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o664)',
    'try:',
    '    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)',
    '    print("free")',
    'except BlockingIOError:',
    '    print("busy")',
  ].join('\n');
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', script, path]);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', () => resolve(out.trim()));
  });
}

beforeAll(async () => {
  hub = await new FakeHub().start();
  const files = new Map<string, Buffer>();
  for (const name of readdirSync(CKPT)) files.set(name, readFileSync(join(CKPT, name)));
  hub.repos.set(REPO, { commit: fakeCommit('locked@1'), files });
});
afterAll(async () => {
  await hub.stop();
});
beforeEach(() => {
  hub.seen.length = 0;
  hub.chunkDelayMs = 0;
  cacheDir = mkdtempSync(join(tmpdir(), 'qwenvl-lock-'));
});
afterEach(() => {
  for (const c of children.splice(0)) c.kill();
  vi.restoreAllMocks();
  rmSync(cacheDir, { recursive: true, force: true });
});

const weightGets = () => hub.seen.filter((s) => s.server === 'cdn' && s.path.startsWith(`/cdn/${etag}`));

describe('the blob lock shared with huggingface_hub', () => {
  it('waits while Python holds the lock, then uses the blob Python downloaded', async () => {
    mkdirSync(lockDir(), { recursive: true });
    mkdirSync(join(blobPath(), '..'), { recursive: true });
    const py = await pythonHolder(lockPath(), join(CKPT, WEIGHTS), blobPath());
    const events: PullProgress[] = [];
    let sawWait!: () => void;
    const waiting = new Promise<void>((r) => (sawWait = r));
    const pull = pullModel(REPO, opts({ onProgress: (p: PullProgress) => (events.push(p), p.event === 'wait' && sawWait()) }));
    await waiting;
    expect(events.find((e) => e.event === 'wait')?.file).toBe(WEIGHTS);
    // Waiting: the weights are not being fetched (the other files are).
    expect(weightGets()).toEqual([]);
    py.stdin.write('go\n');
    const r = await pull;
    // Python's blob was used: the weights were never requested from the CDN.
    expect(weightGets()).toEqual([]);
    expect(readFileSync(join(r.dir, WEIGHTS)).equals(weights)).toBe(true);
    expect(r.downloadedBytes).toBeLessThan(weights.length);
  });

  it('downloads itself once Python releases the lock without writing the blob', async () => {
    mkdirSync(lockDir(), { recursive: true });
    const py = await pythonHolder(lockPath());
    let sawWait!: () => void;
    const waiting = new Promise<void>((r) => (sawWait = r));
    const pull = pullModel(REPO, opts({ onProgress: (p: PullProgress) => p.event === 'wait' && sawWait() }));
    await waiting;
    py.stdin.write('go\n');
    const r = await pull;
    expect(weightGets()).toHaveLength(1);
    expect(readFileSync(join(r.dir, WEIGHTS)).equals(weights)).toBe(true);
  });

  it('gives up with E_BUSY after lockTimeoutMs', async () => {
    mkdirSync(lockDir(), { recursive: true });
    await pythonHolder(lockPath());
    const err = await pullModel(REPO, opts({ lockTimeoutMs: 200 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QwenVLError);
    expect((err as QwenVLError).code).toBe('E_BUSY');
    expect((err as QwenVLError).message).toContain(`${etag}.lock`);
  });

  it('holds the lock against Python while it downloads, and releases it after', async () => {
    // Once the weights are arriving, the server slows down until Python has tried the lock, so
    // the try falls inside the download however slowly python3 starts.
    let during: Promise<string> | undefined;
    const onProgress = (p: PullProgress) => {
      if (p.event !== 'bytes' || p.file !== WEIGHTS || during !== undefined) return;
      hub.chunkDelayMs = 200;
      during = pythonTry(lockPath()).finally(() => (hub.chunkDelayMs = 0));
    };
    const r = await pullModel(REPO, opts({ onProgress }));
    expect(await during).toBe('busy');
    expect(await pythonTry(lockPath())).toBe('free');
    expect(existsSync(join(r.dir, WEIGHTS))).toBe(true);
  });

  it('falls back to a pid lock file where the file system has no flock', async () => {
    vi.spyOn(native, 'fileLockTry').mockImplementation(() => {
      throw new QwenVLError('E_UNSUPPORTED', 'no flock here');
    });
    mkdirSync(lockDir(), { recursive: true });
    const pidLock = join(lockDir(), `${etag}.qwenvl.lock`);
    writeFileSync(pidLock, String(process.ppid)); // a live process holds it
    let sawWait = false;
    const pull = pullModel(REPO, opts({ onProgress: (p: PullProgress) => void (p.event === 'start' && p.file === WEIGHTS && (sawWait = true)) }));
    await new Promise((r) => setTimeout(r, 400));
    expect(sawWait).toBe(false);
    rmSync(pidLock);
    expect(readFileSync(join((await pull).dir, WEIGHTS)).equals(weights)).toBe(true);
    expect(existsSync(pidLock)).toBe(false);
  });
});

describe('native file lock', () => {
  it('excludes a second holder in this process, refuses descriptors it did not hand out', () => {
    mkdirSync(cacheDir, { recursive: true });
    const path = join(cacheDir, 'x.lock');
    const fd = native.fileLockTry(path);
    expect(fd).not.toBeNull();
    expect(native.fileLockTry(path)).toBeNull();
    native.fileLockRelease(fd!);
    expect(() => native.fileLockRelease(fd!)).toThrow(expect.objectContaining({ code: 'E_INPUT' }));
    expect(() => native.fileLockRelease(0)).toThrow(expect.objectContaining({ code: 'E_INPUT' }));
    expect(() => native.fileLockRelease(-1)).toThrow(expect.objectContaining({ code: 'E_INPUT' }));
    expect(() => native.fileLockRelease(1.5)).toThrow(expect.objectContaining({ code: 'E_INPUT' }));
    expect(() => native.fileLockTry(join(cacheDir, 'missing', 'x.lock'))).toThrow(expect.objectContaining({ code: 'E_INPUT' }));
    expect(() => native.fileLockTry('a\0b')).toThrow(expect.objectContaining({ code: 'E_INPUT' }));
    const again = native.fileLockTry(path);
    expect(again).not.toBeNull();
    native.fileLockRelease(again!);
  });
});
