// `qwenvl pull` as a process against the loopback fake Hub (HF_ENDPOINT, HF_HUB_CACHE), and the
// two progress views it chooses between.
import { execFile } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatBytes, formatEta, plainView, ttyView } from '../../lib/cli/pull-progress.js';
import type { PullProgress } from '../../lib/index.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { FakeHub, fakeCommit } from '../helpers/fake-hub.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const tsx = `${repo}node_modules/.bin/tsx`;
const CKPT = checkpointDir('qwen2-vl');
const REPO = 'fixture-org/qwen2-vl-tiny';
const COMMIT = fakeCommit('cli');

/** The executable in a child process; asynchronous, so this process's fake Hub keeps answering. */
function runCli(args: string[], env: Record<string, string>): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env };
    for (const k of ['HF_TOKEN', 'HF_TOKEN_PATH', 'HF_HOME', 'HF_HUB_OFFLINE']) delete childEnv[k];
    Object.assign(childEnv, env);
    execFile(tsx, ['lib/cli/main.ts', ...args], { cwd: repo, env: childEnv, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

let hub: FakeHub;
let cache: string;
beforeAll(async () => {
  hub = await new FakeHub().start();
  const files = new Map<string, Buffer>();
  for (const name of readdirSync(CKPT)) files.set(name, readFileSync(join(CKPT, name)));
  files.set('README.md', Buffer.from('# tiny\n'));
  hub.repos.set(REPO, { commit: COMMIT, files, gatedToken: 'hf_cli' });
  cache = mkdtempSync(join(tmpdir(), 'qwenvl-hub-cli-'));
});
afterAll(async () => {
  await hub.stop();
  rmSync(cache, { recursive: true, force: true });
});

describe('qwenvl pull', () => {
  it('downloads into HF_HUB_CACHE from HF_ENDPOINT with HF_TOKEN, prints the snapshot folder and plain progress', async () => {
    const env = { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cache, HF_TOKEN: 'hf_cli', HF_HUB_OFFLINE: '' };
    const denied = await runCli(['pull', REPO], { ...env, HF_TOKEN: '', HF_HOME: cache });
    expect(denied.status).toBe(1);
    expect(denied.stderr).toMatch(/^qwenvl: E_AUTH: .*gated or private/m);

    const r = await runCli(['pull', REPO], env);
    expect(r.status, r.stderr).toBe(0);
    const dir = join(cache, 'models--fixture-org--qwen2-vl-tiny', 'snapshots', COMMIT);
    expect(r.stdout).toBe(`${dir}\n`);
    expect(readdirSync(dir).sort()).toEqual(readdirSync(CKPT).sort());
    expect(lstatSync(join(dir, 'model.safetensors')).isSymbolicLink()).toBe(true);
    // Not a terminal: plain lines, no carriage returns.
    expect(r.stderr).not.toContain('\r');
    expect(r.stderr).toMatch(/^resolving fixture-org\/qwen2-vl-tiny$/m);
    expect(r.stderr).toMatch(/^\[\d+\/\d+\] downloading model\.safetensors \(9\.5 MiB\)$/m);
    expect(r.stderr).toMatch(/^fetched config\.json \(1\.2 KiB\)$/m);
    expect(r.stderr).toMatch(/^done: \d+ files, [\d.]+ MiB$/m);

    // Again: everything is cached; --offline answers from the cache alone.
    const again = await runCli(['pull', REPO], env);
    expect(again.stderr).toMatch(/^cached model\.safetensors/m);
    const before = hub.seen.length;
    const off = await runCli(['pull', REPO, '--offline', '--quiet'], env);
    expect(off.status, off.stderr).toBe(0);
    expect(off.stdout).toBe(`${dir}\n`);
    expect(off.stderr).toBe('');
    expect(hub.seen.length).toBe(before);
  });

  it('pulls without the native addon, keeping qwenvl processes apart with pid lock files', async () => {
    const own = mkdtempSync(join(tmpdir(), 'qwenvl-hub-noaddon-'));
    try {
      const env = { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: own, HF_TOKEN: 'hf_cli', HF_HUB_OFFLINE: '', QWENVL_ADDON_PATH: '/nonexistent/qwenvl.node' };
      const r = await runCli(['pull', REPO, '--quiet'], env);
      expect(r.status, r.stderr).toBe(0);
      expect(readdirSync(r.stdout.trim()).sort()).toEqual(readdirSync(CKPT).sort());
      // No flock files were made (the addon takes those); the pid lock files are gone again.
      expect(readdirSync(join(own, '.locks', `models--${REPO.replace('/', '--')}`))).toEqual([]);
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });

  it('a missing revision is E_NOT_FOUND with status 1; a bad id is a usage error', async () => {
    const env = { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cache, HF_TOKEN: 'hf_cli', HF_HUB_OFFLINE: '' };
    const r = await runCli(['pull', REPO, '--revision', 'nope'], env);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^qwenvl: E_NOT_FOUND: .*revision not found/m);
    const u = await runCli(['pull', 'not-an-id'], env);
    expect(u.status).toBe(2);
    expect(u.stderr).toMatch(/^qwenvl pull: 'not-an-id' is not a Hub model id ORG\/NAME$/m);
    const c = await runCli(['pull', REPO, '--concurrency', '0'], env);
    expect(c.status).toBe(2);
    expect(c.stderr).toMatch(/--concurrency/);
  });
});

describe('pull progress views', () => {
  const base: PullProgress = {
    event: 'bytes', repoId: REPO, file: 'model.safetensors', fileBytes: 50 * 2 ** 20, fileSize: 100 * 2 ** 20,
    filesDone: 2, fileCount: 5, filesActive: 1, bytes: 60 * 2 ** 20, totalBytes: 120 * 2 ** 20, bytesPerSecond: 10 * 2 ** 20, etaSeconds: 6,
  };

  it('formats sizes and times', () => {
    expect(formatBytes(12)).toBe('12 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(3 * 2 ** 30)).toBe('3.0 GiB');
    expect(formatEta(undefined)).toBe('--:--');
    expect(formatEta(187)).toBe('3:07');
    expect(formatEta(3909)).toBe('1:05:09');
  });

  it('on a terminal redraws one line with file and total progress, rate and ETA', () => {
    let out = '';
    const v = ttyView((s) => void (out += s), () => 200);
    v.update(base);
    expect(out).toBe('\r[3/5] model.safetensors 50% of 100.0 MiB | total 50% of 120.0 MiB, 10.0 MiB/s, ETA 0:06\x1b[K');
    out = '';
    v.update({ ...base, event: 'file', fileBytes: base.fileSize, filesDone: 3, fromCache: false });
    expect(out).toBe('\r\x1b[Kfetched model.safetensors (100.0 MiB)\n');
    out = '';
    const narrow = ttyView((s) => void (out += s), () => 30);
    narrow.update(base);
    expect(out.replace('\x1b[K', '').length).toBeLessThanOrEqual(30);
  });

  it('elsewhere prints plain lines: start, each tenth of a large file, end', () => {
    const lines: string[] = [];
    const v = plainView((s) => void lines.push(s));
    v.update({ ...base, event: 'start', fileBytes: 0 });
    for (let i = 1; i <= 100; i++) v.update({ ...base, fileBytes: i * 2 ** 20 });
    v.update({ ...base, event: 'file', fileBytes: base.fileSize, fromCache: false });
    expect(lines[0]).toBe('[3/5] downloading model.safetensors (100.0 MiB)\n');
    expect(lines.filter((l) => / model\.safetensors \d+% \| total/.test(l))).toHaveLength(9);
    expect(lines.at(-1)).toBe('fetched model.safetensors (100.0 MiB)\n');
    const resumed: string[] = [];
    plainView((s) => void resumed.push(s)).update({ ...base, event: 'start' });
    expect(resumed[0]).toBe('[3/5] resuming model.safetensors at 50.0 MiB of 100.0 MiB\n');
    const waited: string[] = [];
    plainView((s) => void waited.push(s)).update({ ...base, event: 'wait' });
    expect(waited).toEqual(['waiting: another process is downloading model.safetensors\n']);
  });
});
