/**
 * How `qwenvl pull` shows {@link PullProgress}: on a terminal one line redrawn in place (file and
 * total, rate, time left); elsewhere (a log, a pipe, CI) plain lines: each file's start and end,
 * and a line per tenth of a large file. The line drawing and time format serve `qwenvl batch` too.
 * @internal
 * @module
 */
import type { PullProgress } from '../hub/progress.js';

/** `1.5 GiB`, `230.1 MiB`, `12 B`. @internal */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${x.toFixed(1)} ${units[i]}`;
}

/** `1:05:09`, `3:07`, `--:--` when unknown. @internal */
export function formatEta(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return '--:--';
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = String(t % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

function percent(a: number, b: number): string {
  return `${b === 0 ? 100 : Math.floor((100 * a) / b)}%`;
}

function totals(p: PullProgress): string {
  const rate = p.bytesPerSecond > 0 ? `${formatBytes(p.bytesPerSecond)}/s` : '-- /s';
  return `total ${percent(p.bytes, p.totalBytes)} ${formatBytes(p.bytes)}/${formatBytes(p.totalBytes)}, ${rate}, ETA ${formatEta(p.etaSeconds)}`;
}

/** The totals in few columns, for the terminal line. */
function shortTotals(p: PullProgress): string {
  const rate = p.bytesPerSecond > 0 ? `${formatBytes(p.bytesPerSecond)}/s` : '-- /s';
  return `total ${percent(p.bytes, p.totalBytes)} of ${formatBytes(p.totalBytes)}, ${rate}, ETA ${formatEta(p.etaSeconds)}`;
}

/** ` (+2 more)` when other files are downloading beside the one reported. */
function others(p: PullProgress): string {
  return p.filesActive > 1 ? ` (+${p.filesActive - 1} more)` : '';
}

/** A renderer: call it with each report; `end()` after the last. @internal */
export interface ProgressView {
  update(p: PullProgress): void;
  end(): void;
}

/** One line redrawn in place on a terminal (`columns` wide), cut to fit; `clear` before other output. @internal */
export function statusLine(write: (s: string) => void, columns: () => number): { draw(line: string): void; clear(): void } {
  let drawn = false;
  return {
    draw(line) {
      const width = Math.max(20, columns() - 1);
      const cut = line.length > width ? `${line.slice(0, width - 1)}…` : line;
      write(`\r${cut}\x1b[K`);
      drawn = true;
    },
    clear() {
      if (drawn) write('\r\x1b[K');
      drawn = false;
    },
  };
}

/** The one-line view for a terminal (`columns` wide). @internal */
export function ttyView(write: (s: string) => void, columns: () => number): ProgressView {
  const { draw, clear } = statusLine(write, columns);
  return {
    update(p) {
      const counter = `[${Math.min(p.filesDone + 1, p.fileCount)}/${p.fileCount}]`;
      switch (p.event) {
        case 'resolve':
          draw(`resolving ${p.repoId}…`);
          return;
        case 'wait':
          clear();
          write(`waiting: another process is downloading ${p.file}\n`);
          return;
        case 'start':
        case 'bytes':
          draw(`${counter} ${p.file} ${percent(p.fileBytes, p.fileSize)} of ${formatBytes(p.fileSize)}${others(p)} | ${shortTotals(p)}`);
          return;
        case 'verify':
          draw(`${counter} ${p.file} verifying… | ${shortTotals(p)}`);
          return;
        case 'file':
          clear();
          write(`${p.fromCache ? 'cached' : 'fetched'} ${p.file} (${formatBytes(p.fileSize)})\n`);
          return;
        case 'done':
          clear();
          return;
      }
    },
    end: clear,
  };
}

/** The plain-line view for logs and pipes. @internal */
export function plainView(write: (s: string) => void): ProgressView {
  // Per file: files download several at once, their reports interleaved.
  const nextTenths = new Map<string, number>();
  return {
    update(p) {
      const counter = `[${Math.min(p.filesDone + 1, p.fileCount)}/${p.fileCount}]`;
      switch (p.event) {
        case 'resolve':
          write(`resolving ${p.repoId}\n`);
          return;
        case 'wait':
          write(`waiting: another process is downloading ${p.file}\n`);
          return;
        case 'start':
          nextTenths.set(p.file ?? '', Math.floor((10 * p.fileBytes) / Math.max(1, p.fileSize)) + 1);
          write(
            p.fileBytes > 0
              ? `${counter} resuming ${p.file} at ${formatBytes(p.fileBytes)} of ${formatBytes(p.fileSize)}\n`
              : `${counter} downloading ${p.file} (${formatBytes(p.fileSize)})\n`,
          );
          return;
        case 'bytes': {
          // Large files only (small ones finish before a line would help).
          const nextTenth = nextTenths.get(p.file ?? '') ?? 1;
          if (p.fileSize >= 16 * 2 ** 20 && p.fileBytes * 10 >= nextTenth * p.fileSize && p.fileBytes < p.fileSize) {
            nextTenths.set(p.file ?? '', Math.floor((10 * p.fileBytes) / p.fileSize) + 1);
            write(`${counter} ${p.file} ${percent(p.fileBytes, p.fileSize)} | ${totals(p)}\n`);
          }
          return;
        }
        case 'verify':
          return;
        case 'file':
          nextTenths.delete(p.file ?? '');
          write(`${p.fromCache ? 'cached' : 'fetched'} ${p.file} (${formatBytes(p.fileSize)})\n`);
          return;
        case 'done':
          write(`done: ${p.fileCount} files, ${formatBytes(p.totalBytes)}\n`);
          return;
      }
    },
    end() {},
  };
}
