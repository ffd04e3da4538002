/**
 * One file into the cache: bytes appended to `blobs/<etag>.incomplete` (an HTTP Range request
 * resumes what an earlier, interrupted pull left there), hashed as they arrive, and renamed to
 * `blobs/<etag>` only when size and checksum match: sha256 for LFS files (their etag is the
 * sha256), the git blob id (sha1 of `blob <size>\0` + contents) for small files. A connection
 * that sends nothing for `stallMs` (huggingface_hub's HF_HUB_DOWNLOAD_TIMEOUT) is dropped and
 * retried like a broken one.
 * @internal
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { QwenVLError } from '../errors.js';
import { authHeaders, requestFailed, statusError } from './http.js';
import { hubFetch } from './proxy.js';
import type { ProgressTracker } from './progress.js';

/** What is known of the file before its bytes are fetched. */
export interface BlobTarget {
  /** The path in the repository (for messages and progress). */
  path: string;
  /** sha256 hex (LFS) or git blob sha1 hex: the blob's name and its checksum. */
  etag: string;
  size: number;
  /** Where the bytes are (the CDN address, or the resolve URL). */
  url: string;
  /** Whether to send the token there (not to another host, as huggingface_hub does). */
  sendToken: boolean;
}

const SHA256_RE = /^[0-9a-f]{64}$/;
const SHA1_RE = /^[0-9a-f]{40}$/;

/** Whether an etag can be checked: a sha256 or a git blob id. */
export function checkableEtag(etag: string): boolean {
  return SHA256_RE.test(etag) || SHA1_RE.test(etag);
}

function newHash(etag: string, size: number): Hash {
  if (SHA256_RE.test(etag)) return createHash('sha256');
  const h = createHash('sha1');
  h.update(`blob ${size}\0`);
  return h;
}

async function hashPrefix(h: Hash, file: string, length: number): Promise<void> {
  if (length === 0) return;
  for await (const chunk of createReadStream(file, { start: 0, end: length - 1 })) h.update(chunk as Buffer);
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

/** Errors worth another try (the connection, or the server for a moment), as opposed to answers. */
const transient = new WeakSet<object>();

function retryable(e: QwenVLError): QwenVLError {
  transient.add(e);
  return e;
}

/** A 416 to a Range request: the caller may start over. */
class RangeRefused {
  constructor(readonly error: QwenVLError) {}
}

function pause(ms: number, signal: AbortSignal | undefined, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new QwenVLError('E_ABORTED', `${what}: aborted`));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The chunks of `body`, ending with an error as soon as `signal` aborts even if the stream never
 * settles: after an abort, a pending read of fetch's body can stay pending for good.
 */
export async function* chunksOf(body: ReadableStream<Uint8Array>, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new DOMException('the download was stopped', 'AbortError'));
  });
  aborted.catch(() => undefined);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const r = await Promise.race([reader.read(), aborted]);
      if (r.done) return;
      yield r.value;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    // Not awaited: on a stuck stream it may never settle.
    reader.cancel().catch(() => undefined);
  }
}

