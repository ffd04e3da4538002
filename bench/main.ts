/**
 * `npm run bench -- <suite>`: timing tables for the native kernels and the model. Benchmarks never assert
 * times; they print them for people to compare (variants against each other, machines
 * against machines, before against after a change).
 * @module
 */
import { runBatching } from './batching.js';
import { runEngine } from './engine.js';
import { runGrammar } from './grammar.js';
import { runModel } from './model.js';
import { runPeers } from './peers.js';
import { runBf16, runDecode, runOps, runQGemm, runQuant, runQuantizeRow, runSampling } from './ops.js';
import { runServe } from './serve.js';

const suites: Record<string, { about: string; run: (args: string[]) => Promise<void>; args?: string }> = {
  ops: { about: 'matmul and attention kernels, every variant this CPU runs (with the quant and bf16 tables)', run: runOps },
  quant: { about: 'q8/q4 matmul kernels against bf16: decode GB/s against the memory-read floor, prefill against the dense exact kernel and the int8 peak', run: runQuant },
  qgemm: { about: 'q8/q4 prefill: each int8-dot variant\'s int8 GEMM against its own row tiles (M = 8, 16, 64, 512)', run: runQGemm },
  decode: { about: 'the decode rows of the quant table (M = 1, fp8 included; q8/q4 also M = 2, 4) and one decode step\'s attention (512 to 16k cached tokens) against the memory-read floor', run: runDecode },
  sampling: { about: 'next-token sampling at the 152k vocabulary (top-k, top-p, min-p, temperature), every variant against the reference', run: runSampling },
  qload: { about: 'quantizing weights at load (q8/q4 rows of the 2B MLP, one thread): each variant against the scalar reference', run: runQuantizeRow },
  bf16: { about: "precision 'fast' matmul kernels (AMX, AVX512-BF16) at prefill/vision shapes vs compute peaks", run: runBf16 },
  model: { about: 'a synthetic checkpoint at Qwen2-VL-2B widths end to end: vision, prefill, decode', run: runModel },
  engine: { about: 'the same widths: time outside kernels per decode step, 4000-token flatness, abort latency', run: runEngine },
  serve: { about: 'the same widths behind qwenvl serve: tokens/s and time to first token at 1/4/16 streams, repeated images', run: runServe },
  grammar: { about: 'structured output: mask time per token at the 152k vocabulary while JSON documents of a few schemas are fed through', run: runGrammar },
  batching: { about: 'the same widths: 1/4/16 concurrent streams (aggregate decode tok/s, TTFT p50/p95), vision cache', run: runBatching },
  peers: {
    about: 'the full Qwen2-VL-2B shapes side by side with llama.cpp (artifacts: bench/peers/prepare.sh)',
    args: '[--quick] [--profile] [--reps N] [--threads N] [--peers DIR]',
    run: runPeers,
  },
};

function usage(): string {
  const lines = Object.entries(suites).map(([name, s]) => `  ${name.padEnd(8)} ${s.about}${s.args ? `\n           ${s.args}` : ''}`);
  return ['usage: npm run bench -- <suite> [suite options]', '', 'suites:', ...lines].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const suite = name === undefined ? undefined : suites[name];
  if (!suite || (rest.length > 0 && !suite.args)) {
    console.error(usage());
    return 2;
  }
  await suite.run(rest);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
