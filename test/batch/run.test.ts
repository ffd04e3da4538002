// The batch runner on its own, with a stand-in model (a chat function that answers from the
// request) and mapping: reading, resuming, repairing, refusing, stopping, seeding, concurrency.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QwenVLError } from '../../lib/errors.js';
import { parseBatchLine } from '../../lib/batch/input.js';
import { planBatch, runBatch, type BatchRequestMapping, type BatchRunOptions } from '../../lib/batch/run.js';
import { lockResults, type ResultLine } from '../../lib/batch/output.js';
import { requestSeed } from '../../lib/batch/seed.js';
import type { ChatResult, Conversation } from '../../lib/model/model.js';

let dir: string;
let input: string;
let output: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'qwenvl-batch-'));
  input = join(dir, 'requests.jsonl');
  output = join(dir, 'results.jsonl');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const req = (id: string, text: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { messages: [{ role: 'user', content: text }], ...extra } });

/** Echoes the prompt and the seed; a body with `fail` is refused as a bad request. */
const mapping: BatchRequestMapping = {
  async prepare(body) {
    if (body.fail) throw new QwenVLError('E_INPUT', `bad request: ${String(body.fail)}`);
    const messages = body.messages as Conversation;
    const seed = body.seed as number | undefined;
    return {
      messages,
      options: seed !== undefined ? { seed } : {},
      complete: (r: ChatResult) => ({ object: 'chat.completion', choices: [{ message: { role: 'assistant', content: r.text } }] }),
      close: async () => undefined,
    };
  },
};

function echo(delayMs = 0) {
  const calls: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const chat = async (messages: Conversation, options: { seed?: number; signal?: AbortSignal }): Promise<ChatResult> => {
    const text = String(messages[0].content);
    calls.push(text);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      if (delayMs > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delayMs);
          options.signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
        });
      }
      const aborted = options.signal?.aborted === true;
      return {
        text: `${text}|seed=${options.seed ?? 'none'}`,
        tokens: [1, 2, 3],
        usage: { promptTokens: 5, completionTokens: 3, totalTokens: 8 },
        finishReason: aborted ? 'abort' : 'stop',
      };
    } finally {
      inFlight--;
    }
  };
  return { chat, calls, max: () => maxInFlight };
}

async function run(extra: Partial<BatchRunOptions> = {}, retryFailed = false) {
  const plan = await planBatch(input, output, retryFailed);
  const fake = echo();
  const summary = await runBatch(plan, { concurrency: 3, mapping, chat: fake.chat, ...extra });
  return { plan, summary, calls: fake.calls };
}

function results(): ResultLine[] {
  return readFileSync(output, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as ResultLine);
}

const byId = (lines: ResultLine[]) => new Map(lines.map((l) => [l.custom_id, l]));
const content = (l: ResultLine | undefined) =>
  (l?.response?.body as { choices: { message: { content: string } }[] } | undefined)?.choices[0].message.content;

describe('batch lines', () => {
  it('reads the Batch API form and the flat form; names unreadable lines line-N', () => {
    expect(parseBatchLine(req('a', 'hi'), 1)).toMatchObject({ customId: 'a', body: { messages: [{ content: 'hi' }] } });
    expect(parseBatchLine('{"custom_id":"b","messages":[],"max_tokens":3}', 2)).toEqual({ line: 2, customId: 'b', body: { messages: [], max_tokens: 3 } });
    expect(parseBatchLine('{"custom_id":', 3)).toMatchObject({ customId: 'line-3', error: { code: 'E_INPUT', message: expect.stringMatching(/^line 3: not valid JSON/) } });
    expect(parseBatchLine('[1]', 4)).toMatchObject({ customId: 'line-4', error: { code: 'E_INPUT' } });
    expect(parseBatchLine('{"custom_id":7,"messages":[]}', 5)).toMatchObject({ customId: 'line-5', error: { message: 'line 5: custom_id must be a non-empty string, got 7' } });
    expect(parseBatchLine('{"custom_id":"e","url":"/v1/embeddings","body":{}}', 6)).toMatchObject({ customId: 'e', error: { code: 'E_UNSUPPORTED' } });
    expect(parseBatchLine('{"custom_id":"g","method":"GET","url":"/v1/chat/completions","body":{}}', 7)).toMatchObject({ error: { code: 'E_UNSUPPORTED' } });
    expect(parseBatchLine('{"custom_id":"n","url":"/v1/chat/completions","body":null}', 8)).toMatchObject({ error: { code: 'E_INPUT' } });
  });
});

