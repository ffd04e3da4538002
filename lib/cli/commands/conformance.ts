import { runConformance, type StageResult } from '../../conformance/run.js';
import type { Command } from '../main.js';

function line(r: StageResult): string {
  const status = r.passed ? 'ok  ' : 'FAIL';
  const err = r.kind === 'exact' ? (r.passed ? 'identical' : 'differs') : `abs=${r.maxAbs.toExponential(2)} rel=${r.maxRel.toExponential(2)}`;
  const tol = r.kind === 'exact' ? 'exact' : `${r.kind} tol=${r.tolerance.toExponential(0)}`;
  return `${status} ${r.case.padEnd(18)} ${r.stage.padEnd(26)} ${err.padEnd(32)} ${tol.padEnd(16)} ${r.note}`;
}

/** `qwenvl conformance DIR [--case NAME]...`: this build against reference dumps. */
export const conformanceCommand: Command = {
  name: 'conformance',
  summary: 'compare this build stage by stage against a reference fixture folder (exit 1 on any miss)',
  async run(args) {
    const cases: string[] = [];
    let dir: string | undefined;
    for (let i = 0; i < args.length; i++) {
      if (args[i] === '--case') cases.push(args[++i] ?? '');
      else if (!dir) dir = args[i];
      else {
        process.stderr.write(`qwenvl conformance: unexpected argument ${args[i]}\n`);
        return 2;
      }
    }
    if (!dir) {
      process.stderr.write('usage: qwenvl conformance DIR [--case NAME]...\n');
      return 2;
    }
    const results = await runConformance(dir, {
      ...(cases.length ? { cases } : {}),
      onResult: (r) => process.stdout.write(`${line(r)}\n`),
    });
    const failed = results.filter((r) => !r.passed).length;
    process.stdout.write(`${results.length - failed} passed, ${failed} failed\n`);
    return failed || results.length === 0 ? 1 : 0;
  },
};
