// The kernel parity harness (native/tests/parity*.cpp) in the test suite: one test per op
// family, failing with the cases that missed their tolerance or wrote outside their output.
import { describe, expect, it } from 'vitest';
import { native } from '../../lib/native/binding.js';

const ops = native.parityOps();
// Op families whose amx variant the parity harness also runs on its AMX emulator.
const EMULATED_AMX = new Set(['matmul_bf16', 'attention_bf16']);

describe('kernel parity: every variant against its reference', () => {
  it('has op families to test', () => {
    expect(ops.length).toBeGreaterThan(0);
  });
  for (const op of ops) {
    it(op, async () => {
      const results = await native.parity(op, 20261129);
      expect(results.length).toBeGreaterThan(0);
      const failures = results
        .filter((r) => !r.passed)
        .map((r) => `${r.variant} ${r.shape}: rel=${r.maxRelErr} tol=${r.tolerance} ${r.note}`);
      expect(failures).toEqual([]);
      // Every variant this CPU can run must have been exercised, on its device, and for ops that
      // read weights in every weight format it claims (the (device, ISA, format) axes).
      const tested = new Set(results.map((r) => r.variant));
      const testedOnDevice = new Set(results.map((r) => `${r.device}/${r.variant}`));
      const testedPairs = new Set(results.map((r) => `${r.device}/${r.variant}/${r.format ?? ''}`));
      for (const v of native.info().ops[op]?.variants ?? []) {
        if (!v.available || v.name === 'reference') continue;
        expect(tested, `${op}/${v.name} untested`).toContain(v.name);
        expect(testedOnDevice, `${op}/${v.name} not reported on its device ${v.device}`).toContain(`${v.device}/${v.name}`);
        for (const f of v.formats ?? []) {
          expect(testedPairs, `${op}/${v.name} untested on ${v.device} with ${f} weights`).toContain(
            `${v.device}/${v.name}/${f}`,
          );
        }
      }
      // The AMX kernels' source also runs on the tile emulator wherever the driver around the
      // tiles can (AVX512-BF16), in every format the amx variant claims.
      if (EMULATED_AMX.has(op) && native.info().cpu.features.includes('avx512bf16')) {
        const amx = native.info().ops[op]?.variants.find((v) => v.name === 'amx');
        for (const f of amx?.formats?.length ? amx.formats : ['']) {
          expect(testedPairs, `${op}/amx-emulated untested${f ? ` with ${f} weights` : ''}`).toContain(`cpu/amx-emulated/${f}`);
        }
      }
    });
  }
});
