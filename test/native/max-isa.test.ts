// QWENVL_MAX_ISA caps kernel dispatch: each level this CPU has must make the matmul op pick that
// level's int8-dot variant for q8 and q4 weights (and never one above it), so every variant can be
// forced for comparisons. Each level runs in its own process (the cap is read once).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { native } from '../../lib/native/binding.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const script = `const b = require('node-gyp-build')(${JSON.stringify(root)}); process.stdout.write(JSON.stringify(b.info().ops.matmul.chosenByFormat));`;

function chosenUnder(isa: string): Record<string, string> {
  const env = { ...process.env, QWENVL_MAX_ISA: isa };
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: root, env, encoding: 'utf8' })) as Record<string, string>;
}

const LEVELS: [string, string][] = [
  ['generic', 'q_generic'],
  ['avx2', 'q_avx2'],
  ['avxvnni', 'q_avxvnni'],
  ['avx512vnni', 'q_avx512vnni'],
];

describe('QWENVL_MAX_ISA forces each int8-dot matmul variant', () => {
  const variants = native.info().ops.matmul.variants;
  for (const [isa, variant] of LEVELS) {
    const v = variants.find((x) => x.name === variant);
    it.skipIf(!v?.available)(`${isa} -> ${variant}`, () => {
      const chosen = chosenUnder(isa);
      expect(chosen.q8).toBe(variant);
      expect(chosen.q4).toBe(variant);
    });
  }
});
