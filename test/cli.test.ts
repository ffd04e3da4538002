import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('..', import.meta.url));
const tsx = `${repo}node_modules/.bin/tsx`;

function cli(args: string[]) {
  return spawnSync(tsx, ['lib/cli/main.ts', ...args], { cwd: repo, encoding: 'utf8', env: process.env });
}

describe('qwenvl CLI', () => {
  it('info prints kernels and the CUDA status line', () => {
    const r = cli(['info']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^qwenvl \d+\.\d+\.\d+/);
    expect(r.stdout).toMatch(/^threads: \d+$/m);
    expect(r.stdout).toMatch(/^cuda: (available \(.+, [\d.]+ GiB\)|unavailable \(.+\))$/m);
  });

  it('info --json is machine readable', () => {
    const out = execFileSync(tsx, ['lib/cli/main.ts', 'info', '--json'], { cwd: repo, encoding: 'utf8' });
    const parsed = JSON.parse(out) as { version: string; cuda: { available: boolean } };
    expect(typeof parsed.cuda.available).toBe('boolean');
  });

  it('an unknown command prints usage and exits 2', () => {
    const r = cli(['frobnicate']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
  });
});
