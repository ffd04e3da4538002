// `qwenvl serve` arguments: help, and every bad flag a usage error (status 2) before any model loads.
import { describe, expect, it } from 'vitest';
import { main } from '../../lib/cli/run.js';

async function cli(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const status = await main(args, new AbortController().signal, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { status, stdout, stderr };
}

describe('qwenvl serve arguments', () => {
  it('prints its help and is listed', async () => {
    const help = await cli(['serve', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: qwenvl serve --model DIR/);
    expect(help.stdout).toContain('--allowed-local-media DIR');
    expect((await cli(['--help'])).stdout).toMatch(/^ {2}serve /m);
  });

  it.each([
    [[], '--model DIR is required'],
    [['--model', 'x', 'extra'], "unexpected argument 'extra'"],
    [['--model', 'x', '--port', '70000'], '--port must be an integer from 0 to 65535'],
    [['--model', 'x', '--max-running', '0'], '--max-running must be an integer >= 1'],
    [['--model', 'x', '--max-queue', '-1'], "option '--max-queue' needs a value"],
    [['--model', 'x', '--drain-timeout', 'soon'], '--drain-timeout must be a number of seconds > 0'],
    [['--model', 'x', '--remote-media-max-mb', '5'], 'need --allow-remote-media'],
    [['--model', 'x', '--api-key', ''], '--api-key needs a value'],
    [['--model', 'x', '--kv-cache', 'f16'], "--kv-cache must be f32 or bf16, got 'f16'"],
  ])('%j is a usage error', async (args, message) => {
    const r = await cli(['serve', ...args]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
  });
});