/** One GET of the bytes from `have` on, appended to `partial`; returns the new length. */
async function fetchRest(
  t: BlobTarget,
  partial: string,
  have: number,
  token: string | undefined,
  progress: ProgressTracker,
  signal: AbortSignal | undefined,
  what: string,
  stallMs: number,
): Promise<number> {
  const headers: Record<string, string> = { 'accept-encoding': 'identity', ...(t.sendToken ? authHeaders(token) : {}) };
  if (have > 0) headers.range = `bytes=${have}-`;
  // Restarted by every chunk: fires only when the connection sends nothing for stallMs.
  const stall = new AbortController();
  const timer = setTimeout(() => stall.abort(), stallMs);
  const both = signal ? AbortSignal.any([signal, stall.signal]) : stall.signal;
  const stalled = (e: unknown): QwenVLError | undefined =>
    stall.signal.aborted && !signal?.aborted
      ? retryable(new QwenVLError('E_NETWORK', `${what}: no data for ${stallMs / 1000} s after ${have} of ${t.size} bytes (HF_HUB_DOWNLOAD_TIMEOUT); pull again to resume`, { cause: e }))
      : undefined;
  try {
    let res: Response;
    try {
      res = await hubFetch(t.url, { headers, signal: both });
    } catch (e) {
      const err = stalled(e) ?? requestFailed(e, what, signal);
      throw err.code === 'E_NETWORK' ? retryable(err) : err;
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      const err = statusError(res, what, token !== undefined && t.sendToken);
      if (res.status === 416 && have > 0) throw new RangeRefused(err);
      throw res.status >= 500 || res.status === 429 || res.status === 408 ? retryable(err) : err;
    }
    if (have > 0 && res.status !== 206) {
      // The range was ignored (200, whole file): drop the partial bytes and take it all.
      progress.bytes -= have;
      have = 0;
    } else if (have > 0) {
      const range = res.headers.get('content-range');
      if (range === null || !range.startsWith(`bytes ${have}-`)) {
        await res.body?.cancel().catch(() => undefined);
        throw new QwenVLError('E_NETWORK', `${what}: asked for bytes from ${have}, the server sent ${range ?? 'no Content-Range'}`);
      }
    }
    const fh = await open(partial, have === 0 ? 'w' : 'a');
    try {
      if (!res.body) throw new QwenVLError('E_NETWORK', `${what}: empty answer`);
      for await (const chunk of chunksOf(res.body as ReadableStream<Uint8Array>, both)) {
        timer.refresh();
        if (have + chunk.byteLength > t.size) {
          await fh.close().catch(() => undefined);
          await rm(partial, { force: true });
          throw new QwenVLError('E_INTEGRITY', `${what}: the server sent more than the expected ${t.size} bytes; nothing was kept`);
        }
        await fh.write(chunk);
        have += chunk.byteLength;
        progress.transfer(chunk.byteLength);
        progress.report('bytes', { path: t.path, bytes: have, size: t.size });
      }
    } catch (e) {
      if (e instanceof QwenVLError) throw e;
      const stuck = stalled(e);
      if (stuck) throw stuck;
      const err = requestFailed(e, what, signal);
      if (err.code === 'E_ABORTED') throw err;
      const detail = err.message.slice(what.length + 2);
      throw retryable(new QwenVLError('E_NETWORK', `${what}: connection lost after ${have} of ${t.size} bytes (${detail}); pull again to resume`, { cause: e }));
    } finally {
      await fh.close().catch(() => undefined);
    }
  } finally {
    clearTimeout(timer);
  }
  if (have < t.size) throw retryable(new QwenVLError('E_NETWORK', `${what}: the answer ended after ${have} of ${t.size} bytes; pull again to resume`));
  return have;
}

/**
 * Fetches `t` into `blobPath` (resuming `blobPath.incomplete`), verifies it and commits it. A
 * broken connection or a 5xx / 429 answer is retried `retries` times, resuming each time.
 */
export async function downloadBlob(
  t: BlobTarget,
  blobPath: string,
  token: string | undefined,
  progress: ProgressTracker,
  signal: AbortSignal | undefined,
  retries: number,
  stallMs: number,
): Promise<void> {
  const partial = `${blobPath}.incomplete`;
  await mkdir(dirname(blobPath), { recursive: true });
  const what = `download of ${t.path}`;
  let start = await sizeOf(partial);
  if (start > t.size) {
    await rm(partial, { force: true });
    start = 0;
  }
  progress.bytes += start;
  progress.report('start', { path: t.path, bytes: start, size: t.size });

  let have = start;
  let restarted = false;
  for (let retry = 0; have < t.size; retry++) {
    try {
      have = await fetchRest(t, partial, have, token, progress, signal, what, stallMs);
    } catch (e) {
      if (e instanceof RangeRefused && !restarted) {
        // The server will not serve from there: start over once.
        restarted = true;
        progress.bytes -= have;
        await rm(partial, { force: true });
        have = 0;
        continue;
      }
      if (!transient.has(e as object) || retry >= retries) throw e instanceof RangeRefused ? e.error : e;
      // A broken connection or a server hiccup: resume from what arrived, after a pause.
      have = await sizeOf(partial);
      await pause(Math.min(8000, 500 * 2 ** retry), signal, what);
    }
  }

  progress.report('verify', { path: t.path, bytes: have, size: t.size });
  const h = newHash(t.etag, t.size);
  await hashPrefix(h, partial, t.size);
  const digest = h.digest('hex');
  if (digest !== t.etag) {
    await rm(partial, { force: true });
    const algo = SHA256_RE.test(t.etag) ? 'sha256' : 'git blob id';
    throw new QwenVLError('E_INTEGRITY', `${what}: ${algo} is ${digest}, expected ${t.etag}; the download was discarded`);
  }
  await rename(partial, blobPath);
}
