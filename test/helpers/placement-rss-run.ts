/**
 * Runs the placement-rss probe (test/helpers/placement-rss.ts) in a child process and reads what a
 * checkpoint's load added to the resident set, net of what any load costs besides its weights.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { type LoadOptions, openSafetensors } from '../../lib/index.js';
import { checkpointDir } from './fixtures.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));

export interface LoadGrowth {
  /** Resident bytes the checkpoint's load added. */
  grew: number;
  /** What a load costs besides its weights (the tokenizer's tables: tens of MB), from the fixture's loads. */
  overhead: number;
  used: string;
  thp: string;
  mappedFrom: string;
}

/** Bytes of every tensor in a checkpoint's safetensors files. */
export async function tensorBytes(dir: string): Promise<number> {
  const st = await openSafetensors(dir);
  let n = 0;
  for (const t of st.tensors.values()) n += t.byteLength;
  st.dispose();
  return n;
}

/** Loads DIR with PLACEMENT after two kept loads of the fixture (the probe's). */
export async function loadGrowth(dir: string, placement: NonNullable<LoadOptions['placement']>): Promise<LoadGrowth> {
  const fixtureBytes = await tensorBytes(checkpointDir('qwen2-vl'));
  const r = spawnSync(`${repo}node_modules/.bin/tsx`, ['--expose-gc', 'test/helpers/placement-rss.ts', dir, placement], {
    cwd: repo, encoding: 'utf8', env: process.env,
  });
  expect(r.status, r.stderr).toBe(0);
  const { start, withSmall, withSmall2, withBoth, used, thp, mappedFrom } = JSON.parse(r.stdout) as {
    start: number; withSmall: number; withSmall2: number; withBoth: number; used: string; thp: string; mappedFrom: string;
  };
  // The larger of the two fixture loads' costs: the first can reuse memory the warm-up freed and
  // read 0 (it did in full-suite runs, and the checkpoint's load then paid the tokenizer's tables
  // in full: 1.12-1.19x its weights).
  const overhead = Math.max(0, withSmall - start - fixtureBytes, withSmall2 - withSmall - fixtureBytes);
  return { grew: withBoth - withSmall2, overhead, used, thp, mappedFrom };
}
