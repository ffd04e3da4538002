/**
 * One download per blob at a time, shared with Python's huggingface_hub: within this process by a
 * promise chain, across processes by the lock huggingface_hub takes, an flock(2) on
 * `<cache>/.locks/models--org--name/<etag>.lock` (what its `WeakFileLock`, the `filelock`
 * package, holds while it writes `blobs/<etag>.incomplete`), so a Python and a Node download of
 * one blob never write it at once. The lock file stays in place, as filelock leaves it. Where the
 * file system has no flock (or the native addon, which takes it, cannot be loaded), a pid lock
 * file beside it (`<etag>.qwenvl.lock`) keeps qwenvl processes apart. `qwenvl batch` takes its results file's pid lock with {@link tryLockFile}.
 * @internal
 * @module
 */
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { QwenVLError } from '../errors.js';
import type { NativeBinding } from '../native/binding.js';

const inProcess = new Map<string, Promise<unknown>>();
/** Polling period while another process holds a lock (filelock polls every 50 ms; a download takes longer). */
const POLL_MS = 100;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new QwenVLError('E_ABORTED', 'pullModel: aborted while waiting for another download'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new QwenVLError('E_ABORTED', 'pullModel: aborted while waiting for another download'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Takes the lock file `lockPath` (its folder must exist) when it is free or left by a process that
 * died; otherwise returns the pid of the live process holding it. @internal
 */
export async function tryLockFile(lockPath: string): Promise<number | undefined> {
  for (;;) {
    try {
      const fh = await open(lockPath, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner = NaN;
    try {
      owner = Number((await readFile(lockPath, 'utf8')).trim());
    } catch {
      continue; // released meanwhile
    }
    if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) return owner;
    // Left by a process that died (or half-written): take it over.
    await rm(lockPath, { force: true });
  }
}

async function acquirePidFile(lockPath: string, signal: AbortSignal | undefined): Promise<() => Promise<void>> {
  while ((await tryLockFile(lockPath)) !== undefined) await sleep(POLL_MS, signal);
  return () => rm(lockPath, { force: true });
}

/** How {@link withLock} waits. */
export interface LockWait {
  signal?: AbortSignal | undefined;
  /** Give up with E_BUSY after waiting this long for another process (default: wait until it ends). */
  timeoutMs?: number | undefined;
  /** Called once when the lock is held by another process and the wait begins. */
  onWait?: (() => void) | undefined;
}

/** The flock of `lockPath`, waited for by polling (the addon's attempt never blocks the event loop). */
async function acquire(lockPath: string, fallback: string, w: LockWait): Promise<() => Promise<void>> {
  await mkdir(dirname(lockPath), { recursive: true });
  const started = performance.now();
  for (let waited = false; ; waited = true) {
    let fd: number | null;
    let native: NativeBinding;
    try {
      // Loaded here, not with the module: a pull works (with the pid lock) even without the addon.
      native = (await import('../native/binding.js')).native;
      fd = native.fileLockTry(lockPath);
    } catch (e) {
      if (e instanceof QwenVLError && (e.code === 'E_UNSUPPORTED' || e.code === 'E_NATIVE')) return acquirePidFile(fallback, w.signal);
      throw e;
    }
    if (fd !== null) {
      const held = fd;
      return async () => native.fileLockRelease(held);
    }
    if (!waited) w.onWait?.();
    if (w.timeoutMs !== undefined && performance.now() - started >= w.timeoutMs) {
      throw new QwenVLError('E_BUSY', `${lockPath}: another process (another pull, or Python's huggingface_hub) has been downloading this file for over ${Math.round(w.timeoutMs / 1000)} s; try again later`);
    }
    await sleep(POLL_MS, w.signal);
  }
}

/** Runs `fn` holding the lock `lockPath` (`fallback`: the pid lock file where flock is missing). */
export async function withLock<T>(lockPath: string, fallback: string, w: LockWait, fn: () => Promise<T>): Promise<T> {
  const before = inProcess.get(lockPath) ?? Promise.resolve();
  const run = before.catch(() => undefined).then(async () => {
    const release = await acquire(lockPath, fallback, w);
    try {
      return await fn();
    } finally {
      await release();
    }
  });
  inProcess.set(lockPath, run);
  try {
    return await run;
  } finally {
    if (inProcess.get(lockPath) === run) inProcess.delete(lockPath);
  }
}
