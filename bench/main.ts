/**
 * `npm run bench -- <suite>`: timing tables for the native kernels and the model. Benchmarks never assert
 * times; they print them for people to compare (variants against each other, machines
 * against machines, before against after a change).
 * @module
 */
import { runBatching } from './batching.js';
import { runEngine } from './engine.js';
import { runModel } from './model.js';
import { runOps } from './ops.js';

const suites: Record<string, { about: string; run: () => Promise<void> }> = {
  ops: { about: 'matmul and attention kernels, every variant this CPU runs', run: runOps },
  model: { about: 'a synthetic checkpoint at Qwen2-VL-2B widths end to end: vision, prefill, decode', run: runModel },
  engine: { about: 'the same widths: time outside kernels per decode step, 4000-token flatness, abort latency', run: runEngine },
  batching: { about: 'the same widths: 1/4/16 concurrent streams (aggregate decode tok/s, TTFT p50/p95), vision cache', run: runBatching },
};

function usage(): string {
  const lines = Object.entries(suites).map(([name, s]) => `  ${name.padEnd(8)} ${s.about}`);
  return ['usage: npm run bench -- <suite>', '', 'suites:', ...lines].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const suite = name === undefined ? undefined : suites[name];
  if (!suite || rest.length > 0) {
    console.error(usage());
    return 2;
  }
  await suite.run();
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
