/**
 * The results file of a batch: JSON Lines in OpenAI's batch output form, appended to as requests
 * finish, so that a rerun resumes where a run stopped.
 *
 * Opening it repairs a crash mid-write (a last line without its newline is cut off: that request
 * runs again) and reads which custom_ids already have a line. Lines are written whole, one write
 * each, and flushed to disk (fdatasync) whenever the writes waiting have gone out, so a power cut
 * loses at most the lines in flight.
 * @internal
 * @module
 */
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { inputError } from '../errors.js';
import { tryLockFile } from '../hub/lock.js';
import type { LineError } from './input.js';
import { fileLines } from './lines.js';

/** One line of the results file (OpenAI's batch output line). @internal */
export interface ResultLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: unknown } | null;
  error: LineError | null;
}

/** What an existing results file holds. @internal */
export interface ExistingResults {
  /** custom_id -> whether its line is a success (`true`) or an error record (`false`). */
  done: Map<string, boolean>;
  /** Bytes of a partial last line cut off (0 when the file ended cleanly or did not exist). */
  repairedBytes: number;
  /** Error records dropped for `retryFailed`. */
  droppedFailures: number;
}

const TAIL_CHUNK = 64 * 1024;

/** Where the last line starts: just after the last newline (0 when there is none). */
async function lastLineStart(fh: FileHandle, size: number): Promise<number> {
  const buf = Buffer.alloc(TAIL_CHUNK);
  for (let end = size; end > 0; ) {
    const start = Math.max(0, end - TAIL_CHUNK);
    const { bytesRead } = await fh.read(buf, 0, end - start, start);
    const nl = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (nl >= 0) return start + nl + 1;
    end = start;
  }
  return 0;
}

/**
 * A last line without its newline is a write cut short: it is cut off (its request runs again),
 * unless it is a whole result line that only lacks the newline, which is then added. Returns the
 * bytes cut off.
 */
async function repairTail(path: string): Promise<number> {
  const fh = await open(path, 'r+');
  try {
    const { size } = await fh.stat();
    const keep = await lastLineStart(fh, size);
    if (keep === size) return 0;
    const tail = Buffer.alloc(size - keep);
    await fh.read(tail, 0, tail.length, keep);
    if (isResultLine(tail.toString('utf8'))) {
      await fh.write('\n', size);
      return 0;
    }
    await fh.truncate(keep);
    return size - keep;
  } finally {
    await fh.close();
  }
}

/** The line as a result line, or undefined when it is not one. */
function parseResultLine(text: string): Partial<ResultLine> | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  const r = v as Partial<ResultLine> | null;
  if (r === null || typeof r !== 'object' || Array.isArray(r) || typeof r.custom_id !== 'string' || !('error' in r)) return undefined;
  return r;
}

function isResultLine(text: string): boolean {
  return parseResultLine(text) !== undefined;
}

/** The custom_id and outcome of a complete results line; throws E_INPUT for anything else. */
function readResultLine(path: string, text: string, line: number): { id: string; ok: boolean } {
  const r = parseResultLine(text);
  if (r === undefined) {
    // A complete line that is not ours: appending to someone else's file would mix two formats.
    throw inputError(`${path} line ${line} is not a batch result line; refusing to append to this file (choose another --out)`);
  }
  return { id: r.custom_id!, ok: r.error === null && r.response !== null && r.response !== undefined };
}

/** Writes the lines of `path` that are not error records to a new file that replaces it. */
async function dropFailures(path: string): Promise<number> {
  const tmp = `${path}.retry-${process.pid}.tmp`;
  const fh = await open(tmp, 'w');
  let dropped = 0;
  try {
    for await (const { text, line } of fileLines(path)) {
      if (!readResultLine(path, text, line).ok) dropped++;
      else await writeAll(fh, `${text}\n`);
    }
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await rename(tmp, path);
  return dropped;
}

/**
 * Repairs and reads an existing results file (a missing one is empty). With `retryFailed`, error
 * records are removed from it first (the file is rewritten and renamed into place) so that their
 * requests run again.
 * @internal
 */
export async function readExistingResults(path: string, retryFailed = false): Promise<ExistingResults> {
  const done = new Map<string, boolean>();
  const exists = await stat(path).then(
    (s) => {
      if (!s.isFile()) throw inputError(`--out ${path} is not a regular file`);
      return true;
    },
    (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return false;
      throw e;
    },
  );
  if (!exists) return { done, repairedBytes: 0, droppedFailures: 0 };
  const repairedBytes = await repairTail(path);
  const droppedFailures = retryFailed ? await dropFailures(path) : 0;
  for await (const { text, line } of fileLines(path)) {
    const { id, ok } = readResultLine(path, text, line);
    // A later line for the same id wins (a file assembled by hand may repeat one).
    done.set(id, ok);
  }
  return { done, repairedBytes, droppedFailures };
}

async function writeAll(fh: FileHandle, text: string): Promise<void> {
  let buf = Buffer.from(text, 'utf8');
  while (buf.length > 0) {
    const { bytesWritten } = await fh.write(buf, 0, buf.length);
    buf = buf.subarray(bytesWritten);
  }
}

/**
 * Appends result lines one write each, in the order {@link append} is called; flushes to disk
 * once the queue is empty. A failed write (disk full, ...) rejects that append and every later one.
 * @internal
 */
export class ResultWriter {
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;
  private failure: unknown;

  private constructor(private readonly fh: FileHandle) {}

  static async open(path: string): Promise<ResultWriter> {
    return new ResultWriter(await open(path, 'a'));
  }

  /** Resolves once the line is written (and flushed, with any lines queued behind it). */
  append(line: ResultLine): Promise<void> {
    const text = `${JSON.stringify(line)}\n`;
    this.pending++;
    const done = this.tail.then(async () => {
      if (this.failure !== undefined) throw this.failure;
      try {
        await writeAll(this.fh, text);
        // One flush for every line that queued up meanwhile.
        if (this.pending === 1) await this.fh.datasync();
      } catch (e) {
        this.failure ??= e;
        throw e;
      } finally {
        this.pending--;
      }
    });
    this.tail = done.catch(() => undefined);
    return done;
  }

  /** Waits for the writes queued, flushes and closes the file. */
  async close(): Promise<void> {
    await this.tail;
    try {
      if (this.failure === undefined) await this.fh.datasync();
    } finally {
      await this.fh.close();
    }
  }
}

/**
 * Takes `<output>.lock` for this process, so that two runs never append to one results file (each
 * would run the other's requests again); a lock left by a process that died is taken over.
 * Resolves to its release.
 * @internal
 */
export async function lockResults(output: string): Promise<() => Promise<void>> {
  const lockPath = `${output}.lock`;
  const owner = await tryLockFile(lockPath);
  if (owner !== undefined) {
    throw inputError(`${output} is being written by another process (pid ${owner}); wait for it to end, or stop it (its lock: ${lockPath})`);
  }
  return () => rm(lockPath, { force: true });
}
