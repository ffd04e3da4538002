import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { main } from '../lib/cli/run.js';
import { checkpointDir, fixtureDir as fixtureDirOf } from './helpers/fixtures.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const tsx = `${repo}node_modules/.bin/tsx`;
const checkpoint = checkpointDir('qwen2-vl');
const fixtureDir = fixtureDirOf('qwen2-vl');
const version = (JSON.parse(readFileSync(`${repo}package.json`, 'utf8')) as { version: string }).version;

/** The real executable in a child process (for what only a process shows: streams, exit, pipes). */
function spawnCli(args: string[]) {
  return spawnSync(tsx, ['lib/cli/main.ts', ...args], { cwd: repo, encoding: 'utf8', env: process.env });
}

/** The CLI in this process: status and what it printed itself (help, usage, errors). */
async function cli(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const status = await main(args, new AbortController().signal, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { status, stdout, stderr };
}

/** A usage error: one line naming the problem, then the command's usage, on stderr; status 2. */
async function expectUsageError(args: string[], message: string | RegExp, command: string) {
  const r = await cli(args);
  expect(r.status, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  const [first, ...rest] = r.stderr.split('\n');
  expect(first).toMatch(new RegExp(`^qwenvl ${command}: `));
  if (typeof message === 'string') expect(first).toContain(message);
  else expect(first).toMatch(message);
  expect(rest.join('\n')).toMatch(new RegExp(`^usage: qwenvl ${command} `, 'm'));
  expect(r.stderr).not.toMatch(/^\s+at /m);
}

describe('qwenvl CLI', () => {
  it('info prints kernels and the CUDA status line', () => {
    const r = spawnCli(['info']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^qwenvl \d+\.\d+\.\d+/);
    expect(r.stdout).toMatch(/^threads: \d+$/m);
    expect(r.stdout).toMatch(/^precision 'fast': matmul (\w+: \w+, )*\w+: \w+; attention: \w+; decode attention: \w+$/m);
    expect(r.stdout).toMatch(/^cuda: (available \(.+, [\d.]+ GiB\)|unavailable \(.+\))$/m);
  });

  it('info --json is machine readable', () => {
    const out = execFileSync(tsx, ['lib/cli/main.ts', 'info', '--json'], { cwd: repo, encoding: 'utf8' });
    const parsed = JSON.parse(out) as { version: string; cuda: { available: boolean } };
    expect(typeof parsed.cuda.available).toBe('boolean');
  });

  it('an unknown command prints usage and exits 2', async () => {
    const r = await cli(['frobnicate']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
    expect(r.stderr).toMatch(/^usage: qwenvl <command>/m);
  });

  it('no arguments: usage on stderr, status 2', async () => {
    const r = await cli([]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^usage: qwenvl <command>/);
  });

  it.each([['--help'], ['-h'], ['help']])('top-level %s: usage on stdout, status 0', async (flag) => {
    const r = await cli([flag]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^usage: qwenvl <command>/);
    for (const c of ['bench', 'chat', 'conformance', 'info', 'pull', 'selftest']) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
  });

  it.each([['--version'], ['-v']])('%s prints the package version', async (flag) => {
    const r = await cli([flag]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`qwenvl ${version}\n`);
  });

  it.each([
    ['chat', '--help'],
    ['chat', '-h'],
    ['info', '--help'],
    ['selftest', '--help'],
    ['conformance', '-h'],
    ['help', 'chat'],
  ])('%s %s: the command help on stdout, status 0', async (a, b) => {
    const r = await cli([a, b]);
    const name = a === 'help' ? b : a;
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(new RegExp(`^usage: qwenvl ${name}`));
    expect(r.stdout).toContain('-h, --help');
  });

  it('help wins over other arguments, even invalid ones', async () => {
    const r = await cli(['chat', '--threads', 'zero', '--help']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^usage: qwenvl chat/);
  });

  it('unknown options are usage errors on every command', async () => {
    await expectUsageError(['info', '--bogus'], "unknown option '--bogus'", 'info');
    await expectUsageError(['chat', '--model', checkpoint, '--bogus', 'hi'], "unknown option '--bogus'", 'chat');
    await expectUsageError(['selftest', '-x'], "unknown option '-x'", 'selftest');
    await expectUsageError(['conformance', fixtureDir, '--cases', 'x'], "unknown option '--cases'", 'conformance');
    const top = await cli(['--bogus']);
    expect(top.status).toBe(2);
    expect(top.stderr).toMatch(/^qwenvl: unknown option '--bogus'\n/);
  });

  it('missing values, extra arguments and missing arguments are usage errors', async () => {
    await expectUsageError(['chat', '--model'], "option '--model' needs a value", 'chat');
    await expectUsageError(['chat', 'hi'], '--model DIR is required', 'chat');
    await expectUsageError(['chat', '--model', checkpoint], 'a prompt is required', 'chat');
    await expectUsageError(['chat', '--model', checkpoint, 'two', 'words'], 'give the prompt as one argument', 'chat');
    await expectUsageError(['info', '--json=yes'], "option '--json' takes no value", 'info');
    await expectUsageError(['info', 'extra'], "unexpected argument 'extra'", 'info');
    await expectUsageError(['conformance'], 'a fixture folder DIR is required', 'conformance');
  });

  it('number flags are parsed strictly and the message echoes what was typed', async () => {
    const chat = (flag: string, value: string) => ['chat', '--model', checkpoint, flag, value, 'hi'];
    await expectUsageError(chat('--threads', '0'), "--threads must be an integer from 1 to 1024, got '0'", 'chat');
    await expectUsageError(chat('--threads', '1.5'), "got '1.5'", 'chat');
    await expectUsageError(chat('--threads', '2x'), "got '2x'", 'chat');
    await expectUsageError(chat('--threads', ''), "got ''", 'chat');
    await expectUsageError(chat('--max-tokens', '1e3'), "--max-tokens must be an integer >= 1, got '1e3'", 'chat');
    await expectUsageError(chat('--max-tokens', '0x10'), "got '0x10'", 'chat');
    await expectUsageError(chat('--top-k', '-1'), "option '--top-k' needs a value", 'chat');
    await expectUsageError(chat('--top-k=-1', '--seed=1'), "--top-k must be an integer >= 0, got '-1'", 'chat');
    await expectUsageError(chat('--top-p', '0'), "--top-p must be a number in (0, 1], got '0'", 'chat');
    await expectUsageError(chat('--temperature', 'hot'), "--temperature must be a number >= 0, got 'hot'", 'chat');
    await expectUsageError(chat('--seed', '99999999999999999999'), "got '99999999999999999999'", 'chat');
    await expectUsageError(chat('--precision', 'bf16'), "--precision must be exact or fast, got 'bf16'", 'chat');
    await expectUsageError(chat('--kv-cache', 'fast'), "--kv-cache must be f32 or bf16, got 'fast'", 'chat');
  });

  it('an unknown selftest op names the known ones and exits 2', async () => {
    const r = await cli(['selftest', 'no-such-op']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^qwenvl selftest: unknown op 'no-such-op' \(known: [a-z0-9_, ]*matmul[a-z0-9_, ]*\)\n$/);
  });

  it('an unknown conformance case names the known ones and exits 2', async () => {
    const r = await cli(['conformance', fixtureDir, '--case', 'no-such-case']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^qwenvl conformance: unknown case 'no-such-case' \(known: [\w, ]*text_only[\w, ]*\)\n$/);
  });

  it('library errors print code and message without a stack, status 1', async () => {
    const r = spawnCli(['chat', '--model', `${repo}no-such-checkpoint`, 'hi']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^qwenvl: E_INPUT: .*no-such-checkpoint.*\n$/);
    const c = await cli(['conformance', `${repo}no-such-fixtures`]);
    expect(c.status).toBe(1);
    expect(c.stderr).toMatch(/^qwenvl: E_INPUT: .*no-such-fixtures.*\n$/);
  });

  it('chat --precision fast answers about an image (the bf16 path where the CPU has one)', () => {
    const image = `${fixtureDir}/inputs/gradient_224x224.png`;
    const r = spawnCli(['chat', '--model', checkpoint, '--precision', 'fast', '--image', image, '--max-tokens', '3', '--temperature', '0', 'What is this?']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(0);
  });

  it('chat --kv-cache bf16 answers about an image (keys and values stored as bf16)', () => {
    const image = `${fixtureDir}/inputs/gradient_224x224.png`;
    const r = spawnCli(['chat', '--model', checkpoint, '--kv-cache', 'bf16', '--image', image, '--max-tokens', '3', '--temperature', '0', 'What is this?']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(0);
  });

  it('a reader closing the pipe early ends chat quietly', () => {
    // `qwenvl chat … | head -c1`: head exits after one byte while tokens are still streaming.
    const script = '"$0" lib/cli/main.ts chat --model "$1" --max-tokens 200 --temperature 0 "Tell me a long story" | head -c1 >/dev/null; exit ${PIPESTATUS[0]}';
    const r = spawnSync('bash', ['-c', script, tsx, checkpoint], { cwd: repo, encoding: 'utf8', env: process.env });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it.skipIf(!existsSync('/dev/full'))('a stdout that fails otherwise (disk full) is reported, status 1', () => {
    const full = openSync('/dev/full', 'w');
    try {
      const r = spawnSync(tsx, ['lib/cli/main.ts', 'info'], { cwd: repo, encoding: 'utf8', stdio: ['ignore', full, 'pipe'] });
      expect(r.stderr).toBe('qwenvl: cannot write to stdout (ENOSPC)\n');
      expect(r.status).toBe(1);
    } finally {
      closeSync(full);
    }
  });
});
