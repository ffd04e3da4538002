import type { StageResult } from '../../conformance/run.js';
import { UsageError, stringList } from '../args.js';
import type { Command } from '../command.js';

const HELP = `usage: qwenvl conformance DIR [--case NAME]...

Runs the reference cases of a fixture folder (DIR/checkpoint, DIR/cases/<name>/) through this
build and compares each stage with the transformers reference (exit 1 on any miss).

options:
  --case NAME          run only this case (repeatable)
  -h, --help           show this help
`;

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
  help: HELP,
  options: { case: { type: 'string', multiple: true } },
  async run({ values, positionals }) {
    if (positionals.length === 0) throw new UsageError('a fixture folder DIR is required');
    if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
    const dir = positionals[0];
    // The unguarded versions: a bug must reach reportError as itself (with its stack), not as E_INPUT.
    const { listConformanceCasesImpl, runConformanceImpl } = await import('../../conformance/run.js');
    const known = await listConformanceCasesImpl(dir);
    const cases = stringList(values, 'case');
    const unknown = cases.filter((c) => !known.includes(c));
    if (unknown.length > 0) {
      throw new UsageError(`unknown case${unknown.length > 1 ? 's' : ''} ${unknown.map((c) => `'${c}'`).join(', ')} (known: ${known.join(', ')})`, false);
    }
    const results = await runConformanceImpl(dir, {
      ...(cases.length ? { cases } : {}),
      onResult: (r) => process.stdout.write(`${line(r)}\n`),
    });
    const failed = results.filter((r) => !r.passed).length;
    process.stdout.write(`${results.length - failed} passed, ${failed} failed\n`);
    return failed ? 1 : 0;
  },
};
