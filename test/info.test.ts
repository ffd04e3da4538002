import { describe, expect, it } from 'vitest';
import { info, QwenVLError, setThreads } from '../lib/index.js';

describe('info()', () => {
  it('reports version, cpu, threads, kernels and cuda status', () => {
    const i = info();
    expect(i.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(i.cpu.physicalCores).toBeGreaterThanOrEqual(1);
    expect(i.threads).toBeGreaterThanOrEqual(1);
    for (const o of Object.values(i.ops)) {
      expect(o.variants.map((v) => v.name)).toContain(o.chosen);
      expect(o.variants[0]?.name).toBe('reference');
    }
    // Fast names, per weight format, an available bf16 kernel other than the scalar reference, or
    // null (exact runs); q8/q4 take only AMX (their int8 GEMM beats AVX512-BF16).
    const bf16 = i.ops.matmul_bf16.variants;
    expect(Object.keys(i.fast.matmulByFormat).sort()).toEqual(Object.keys(i.ops.matmul.chosenByFormat!).sort());
    for (const [format, v] of Object.entries(i.fast.matmulByFormat)) {
      if (v === null) continue;
      expect(v).not.toBe('reference');
      expect(bf16.find((x) => x.name === v)).toMatchObject({ available: true });
      if (format === 'q8' || format === 'q4') expect(v).toBe('amx');
    }
    const amx = bf16.some((x) => x.name === 'amx' && x.available);
    if (!bf16.some((x) => x.name !== 'reference' && x.available)) expect(Object.values(i.fast.matmulByFormat).every((v) => v === null)).toBe(true);
    if (amx) expect(i.fast.matmulByFormat.q4).toBe('amx');
    const attn = i.ops.attention_bf16.variants.filter((x) => x.name !== 'reference' && x.available);
    expect(i.fast.attention).toBe(attn.length === 0 ? null : attn[attn.length - 1].name);
    const step = i.ops.attention_bf16_decode.variants.filter((x) => x.name !== 'reference' && x.available);
    expect(i.fast.attentionDecode).toBe(step.length === 0 ? null : step[step.length - 1].name);
    if (!i.cuda.available) expect(i.cuda.reason.length).toBeGreaterThan(0);
    else expect(i.cuda.memoryBytes).toBeGreaterThan(0);
  });

  it('setThreads resizes the pool and rejects bad counts with E_INPUT', () => {
    const before = info().threads;
    setThreads(1);
    expect(info().threads).toBe(1);
    setThreads(before);
    expect(info().threads).toBe(before);
    for (const bad of [0, -1, 1.5, Number.NaN, 5000]) {
      try {
        setThreads(bad);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(QwenVLError);
        expect((e as QwenVLError).code).toBe('E_INPUT');
        // The message echoes the value as given ("got 0", not "got 0.000000").
        expect((e as Error).message).toBe(`threads must be an integer from 1 to 1024, got ${String(bad)}`);
      }
    }
  });
});
