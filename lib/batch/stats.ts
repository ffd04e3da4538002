/**
 * Counts of a batch run and the rates shown while it runs: requests and generated tokens per
 * second since the run began, and the time left at that request rate.
 * @internal
 * @module
 */

/** A snapshot of a batch run. @internal */
export interface BatchProgress {
  /** Requests (non-blank lines) in the input file. */
  total: number;
  /** Requests that already had a line in the output when the run began (skipped). */
  skipped: number;
  /** Requests this run has finished (written), successes and failures. */
  done: number;
  /** Of those, the ones recorded as errors. */
  failed: number;
  /** Prompt and generated tokens of this run's successes. */
  promptTokens: number;
  completionTokens: number;
  /** Seconds since the run began. */
  elapsedSeconds: number;
  /** Requests finished per second over the run (0 before the first). */
  itemsPerSecond: number;
  /** Generated tokens per second over the run. */
  tokensPerSecond: number;
  /** Seconds left at that rate; undefined before the first request finishes. */
  etaSeconds: number | undefined;
}

/** Accumulates a run's counts. @internal */
export class BatchStats {
  total = 0;
  skipped = 0;
  done = 0;
  failed = 0;
  promptTokens = 0;
  completionTokens = 0;
  private readonly start: number;

  constructor(private readonly now: () => number = () => performance.now()) {
    this.start = now();
  }

  snapshot(): BatchProgress {
    const elapsedSeconds = (this.now() - this.start) / 1000;
    const itemsPerSecond = elapsedSeconds > 0 ? this.done / elapsedSeconds : 0;
    const left = Math.max(0, this.total - this.skipped - this.done);
    return {
      total: this.total,
      skipped: this.skipped,
      done: this.done,
      failed: this.failed,
      promptTokens: this.promptTokens,
      completionTokens: this.completionTokens,
      elapsedSeconds,
      itemsPerSecond,
      tokensPerSecond: elapsedSeconds > 0 ? this.completionTokens / elapsedSeconds : 0,
      etaSeconds: left === 0 ? 0 : itemsPerSecond > 0 ? left / itemsPerSecond : undefined,
    };
  }
}
