// `qwenvl serve` as a child process, stopped with SIGTERM while two streams run: the short one
// finishes within the drain timeout, the long one ends with an error event (never cut silently),
// new connections are refused, and the process exits 0.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { checkpointDir } from '../helpers/fixtures.js';
import { metricValue, scrape, waitFor } from './helpers.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const tsx = `${repo}node_modules/.bin/tsx`;
let child: ChildProcess | undefined;

afterAll(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
});

/** Starts `qwenvl serve` on a free port; resolves to its address once it listens. */
function serve(args: string[]): Promise<{ base: string; stderr: () => string; exited: Promise<number | null> }> {
  const proc = spawn(tsx, ['lib/cli/main.ts', 'serve', '--model', checkpointDir('qwen3-vl'), '--port', '0', ...args], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = proc;
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ base: m[1], stderr: () => err, exited });
    });
    void exited.then((code) => reject(new Error(`serve exited (${code}) before listening: ${err}`)));
  });
}

describe('SIGTERM', () => {
  it('drains: running streams finish or end with an error event, then the process exits 0', async () => {
    const { base, stderr, exited } = await serve(['--drain-timeout', '4']);
    const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
    const ask = (max: number) =>
      client.chat.completions.create({ model: 'checkpoint', messages: [{ role: 'user', content: `go ${max}` }], max_tokens: max, temperature: 0, stream: true });

    const long = (await ask(20_000))[Symbol.asyncIterator]();
    const short = (await ask(10))[Symbol.asyncIterator]();
    const plain = client.chat.completions
      .create({ model: 'checkpoint', messages: [{ role: 'user', content: 'plain' }], max_tokens: 20_000, temperature: 0 })
      .catch((e: unknown) => e);
    // All three running: the streams have sent their first chunk, the plain one holds a slot.
    await long.next();
    await short.next();
    await waitFor(async () => metricValue(await scrape(base), 'qwenvl_requests_running') === 3);
    child!.kill('SIGTERM');

    let shortReason: string | null = null;
    for (let s = await short.next(); !s.done; s = await short.next()) shortReason = s.value.choices[0]?.finish_reason ?? shortReason;
    expect(shortReason).toBe('length');

    let longError: unknown;
    try {
      for (let s = await long.next(); !s.done; s = await long.next());
    } catch (e) {
      longError = e;
    }
    expect(longError).toBeInstanceOf(OpenAI.APIError);
    expect((longError as Error).message).toMatch(/shutting down/);

    // The plain request cut by the drain gets a 503 in OpenAI's shape, not a partial answer.
    const plainError = await plain;
    expect(plainError).toBeInstanceOf(OpenAI.InternalServerError);
    expect((plainError as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect((plainError as InstanceType<typeof OpenAI.APIError>).code).toBe('shutting_down');

    expect(await exited).toBe(0);
    expect(stderr()).toMatch(/SIGTERM: draining/);
    await expect(fetch(`${base}/health`)).rejects.toThrow();
  });
});
