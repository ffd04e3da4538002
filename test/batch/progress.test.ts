// The two progress views of `qwenvl batch` and the rates they show.
import { describe, expect, it } from 'vitest';
import { batchPlainView, batchTtyView, progressLine } from '../../lib/cli/batch-progress.js';
import { BatchStats, type BatchProgress } from '../../lib/batch/stats.js';

const start = { total: 100, skipped: 20, repairedBytes: 0, droppedFailures: 0 };

function progress(done: number, failed = 0, elapsedSeconds = 10): BatchProgress {
  const itemsPerSecond = done / elapsedSeconds;
  return {
    total: 100,
    skipped: 20,
    done,
    failed,
    promptTokens: done * 50,
    completionTokens: done * 30,
    elapsedSeconds,
    itemsPerSecond,
    tokensPerSecond: (done * 30) / elapsedSeconds,
    etaSeconds: itemsPerSecond > 0 ? (80 - done) / itemsPerSecond : undefined,
  };
}

describe('batch progress', () => {
  it('counts rates since the run began and the time left at that rate', () => {
    let t = 1000;
    const s = new BatchStats(() => t);
    s.total = 10;
    s.skipped = 2;
    expect(s.snapshot()).toMatchObject({ itemsPerSecond: 0, etaSeconds: undefined });
    t += 4000;
    s.done = 2;
    s.completionTokens = 100;
    expect(s.snapshot()).toMatchObject({ elapsedSeconds: 4, itemsPerSecond: 0.5, tokensPerSecond: 25, etaSeconds: 12 });
    s.done = 8;
    expect(s.snapshot().etaSeconds).toBe(0);
  });

  it('a progress line: done of total (earlier runs included), failures, rates, ETA', () => {
    expect(progressLine(progress(20, 2))).toBe('40/100 (40%), 2 failed, 2.00 req/s, 60.0 tok/s, ETA 0:30');
    expect(progressLine(progress(0, 0))).toBe('20/100 (20%), 0.00 req/s, 0.00 tok/s, ETA --:--');
  });

  it('plain view: no carriage returns; a line per twentieth of the work, every failure, a summary', () => {
    let out = '';
    const v = batchPlainView((s) => void (out += s));
    v.start({ ...start, repairedBytes: 17 }, 'in.jsonl', 'out.jsonl');
    for (let d = 1; d <= 80; d++) v.item({ line: d, customId: `c${d}`, ...(d === 7 ? { error: { code: 'E_INPUT', message: 'bad' } } : {}) }, progress(d, d >= 7 ? 1 : 0));
    v.end({ progress: progress(80, 1), interrupted: false, failedTotal: 3 }, 'out.jsonl');
    expect(out).not.toContain('\r');
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toBe('out.jsonl: cut off a half-written last line (17 bytes); its request runs again');
    expect(lines[1]).toBe('batch in.jsonl: 100 request(s), 20 already in out.jsonl, 80 to run');
    expect(lines).toContain('failed "c7": E_INPUT: line 7: bad');
    expect(lines.filter((l) => /^\d+\/100 \(\d+%\)/.test(l))).toHaveLength(19);
    expect(lines.at(-1)).toBe('done: 80 request(s) (1 failed) in 0:10, 8.00 req/s, 240 tok/s; out.jsonl answers all 100; 3 of them are errors (--retry-failed runs them again)');
  });

  it('terminal view: one line redrawn in place, cut to the width; failures and the summary on their own lines', () => {
    let out = '';
    const v = batchTtyView((s) => void (out += s), () => 40);
    v.start(start, 'in.jsonl', 'out.jsonl');
    v.item({ line: 1, customId: 'a' }, progress(1));
    v.tick(progress(1, 0, 11));
    v.item({ line: 2, customId: 'b', error: { code: 'E_INPUT', message: 'line 2: not valid JSON' } }, progress(2, 1));
    v.end({ progress: progress(2, 1), interrupted: true, failedTotal: 1 }, 'out.jsonl');
    expect(out).toContain('\r21/100 (21%), 0.10 req/s, 3.00 tok/s, …\x1b[K');
    expect(out).toContain('\r\x1b[Kfailed "b": E_INPUT: line 2: not valid JSON\n');
    expect(out.endsWith('\r\x1b[Kinterrupted: 2 request(s) (1 failed) in 0:10, 0.20 req/s, 6.00 tok/s; 78 left: run the same command again to resume\n')).toBe(true);
  });
});
