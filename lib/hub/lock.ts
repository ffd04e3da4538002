/**
 * One download per blob at a time: within this process by a promise chain, across processes by a
 * lock file holding the owner's pid (`<cache>/.locks/models--org--name/<etag>.qwenvl.lock`, beside
 * where huggingface_hub keeps its own locks). A lock whose process is gone is taken over.
 * `qwenvl batch` takes its results file's lock with {@link tryLockFile}.
 * @internal
 * @module
 */
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { QwenVLError } from '../errors.js';

const inProcess = new Map<string, Promise<unknown>>();
const POLL_MS = 250;

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

async function acquireFile(lockPath: string, signal: AbortSignal | undefined): Promise<void> {
  await mkdir(dirname(lockPath), { recursive: true });
  while ((await tryLockFile(lockPath)) !== undefined) await sleep(POLL_MS, signal);
}

/** Runs `fn` holding the lock of `lockPath`. */
export async function withLock<T>(lockPath: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  const before = inProcess.get(lockPath) ?? Promise.resolve();
  const run = before.catch(() => undefined).then(async () => {
    await acquireFile(lockPath, signal);
    try {
      return await fn();
    } finally {
      await rm(lockPath, { force: true });
    }
  });
  inProcess.set(lockPath, run);
  try {
    return await run;
  } finally {
    if (inProcess.get(lockPath) === run) inProcess.delete(lockPath);
  }
}
