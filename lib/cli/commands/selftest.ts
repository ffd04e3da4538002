import { native } from '../../native/binding.js';
import type { Command } from '../main.js';

/** `qwenvl selftest [op]`: every kernel variant this CPU runs against its plain reference. */
export const selftestCommand: Command = {
  name: 'selftest',
  summary: 'check every kernel variant this CPU runs against its reference ([op] to pick one)',
  async run(args) {
    const filter = args[0] ?? '';
    const results = await native.parity(filter);
    let failed = 0;
    // op -> device/variant -> weight formats its cases ran with (ops that read weights).
    const coverage = new Map<string, Map<string, Set<string>>>();
    const ops = native.info().ops;
    for (const r of results) {
      if (!r.passed) failed++;
      if (r.format !== undefined && ops[r.op]?.variants.some((v) => v.name === r.variant)) {
        const byVariant = coverage.get(r.op) ?? new Map<string, Set<string>>();
        coverage.set(r.op, byVariant);
        const key = `${r.device}/${r.variant}`;
        byVariant.set(key, (byVariant.get(key) ?? new Set<string>()).add(r.format));
      }
      const status = r.passed ? 'ok  ' : 'FAIL';
      process.stdout.write(
        `${status} ${r.op.padEnd(12)} ${r.variant.padEnd(12)} ${r.shape.padEnd(40)} ` +
          `rel=${r.maxRelErr.toExponential(2)} tol=${r.tolerance.toExponential(1)} ${r.note}\n`,
      );
    }
    for (const [op, byVariant] of coverage) {
      const pairs = [...byVariant].map(([v, f]) => `${v} (${[...f].join(' ')})`).join(', ');
      process.stdout.write(`${op} weight formats: ${pairs}\n`);
    }
    process.stdout.write(`${results.length - failed} passed, ${failed} failed\n`);
    return failed ? 1 : 0;
  },
};
