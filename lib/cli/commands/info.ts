import { UsageError } from '../args.js';
import type { Command } from '../command.js';

const HELP = `usage: qwenvl info [--json]

Shows the version, CPU features, the kernel chosen per op, threads and CUDA status.

options:
  --json               print the same facts as JSON
  -h, --help           show this help
`;

function formatBytes(n: number): string {
  return `${(n / 2 ** 30).toFixed(1)} GiB`;
}

/** `qwenvl info [--json]`: version, CPU features, chosen kernels, threads, CUDA status. */
export const infoCommand: Command = {
  name: 'info',
  summary: 'show version, CPU features, chosen kernels, threads and CUDA status (--json)',
  help: HELP,
  options: { json: { type: 'boolean' } },
  async run({ values, positionals }) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const { infoImpl } = await import('../../info.js'); // unguarded: a bug reaches reportError as itself
    const i = infoImpl();
    if (values.json === true) {
      process.stdout.write(`${JSON.stringify(i, null, 2)}\n`);
      return 0;
    }
    const out: string[] = [];
    out.push(`qwenvl ${i.version}`);
    out.push(`cpu: ${i.cpu.brand.trim()} (${i.cpu.physicalCores} physical cores)`);
    out.push(`cpu features: ${i.cpu.features.join(' ') || 'none beyond baseline'}`);
    out.push(`threads: ${i.threads}`);
    out.push('kernels:');
    for (const [op, o] of Object.entries(i.ops)) {
      const others = o.variants.map((v) => (v.available ? v.name : `${v.name} (no ${v.isa})`)).join(', ');
      out.push(`  ${op.padEnd(12)} ${o.chosen.padEnd(12)} [${others}]`);
      if (o.chosenByFormat) {
        const byFormat = Object.entries(o.chosenByFormat).map(([f, v]) => `${f}: ${v}`).join(', ');
        out.push(`  ${''.padEnd(12)} by weight format: ${byFormat}`);
      }
    }
    const fastMatmul = Object.entries(i.fast.matmulByFormat).map(([f, v]) => `${f}: ${v ?? 'exact'}`).join(', ');
    out.push(`precision 'fast': matmul ${fastMatmul}; attention: ${i.fast.attention ?? 'exact'}; decode attention: ${i.fast.attentionDecode ?? 'exact'}`);
    out.push(
      i.cuda.available
        ? `cuda: available (${i.cuda.device}, ${formatBytes(i.cuda.memoryBytes)})`
        : `cuda: unavailable (${i.cuda.reason})`,
    );
    out.push(`tensors to JS: ${i.externalBuffers ? 'zero-copy (external buffers)' : 'copied'}`);
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  },
};
