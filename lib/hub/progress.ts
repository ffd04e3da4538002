/**
 * Download progress of a pull: per file and in total, with the transfer rate over the last few
 * seconds and the time left at that rate.
 * @module
 */
import { guard } from '../validate.js';

/** One report of {@link pullModel}'s `onProgress`. */
export interface PullProgress {
  /**
   * - `'resolve'`: asking the Hub which commit the revision is and which files it has;
   * - `'wait'`: another process (another pull, or Python's huggingface_hub) is downloading `file`;
   *   this pull waits for it to finish and then uses its result;
   * - `'start'`: a file begins downloading (`fileBytes` > 0 when a partial download is resumed);
   * - `'bytes'`: bytes of `file` arrived (at most about ten reports a second per file; with several
   *   files downloading at once, reports of different files interleave);
   * - `'verify'`: `file` is complete and being checked against its sha256 / git blob id;
   * - `'file'`: `file` is in the snapshot (`fromCache` when no byte had to be fetched);
   * - `'done'`: every file is.
   */
  event: 'resolve' | 'wait' | 'start' | 'bytes' | 'verify' | 'file' | 'done';
  repoId: string;
  /** The commit being fetched, once known. */
  commit?: string;
  /** The file this report is about (a path in the repository), for wait / start / bytes / verify / file. */
  file?: string;
  /** Bytes of `file` present so far, and its size. */
  fileBytes: number;
  fileSize: number;
  /** Files finished so far and the number of files to fetch (0 until the file list is known). */
  filesDone: number;
  fileCount: number;
  /** Files whose bytes are being fetched right now (up to the pull's `concurrency`). */
  filesActive: number;
  /** Bytes present so far over all files (cached and resumed bytes included), and their total. */
  bytes: number;
  totalBytes: number;
  /** Bytes per second actually transferred over the last few seconds (0 before any). */
  bytesPerSecond: number;
  /** Seconds left at that rate; undefined while the rate is unknown. */
  etaSeconds: number | undefined;
  /** For `'file'`: the blob was already in the cache. */
  fromCache?: boolean;
}

const WINDOW_MS = 5000;
const BYTES_EVERY_MS = 100;

/** Keeps the totals and the rate and hands reports to the callback. @internal */
export class ProgressTracker {
  private samples: { t: number; n: number }[] = [];
  /** Bytes that came over the network. */
  transferred = 0;
  /** When each downloading file last had a byte report; its keys are the files being fetched. */
  private lastBytesReport = new Map<string, number>();
  commit: string | undefined;
  bytes = 0;
  totalBytes = 0;
  filesDone = 0;
  fileCount = 0;

  constructor(
    readonly repoId: string,
    private readonly callback: ((p: PullProgress) => void) | undefined,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Counts bytes that came over the network (cached or resumed bytes are added to `bytes` directly). */
  transfer(n: number): void {
    this.transferred += n;
    this.bytes += n;
    const t = this.now();
    this.samples.push({ t, n: this.transferred });
    while (this.samples.length > 2 && t - this.samples[0]!.t > WINDOW_MS) this.samples.shift();
  }

  rate(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.t - first.t < 50) return 0;
    return ((last.n - first.n) * 1000) / (last.t - first.t);
  }

  report(event: PullProgress['event'], file?: { path: string; bytes: number; size: number; fromCache?: boolean }): void {
    if (!this.callback) return;
    if (file && event === 'start') this.lastBytesReport.set(file.path, -Infinity);
    if (file && event === 'file') this.lastBytesReport.delete(file.path);
    if (file && event === 'bytes') {
      const t = this.now();
      if (t - (this.lastBytesReport.get(file.path) ?? -Infinity) < BYTES_EVERY_MS && file.bytes < file.size) return;
      this.lastBytesReport.set(file.path, t);
    }
    const rate = this.rate();
    const left = Math.max(0, this.totalBytes - this.bytes);
    const p: PullProgress = {
      event,
      repoId: this.repoId,
      ...(this.commit !== undefined ? { commit: this.commit } : {}),
      ...(file ? { file: file.path } : {}),
      fileBytes: file?.bytes ?? 0,
      fileSize: file?.size ?? 0,
      filesDone: this.filesDone,
      fileCount: this.fileCount,
      filesActive: this.lastBytesReport.size,
      bytes: this.bytes,
      totalBytes: this.totalBytes,
      bytesPerSecond: rate,
      etaSeconds: left === 0 ? 0 : rate > 0 ? left / rate : undefined,
      ...(file?.fromCache !== undefined ? { fromCache: file.fromCache } : {}),
    };
    guard('pullModel: options.onProgress', () => this.callback?.(p));
  }
}
