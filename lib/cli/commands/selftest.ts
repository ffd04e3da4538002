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
    for (const r of results) {
      if (!r.passed) failed++;
      const status = r.passed ? 'ok  ' : 'FAIL';
      process.stdout.write(
        `${status} ${r.op.padEnd(12)} ${r.variant.padEnd(12)} ${r.shape.padEnd(40)} ` +
          `rel=${r.maxRelErr.toExponential(2)} tol=${r.tolerance.toExponential(1)} ${r.note}\n`,
      );
    }
    process.stdout.write(`${results.length - failed} passed, ${failed} failed\n`);
    return failed ? 1 : 0;
  },
};