describe('runBatch', () => {
  it('writes one line per request: responses, and errors for bad lines and failed requests; the batch goes on', async () => {
    // A byte order mark before the first line, CRLF endings, blank lines.
    writeFileSync(input, '\uFEFF' + [req('a', 'one'), '', '{not json', req('b', 'two', { fail: 'nope' }), '{"custom_id":"c","messages":[{"role":"user","content":"three"}]}', '  '].join('\r\n'));
    const { plan, summary, calls } = await run();
    expect(plan.total).toBe(4);
    expect(summary.interrupted).toBe(false);
    expect(summary.failedTotal).toBe(2);
    expect(summary.progress).toMatchObject({ total: 4, skipped: 0, done: 4, failed: 2, completionTokens: 6, promptTokens: 10 });
    expect(calls.sort()).toEqual(['one', 'three']);
    const lines = results();
    expect(lines).toHaveLength(4);
    const got = byId(lines);
    expect(content(got.get('a'))).toBe('one|seed=none');
    expect(got.get('a')).toMatchObject({ id: expect.stringMatching(/^batch_req_/), error: null, response: { status_code: 200, request_id: expect.stringMatching(/^req_/) } });
    expect(got.get('line-3')).toMatchObject({ response: null, error: { code: 'E_INPUT', message: expect.stringMatching(/^line 3: not valid JSON/) } });
    expect(got.get('b')).toMatchObject({ response: null, error: { code: 'E_INPUT', message: 'bad request: nope' } });
    expect(content(got.get('c'))).toBe('three|seed=none');
  });

  it('refuses repeated custom_ids before running anything', async () => {
    writeFileSync(input, [req('a', '1'), req('b', '2'), req('a', '3')].join('\n'));
    await expect(planBatch(input, output)).rejects.toThrow(/custom_id must be unique.*"a" \(lines 1 and 3\)/);
  });

  it('resumes: skips ids already answered and cuts off a half-written last line', async () => {
    writeFileSync(input, ['a', 'b', 'c', 'd'].map((id) => req(id, id)).join('\n') + '\n');
    await run();
    const full = readFileSync(output, 'utf8').split('\n');
    // Keep two whole lines and half of the third, as a crash mid-write leaves it.
    const keep = `${full[0]}\n${full[1]}\n${full[2].slice(0, 40)}`;
    writeFileSync(output, keep);
    const first = new Set([JSON.parse(full[0]).custom_id, JSON.parse(full[1]).custom_id]);
    const { plan, summary, calls } = await run();
    expect(plan.repairedBytes).toBe(40);
    expect(plan.skipped).toBe(2);
    expect(calls.sort()).toEqual(['a', 'b', 'c', 'd'].filter((id) => !first.has(id)));
    expect(summary.progress).toMatchObject({ total: 4, skipped: 2, done: 2 });
    const lines = results();
    expect(lines.map((l) => l.custom_id).sort()).toEqual(['a', 'b', 'c', 'd']);
    // Everything answered: a third run runs nothing.
    const again = await run();
    expect(again.calls).toEqual([]);
    expect(again.summary.progress).toMatchObject({ skipped: 4, done: 0 });
    expect(results()).toHaveLength(4);
  });

  it('keeps a whole last line that only lacks its newline', async () => {
    writeFileSync(input, [req('a', 'a'), req('b', 'b')].join('\n'));
    await run();
    const text = readFileSync(output, 'utf8');
    writeFileSync(output, text.split('\n')[0]);
    const { plan, calls } = await run();
    expect(plan.repairedBytes).toBe(0);
    expect(calls).toHaveLength(1);
    expect(results().map((l) => l.custom_id).sort()).toEqual(['a', 'b']);
  });

  it('refuses to append to a file that is not a results file', async () => {
    writeFileSync(input, req('a', 'a'));
    writeFileSync(output, 'hello world\n');
    await expect(planBatch(input, output)).rejects.toMatchObject({ code: 'E_INPUT', message: expect.stringMatching(/line 1 is not a batch result line/) });
    expect(readFileSync(output, 'utf8')).toBe('hello world\n');
  });

  it('skips earlier failures unless retryFailed, which removes their lines and runs them again', async () => {
    writeFileSync(input, [req('a', 'a'), req('b', 'b', { fail: 'x' })].join('\n'));
    await run();
    const again = await run();
    expect(again.calls).toEqual([]);
    expect(again.summary.failedTotal).toBe(1);
    // Fix the request, then retry it.
    writeFileSync(input, [req('a', 'a'), req('b', 'b')].join('\n'));
    const retried = await run({}, true);
    expect(retried.plan.droppedFailures).toBe(1);
    expect(retried.calls).toEqual(['b']);
    expect(retried.summary.failedTotal).toBe(0);
    const lines = results();
    expect(lines).toHaveLength(2);
    expect(lines.every((l) => l.error === null)).toBe(true);
  });

  it('a stop drops the calls in flight unwritten; the next run answers them, each id once', async () => {
    writeFileSync(input, Array.from({ length: 12 }, (_, i) => req(`r${i}`, i === 1 ? 'hang' : `p${i}`)).join('\n'));
    const stop = new AbortController();
    const fast = echo();
    let sawAbort = false;
    // 'hang' answers only when aborted (then as 'abort'); the rest at once.
    const chat: BatchRunOptions['chat'] = async (messages, options) => {
      if (messages[0].content !== 'hang') return fast.chat(messages, options);
      await new Promise<void>((resolve) => options.signal!.addEventListener('abort', () => resolve(), { once: true }));
      sawAbort = true;
      return { text: 'partial', tokens: [1], usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2 }, finishReason: 'abort' };
    };
    const plan = await planBatch(input, output);
    const summary = await runBatch(plan, {
      concurrency: 2,
      mapping,
      chat,
      signal: stop.signal,
      onItem: (_, p) => {
        if (p.done === 5) stop.abort();
      },
    });
    expect(sawAbort).toBe(true);
    expect(summary.interrupted).toBe(true);
    expect(summary.progress.done).toBe(5);
    const written = results().map((l) => l.custom_id);
    expect(written).toHaveLength(5);
    expect(written).not.toContain('r1');
    const rest = await run();
    expect(rest.calls).toHaveLength(7);
    expect(rest.calls).toContain('hang');
    expect(rest.summary.interrupted).toBe(false);
    const ids = results().map((l) => l.custom_id);
    expect(ids).toHaveLength(12);
    expect(new Set(ids).size).toBe(12);
  });

  it('keeps at most `concurrency` calls in flight', async () => {
    writeFileSync(input, Array.from({ length: 10 }, (_, i) => req(`r${i}`, `p${i}`)).join('\n'));
    const slow = echo(5);
    await runBatch(await planBatch(input, output), { concurrency: 4, mapping, chat: slow.chat });
    expect(slow.max()).toBe(4);
    expect(results()).toHaveLength(10);
  });

  it('--seed: each request gets a seed from the global seed and its custom_id; its own seed wins', async () => {
    writeFileSync(input, [req('a', 'a'), req('b', 'b'), req('own', 'o', { seed: 5 }), req('nul', 'n', { seed: null })].join('\n'));
    await run({ seed: 42 });
    const got = byId(results());
    expect(content(got.get('a'))).toBe(`a|seed=${requestSeed(42, 'a')}`);
    expect(content(got.get('b'))).toBe(`b|seed=${requestSeed(42, 'b')}`);
    expect(content(got.get('own'))).toBe('o|seed=5');
    expect(content(got.get('nul'))).toBe(`n|seed=${requestSeed(42, 'nul')}`);
    expect(requestSeed(42, 'a')).not.toBe(requestSeed(42, 'b'));
    expect(requestSeed(42, 'a')).not.toBe(requestSeed(43, 'a'));
    expect(Number.isSafeInteger(requestSeed(42, 'a'))).toBe(true);
    // Reordered input: the same seeds (they follow the id, not the line).
    rmSync(output);
    writeFileSync(input, [req('b', 'b'), req('a', 'a')].join('\n'));
    await run({ seed: 42, concurrency: 1 });
    const again = byId(results());
    expect(content(again.get('a'))).toBe(content(got.get('a')));
    expect(content(again.get('b'))).toBe(content(got.get('b')));
  });

  it('flushes every line: the file holds each line as it is reported', async () => {
    writeFileSync(input, [req('a', 'a'), req('b', 'b')].join('\n'));
    const sizes: number[] = [];
    await run({ concurrency: 1, onItem: () => void sizes.push(statSync(output).size) });
    expect(sizes[0]).toBeGreaterThan(0);
    expect(sizes[1]).toBeGreaterThan(sizes[0]);
  });

  it('one run per results file: a live owner of <out>.lock refuses another; a dead one\'s lock is taken over', async () => {
    const lockPath = `${output}.lock`;
    writeFileSync(lockPath, String(process.ppid));
    await expect(lockResults(output)).rejects.toMatchObject({ code: 'E_INPUT', message: expect.stringContaining(`being written by another process (pid ${process.ppid})`) });
    const gone = spawnSync(process.execPath, ['-e', '']).pid!;
    writeFileSync(lockPath, String(gone));
    const release = await lockResults(output);
    expect(readFileSync(lockPath, 'utf8')).toBe(String(process.pid));
    await release();
    expect(existsSync(lockPath)).toBe(false);
  });
});
