/**
 * The llama.cpp side of the peer benchmark, each run a child process so that it loads, warms up and
 * is timed the way its own tools do:
 * - prompt (pp512) and generation (tg64) through node-llama-cpp's prebuilt CPU build, by the shared
 *   nlc_bench_json.mjs (one warm-up round and one timed round per call);
 * - the vision tower through llama-mtmd-cli, whose log says how long the image encode took.
 * @module
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PeerArtifacts, TheirQuant } from './artifacts.js';

/** stdout and stderr of a child process; rejects on a non-zero exit with the tail of its output. */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ out: string; err: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolveRun({ out, err });
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${(out + err).slice(-2000)}`));
    });
  });
}

/** One timed round of node-llama-cpp on one GGUF. */
export interface LlamaTextSample {
  ppTokensPerS: number;
  tgTokensPerS: number;
  /** % of the machine other processes used during pp / tg (the script's own probe). */
  foreignPct: [number, number];
  rssMiB: number;
  cpuVariant: string[];
}

/** The command line of one node-llama-cpp round (printed in the report so it can be rerun by hand). */
export function nlcCommand(a: PeerArtifacts, q: TheirQuant, threads: number): { cwd: string; args: string[] } {
  return { cwd: a.nlcDir, args: ['nlc_bench_json.mjs', '--threads', String(threads), '--reps', '1', '--prompt', '512', '--gen', '64', '--tag', q, a.gguf[q]] };
}

/** pp512 and tg64 of llama.cpp on the `q` GGUF: one warm-up round, one timed round, in a fresh process. */
export async function llamaText(a: PeerArtifacts, q: TheirQuant, threads: number): Promise<LlamaTextSample> {
  const { cwd, args } = nlcCommand(a, q, threads);
  // The script waits for a quiet machine before each round (QUIET_MAX_WAIT s); the suite alternates
  // the two engines instead, so by default it does not wait.
  const env = { ...process.env, QUIET_MAX_WAIT: process.env.QUIET_MAX_WAIT ?? '0' };
  const { out } = await run(process.execPath, args, { cwd, env });
  const results = out.split('\n').filter((l) => l.startsWith('RESULT ')).map((l) => JSON.parse(l.slice(7)));
  const info = results.find((r) => r.kind === 'info');
  const g = results.find((r) => r.kind === 'gguf');
  if (!g) throw new Error(`nlc_bench_json.mjs printed no result for ${a.gguf[q]}:\n${out.slice(-2000)}`);
  return {
    ppTokensPerS: g.pp.samples[0],
    tgTokensPerS: g.tg.samples[0],
    foreignPct: [g.pp.foreign[0], g.tg.foreign[0]],
    rssMiB: g.rssMiB,
    cpuVariant: info?.cpuVariantLoaded ?? [],
  };
}

/** Writes a binary PPM of the suite's test pattern (the pixels qwenvl gets) and returns its path. */
export function writeTestImage(dir: string, width: number, height: number, pixels: Uint8Array): string {
  const file = join(dir, `peers-${width}x${height}.ppm`);
  writeFileSync(file, Buffer.concat([Buffer.from(`P6\n${width} ${height}\n255\n`), Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength)]));
  return file;
}

/**
 * The llama-mtmd-cli command line that encodes one image (and generates one token). The language
 * model is the 16-bit GGUF: only the vision encode is timed, and a llama.cpp built with
 * GGML_NATIVE on an AMX CPU crashes in its AMX Q4_0/Q8_0 matmul (ggml_backend_amx_mul_mat).
 */
export function mtmdArgs(a: PeerArtifacts, image: string, threads: number): string[] {
  return ['-m', a.gguf.BF16, '--mmproj', a.mmproj, '--image', image, '-p', 'Describe the image.', '-n', '1', '-t', String(threads), '-c', '8192', '--temp', '0', '--no-warmup'];
}

/** One image encode by llama-mtmd-cli. */
export interface LlamaVisionSample {
  seconds: number;
}

/** Seconds llama-mtmd-cli's vision tower takes on one image (its own "image slice encoded in N ms" line). */
export async function llamaVision(a: PeerArtifacts, image: string, threads: number): Promise<LlamaVisionSample> {
  const { out, err } = await run(a.mtmdCli, mtmdArgs(a, image, threads));
  const log = out + err;
  // mtmd-cli logs "mtmd batch encoding done in N ms" (older builds: "image slice encoded in N ms")
  const enc = /mtmd batch encoding done in (\d+(?:\.\d+)?) ms/.exec(log) ?? /image slice encoded in (\d+(?:\.\d+)?) ms/.exec(log);
  if (!enc) throw new Error(`llama-mtmd-cli printed no encode time:\n${log.slice(-3000)}`);
  return { seconds: Number(enc[1]) / 1000 };
}
