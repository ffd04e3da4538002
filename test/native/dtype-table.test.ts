// The dtype codes cross the N-API boundary as integers: lib/tensor.ts's table and
// native/core/dtype.h's must name the same dtypes with the same codes and element sizes, or a
// tensor would be read as another type. Also pins the weight-format traits table's dense rows.
import { describe, expect, it } from 'vitest';
import { native } from '../../lib/native/binding.js';
import { DTYPE_CODES, DTYPE_SIZES } from '../../lib/tensor.js';

describe('dtype tables: TypeScript against native', () => {
  it('names, codes and element sizes agree both ways', () => {
    const nativeRows = native.dtypeTable();
    const ts = Object.entries(DTYPE_CODES)
      .map(([name, code]) => ({ name, code, bytes: DTYPE_SIZES[name as keyof typeof DTYPE_SIZES] }))
      .sort((a, b) => a.code - b.code);
    expect(nativeRows).toEqual(ts);
  });

  it('every weight format names a dtype of the table and sizes whole blocks', () => {
    const dtypes = new Map(native.dtypeTable().map((r) => [r.name, r]));
    const formats = native.weightFormats();
    expect(formats.map((f) => f.name)).toEqual(expect.arrayContaining(['f32', 'f16', 'bf16', 'fp8']));
    for (const f of formats) {
      const storage = dtypes.get(f.storage);
      expect(storage, `${f.name} storage ${f.storage}`).toBeDefined();
      expect(f.block).toBeGreaterThanOrEqual(1);
      // Dense formats: one element per block, stored as its dtype; their codes are the dtype's.
      if (f.block === 1) {
        expect(f.blockBytes).toBe(storage?.bytes);
        expect(f.code).toBe(storage?.code);
      }
      expect(f.activation).toBe('f32');
    }
  });

  it('info() reports the variant run for each weight format, one that reads it', () => {
    // matmul and moe read every format (MoE experts are quantized at load too, and official FP8
    // MoE releases keep theirs in fp8: see README, "Quantized weights").
    for (const op of ['matmul', 'moe']) {
      const o = native.info().ops[op];
      expect(o?.chosenByFormat, op).toBeDefined();
      for (const f of native.weightFormats()) {
        const chosen = o?.chosenByFormat?.[f.name];
        const v = o?.variants.find((x) => x.name === chosen);
        expect(v?.available, `${op}/${f.name} -> ${chosen}`).toBe(true);
        expect(v?.formats).toContain(f.name);
      }
    }
  });
});
