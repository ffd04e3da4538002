import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { PEAK_OF } from '../lib/bench/floors.js';
import type { BenchReport } from '../lib/bench/run.js';
import { main } from '../lib/cli/run.js';
import { openSafetensors } from '../lib/index.js';
import { native } from '../lib/native/binding.js';
import { checkpointDir } from './helpers/fixtures.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const tsx = `${repo}node_modules/.bin/tsx`;
const checkpoint = checkpointDir('qwen2-vl');

function bench(args: string[]): BenchReport {
  const r = spawnSync(tsx, ['lib/cli/main.ts', 'bench', '--model', checkpoint, '--tokens', '4', '--image', '56x56', '--json', ...args], {
    cwd: repo, encoding: 'utf8', env: process.env,
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as BenchReport;
}

async function cli(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const status = await main(args, new AbortController().signal, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { status, stdout, stderr };
}

/** Weight bytes a bf16 decode token reads, counted here from the header: every decoder-layer matrix and the (tied) embedding. */
async function storedDecodeBytes(): Promise<number> {
  const ckpt = await openSafetensors(checkpoint);
  let bytes = 0;
  for (const [name, t] of ckpt.tensors) {
    if (/layers\.\d+\./.test(name) && !name.startsWith('visual.') && t.shape.length === 2) bytes += t.byteLength;
  }
  const head = ckpt.tensors.get('lm_head.weight') ?? ckpt.tensors.get('model.embed_tokens.weight')!;
  return bytes + head.byteLength;
}

/** A compute stage's floor from the report's own FLOPs and peaks. */
function floorOf(r: BenchReport, stage: 'vision' | 'prefill'): number {
  const s = r.stages.find((x) => x.stage === stage)!;
  const f = stage === 'vision' ? r.visionFlops : r.prefillFlops;
  const gf = (kind: string) => r.peaks.find((p) => p.kind === kind)!.best * 1e9;
  return f.matrices / gf(s.peaks!.matrices.kind) + f.attention / gf(s.peaks!.attention.kind);
}

describe('qwenvl bench', () => {
  let bf16: BenchReport;

  it('reports every stage with positive times, rates, floors and ratios (--json)', async () => {
    bf16 = bench([]);
    expect(bf16).toMatchObject({ family: 'qwen2-vl', weights: 'bf16', precision: 'exact', synthetic: null });
    // Exact: the matrices against the FMA probe of the ISA the bf16 matmul runs, attention against its kernel's.
    const info = native.info();
    for (const s of bf16.stages.slice(0, 2)) {
      expect(s.peaks!.matrices).toEqual({ kind: PEAK_OF[info.ops.matmul.chosenByFormat!.bf16], variant: info.ops.matmul.chosenByFormat!.bf16, standIn: false });
      expect(s.peaks!.attention).toEqual({ kind: PEAK_OF[info.ops.attention.chosen], variant: info.ops.attention.chosen, standIn: false });
    }
    expect(bf16.stages[2].peaks).toBeUndefined(); // decode: memory
    expect(bf16.peaks.map((p) => p.kind).sort()).toEqual([...new Set([PEAK_OF[info.ops.matmul.chosenByFormat!.bf16], PEAK_OF[info.ops.attention.chosen]])].sort());
    expect(bf16.stages.map((s) => s.stage)).toEqual(['vision', 'prefill', 'decode']);
    for (const s of bf16.stages) {
      for (const k of ['seconds', 'rate', 'count', 'floorSeconds', 'ofFloor'] as const) {
        expect(Number.isFinite(s[k]) && s[k] > 0, `${s.stage}.${k} = ${s[k]}`).toBe(true);
      }
      expect(s.ofFloor).toBeCloseTo(s.floorSeconds / s.seconds, 12);
    }
    expect(bf16.stages[2].count).toBe(4); // greedy decode ran every step asked for
    expect(bf16.notes.some((n) => /last-level cache/.test(n))).toBe(true); // the fixture's weights fit in cache
    expect(bf16.readGBps.best).toBeGreaterThan(0);
    for (const p of bf16.peaks) expect(p.best).toBe(Math.max(...p.runs));
    for (const f of [bf16.prefillFlops, bf16.visionFlops]) expect(f.matrices > 0 && f.attention > 0).toBe(true);
    expect(floorOf(bf16, 'vision')).toBeCloseTo(bf16.stages[0].floorSeconds, 12);
    expect(floorOf(bf16, 'prefill')).toBeCloseTo(bf16.stages[1].floorSeconds, 12);
    expect(bf16.decodeBytesPerToken).toBe(await storedDecodeBytes());
    // The placement in use (auto by default) and the probe's bandwidths behind it.
    expect(bf16.placement.requested).toBe('auto');
    expect(['mmap', 'owned', 'huge']).toContain(bf16.placement.used);
    expect(bf16.placement.probe.readGBps.owned).toBeGreaterThan(0);
  }, 120_000);

  it('--weights q8 reports the q8 format and its bytes per token (--vision-weights: the tower\'s)', () => {
    const q8 = bench(['--weights', 'q8', '--vision-weights', 'q8', '--precision', 'fast', '--placement', 'owned']);
    expect(q8.weights).toBe('q8');
    expect([bf16.visionWeights, q8.visionWeights]).toEqual(['bf16', 'q8']);
    // Under fast q8 matrices run the int8 dot, or AMX's bf16 tiles (dequantized per panel) where
    // the CPU has them; attention the bf16 kernel. The floors divide each part by its own peak.
    const info = native.info();
    const q8Kernel = info.fast.matmulByFormat.q8 ?? info.ops.matmul.chosenByFormat!.q8;
    for (const s of q8.stages.slice(0, 2)) {
      expect(s.peaks!.matrices.variant).toBe(q8Kernel);
      expect(s.peaks!.matrices.kind).toBe(PEAK_OF[q8Kernel] ?? bf16.stages[0].peaks!.matrices.kind);
      expect(s.peaks!.attention.variant).toBe(info.fast.attention ?? info.ops.attention.chosen);
    }
    expect(floorOf(q8, 'vision')).toBeCloseTo(q8.stages[0].floorSeconds, 12);
    expect(floorOf(q8, 'prefill')).toBeCloseTo(q8.stages[1].floorSeconds, 12);
    const standIn = q8.stages.slice(0, 2).some((s) => s.peaks!.matrices.standIn || s.peaks!.attention.standIn);
    expect(q8.notes.some((n) => /^no peak probe for /.test(n))).toBe(standIn);
    expect(q8.placement).toMatchObject({ requested: 'owned', used: 'owned' });
    expect(q8.precision).toBe('fast');
    // int8 with an f16 scale per group (64 weights, or 32): a bit over half of bf16's bytes.
    const ratio = q8.decodeBytesPerToken / bf16.decodeBytesPerToken;
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(0.6);
    for (const s of q8.stages) expect(s.ofFloor).toBeGreaterThan(0);
  }, 120_000);

  it("--profile splits every stage per op family, inside the pass's time (--json and the table)", () => {
    const r = bench(['--profile']);
    for (const s of r.stages) {
      const p = s.profile!;
      expect(p.seconds, s.stage).toBeGreaterThan(0);
      const matmul = p.ops.find((o) => o.op === 'matmul');
      expect(matmul?.calls, `${s.stage} matmul`).toBeGreaterThan(0);
      expect(p.ops.map((o) => o.seconds)).toEqual([...p.ops.map((o) => o.seconds)].sort((a, b) => b - a)); // largest first
      const inside = p.ops.reduce((a, o) => a + o.seconds, 0);
      expect(inside).toBeLessThanOrEqual(p.seconds * (1 + 1e-9));
      for (const o of p.ops) expect(o.share).toBeCloseTo(o.seconds / p.seconds, 12);
    }
    expect(r.stages.find((s) => s.stage === 'vision')!.profile!.ops.some((o) => o.op === 'attention')).toBe(true);
    expect(bench([]).stages.every((s) => s.profile === undefined)).toBe(true);
    const t = spawnSync(tsx, ['lib/cli/main.ts', 'bench', '--model', checkpoint, '--tokens', '4', '--image', '28x28', '--profile'], { cwd: repo, encoding: 'utf8', env: process.env });
    expect(t.status, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/where the time goes/);
    expect(t.stdout).toMatch(/^ {2}decode\/token: .*matmul \d+%/m);
  }, 180_000);

  it('prints a table with one row per stage', () => {
    const r = spawnSync(tsx, ['lib/cli/main.ts', 'bench', '--model', checkpoint, '--tokens', '8', '--image', '28x28'], { cwd: repo, encoding: 'utf8', env: process.env });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^stage\s+time\s+rate\s+floor\s+of floor$/m);
    expect(r.stdout).toMatch(/^weights placement: (mmap|owned|huge) \(auto\), probe read [\d.]+ GB\/s; probe GB\/s, best \(range\) of 5: mmap [\d.]+ \([\d.]+-[\d.]+\), owned /m);
    for (const stage of ['vision', 'prefill', 'decode/token']) expect(r.stdout).toMatch(new RegExp(`^${stage}\\s+\\S+ [µm]?s\\s+.*\\(\\w+\\)\\s+x[\\d.e-]+$`, 'm'));
  }, 120_000);

  it.each([
    [['--weights', 'q5'], "--weights must be bf16, q8 or q4, got 'q5'"],
    [['--vision-weights', 'auto'], "--vision-weights must be bf16, q8 or q4, got 'auto'"],
    [['--precision', 'half'], "--precision must be exact or fast, got 'half'"],
    [['--tokens', '0'], "--tokens must be an integer from 1 to 4096, got '0'"],
    [['--tokens', '2.5'], "--tokens must be an integer from 1 to 4096, got '2.5'"],
    [['--image', '448'], "--image must be WxH with sides from 28 to 8192 pixels, got '448'"],
    [['--image', '10x10'], "--image must be WxH with sides from 28 to 8192 pixels, got '10x10'"],
    [['--threads', '0'], "--threads must be an integer from 1 to 1024, got '0'"],
    [['--placement', 'disk'], "--placement must be auto, mmap, owned or huge, got 'disk'"],
    [['--frob'], "unknown option '--frob'"],
    [['extra'], "unexpected argument 'extra'"],
  ])('usage error for %j', async (args, message) => {
    const r = await cli(['bench', ...args]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')[0]).toBe(`qwenvl bench: ${message}`);
    expect(r.stderr).toMatch(/^usage: qwenvl bench /m);
  });

  it('a missing checkpoint is an E_INPUT error', () => {
    const r = spawnSync(tsx, ['lib/cli/main.ts', 'bench', '--model', `${repo}no-such-checkpoint`], { cwd: repo, encoding: 'utf8', env: process.env });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^qwenvl: E_INPUT: .*no-such-checkpoint/m);
  });
});
