import { UsageError } from '../args.js';
import type { Command } from '../command.js';

const HELP = `usage: qwenvl selftest [OP]

Checks every kernel variant this CPU runs against its plain reference (exit 1 on any failure).
OP picks one op family (see 'qwenvl info' for the list).

options:
  -h, --help           show this help
`;

/** `qwenvl selftest [op]`: every kernel variant this CPU runs against its plain reference. */
export const selftestCommand: Command = {
  name: 'selftest',
  summary: 'check every kernel variant this CPU runs against its reference ([op] to pick one)',
  help: HELP,
  options: {},
  async run({ positionals }) {
    if (positionals.length > 1) throw new UsageError(`give at most one op; got ${positionals.length} arguments`);
    const { native } = await import('../../native/binding.js');
    const filter = positionals[0] ?? '';
    const known = native.parityOps();
    if (filter !== '' && !known.includes(filter)) {
      throw new UsageError(`unknown op '${filter}' (known: ${known.join(', ')})`, false);
    }
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
    return failed || results.length === 0 ? 1 : 0;
  },
};
