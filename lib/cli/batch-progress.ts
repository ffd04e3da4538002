/**
 * How `qwenvl batch` shows its progress on stderr: on a terminal one line redrawn in place
 * (requests done of total, failures, requests/s, generated tokens/s, time left), refreshed every
 * second; elsewhere (a log, a pipe, CI) plain lines, one per twentieth of the work or per half
 * minute. Both print every failed line and a summary at the end.
 * @internal
 * @module
 */
import type { LineError } from '../batch/input.js';
import type { BatchStart, BatchSummary } from '../batch/run.js';
import type { BatchProgress } from '../batch/stats.js';
import { formatEta, statusLine } from './pull-progress.js';

/** A renderer of a batch run. @internal */
export interface BatchView {
  start(s: BatchStart, input: string, output: string): void;
  item(item: { line: number; customId: string; error?: LineError }, p: BatchProgress): void;
  /** A timer's redraw (rates and time left change while nothing finishes). */
  tick(p: BatchProgress): void;
  end(summary: BatchSummary, output: string): void;
  /** The run failed (the error is reported next): take the status line away. */
  stop(): void;
}

function rate(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/** `123/500 (24%), 2 failed, 3.10 req/s, 412 tok/s, ETA 2:01`. @internal */
export function progressLine(p: BatchProgress): string {
  const have = p.skipped + p.done;
  const pct = p.total === 0 ? 100 : Math.floor((100 * have) / p.total);
  const failed = p.failed > 0 ? `, ${p.failed} failed` : '';
  return `${have}/${p.total} (${pct}%)${failed}, ${rate(p.itemsPerSecond)} req/s, ${rate(p.tokensPerSecond)} tok/s, ETA ${formatEta(p.etaSeconds)}`;
}

function startLines(s: BatchStart, input: string, output: string): string {
  const lines: string[] = [];
  if (s.repairedBytes > 0) lines.push(`${output}: cut off a half-written last line (${s.repairedBytes} bytes); its request runs again`);
  if (s.droppedFailures > 0) lines.push(`${output}: removed ${s.droppedFailures} error line(s) to retry them`);
  const already = s.skipped > 0 ? `, ${s.skipped} already in ${output}` : '';
  lines.push(`batch ${input}: ${s.total} request(s)${already}, ${s.total - s.skipped} to run`);
  return lines.map((l) => `${l}\n`).join('');
}

function failureLine(item: { line: number; customId: string; error?: LineError }): string {
  const e = item.error!;
  // Messages from parsing already start with "line N:".
  const where = e.message.startsWith(`line ${item.line}:`) ? '' : `line ${item.line}: `;
  return `failed ${JSON.stringify(item.customId)}: ${e.code}: ${where}${e.message}\n`;
}

function endLine(s: BatchSummary, output: string): string {
  const p = s.progress;
  const failed = p.failed > 0 ? ` (${p.failed} failed)` : '';
  const run = `${p.done} request(s)${failed} in ${formatEta(p.elapsedSeconds)}, ${rate(p.itemsPerSecond)} req/s, ${rate(p.tokensPerSecond)} tok/s`;
  if (s.interrupted) {
    const left = p.total - p.skipped - p.done;
    return `interrupted: ${run}; ${left} left: run the same command again to resume\n`;
  }
  const errors = s.failedTotal > 0 ? `; ${s.failedTotal} of them are errors (--retry-failed runs them again)` : '';
  return `done: ${run}; ${output} answers all ${p.total}${errors}\n`;
}

/** The one-line view for a terminal. @internal */
export function batchTtyView(write: (s: string) => void, columns: () => number): BatchView {
  const line = statusLine(write, columns);
  return {
    start(s, input, output) {
      write(startLines(s, input, output));
    },
    item(item, p) {
      if (item.error) {
        line.clear();
        write(failureLine(item));
      }
      line.draw(progressLine(p));
    },
    tick(p) {
      line.draw(progressLine(p));
    },
    end(s, output) {
      line.clear();
      write(endLine(s, output));
    },
    stop: line.clear,
  };
}

const PLAIN_EVERY_S = 30;

/** The plain-line view for logs and pipes. @internal */
export function batchPlainView(write: (s: string) => void): BatchView {
  let toRun = 0;
  let nextStep = 1;
  let lastAt = 0;
  return {
    start(s, input, output) {
      toRun = s.total - s.skipped;
      write(startLines(s, input, output));
    },
    item(item, p) {
      if (item.error) write(failureLine(item));
      // A line per twentieth of the work, and at least one per half minute while work finishes.
      const step = toRun === 0 ? 20 : Math.floor((20 * p.done) / toRun);
      if (p.done < toRun && (step >= nextStep || p.elapsedSeconds - lastAt >= PLAIN_EVERY_S)) {
        nextStep = step + 1;
        lastAt = p.elapsedSeconds;
        write(`${progressLine(p)}\n`);
      }
    },
    tick() {},
    end(s, output) {
      write(endLine(s, output));
    },
    stop() {},
  };
}
