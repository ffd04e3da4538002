// The compute-peak probes behind `qwenvl bench` and `npm run bench`: every matmul variant this CPU
// runs must have a probe that runs here (a bench on an AVX2-only CPU once failed asking for the
// AVX-512 one), and a probe for an ISA the CPU lacks is a typed refusal, not a crash.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { attentionPeak, matmulPeak, PEAK_KINDS, PEAK_OF, peakKindFor } from '../../lib/bench/floors.js';
import { native } from '../../lib/native/binding.js';

const ROUNDS = 20_000; // well under a millisecond per call: the rate is not under test

describe('compute-peak probes', () => {
  it('each kind measures a positive rate or refuses with E_UNSUPPORTED', async () => {
    for (const kind of PEAK_KINDS) {
      const r = await native.benchPeak({ kind, rounds: ROUNDS }).then(
        (gflops) => ({ gflops }),
        (err: { code?: string }) => ({ code: err.code }),
      );
      if ('gflops' in r) expect(r.gflops, kind).toBeGreaterThan(0);
      else expect(r.code, kind).toBe('E_UNSUPPORTED');
    }
  });

  it('the baseline probe runs on every x86-64 CPU', async () => {
    expect(await native.benchPeak({ kind: 'muladd32-sse2', rounds: ROUNDS })).toBeGreaterThan(0);
  });

  it("every available matmul variant's probe runs here", async () => {
    const ops = native.info().ops;
    const variants = [...ops.matmul.variants, ...(ops.matmul_bf16?.variants ?? [])].filter((v) => v.available && PEAK_OF[v.name]);
    expect(variants.length).toBeGreaterThan(0);
    for (const v of variants) expect(await native.benchPeak({ kind: PEAK_OF[v.name], rounds: ROUNDS }), v.name).toBeGreaterThan(0);
  });

  it('each precision names the probe of the matmul it runs', async () => {
    const i = native.info();
    expect(peakKindFor('exact')).toBe(PEAK_OF[i.ops.matmul.chosenByFormat!.bf16]);
    const bf16 = i.fast.matmulByFormat.bf16;
    expect(peakKindFor('fast')).toBe(bf16 ? PEAK_OF[bf16] : peakKindFor('exact'));
    for (const p of ['exact', 'fast'] as const) expect(await native.benchPeak({ kind: peakKindFor(p), rounds: ROUNDS })).toBeGreaterThan(0);
  });

  it('each format and precision names the probe of the kernels prefill and the vision tower run, with a stand-in only where a kernel has none', async () => {
    const i = native.info();
    for (const precision of ['exact', 'fast'] as const) {
      for (const format of ['bf16', 'q8', 'q4'] as const) {
        const variant = (precision === 'fast' ? i.fast.matmulByFormat[format] : null) ?? i.ops.matmul.chosenByFormat![format];
        const p = matmulPeak(precision, format);
        expect(p.variant, `${precision} ${format}`).toBe(variant);
        expect(p).toEqual(PEAK_OF[variant] ? { kind: PEAK_OF[variant], variant, standIn: false } : { kind: peakKindFor('exact'), variant, standIn: true });
        expect(await native.benchPeak({ kind: p.kind, rounds: ROUNDS })).toBeGreaterThan(0);
      }
      const attention = (precision === 'fast' ? i.fast.attention : null) ?? i.ops.attention.chosen;
      expect(attentionPeak(precision)).toMatchObject({ variant: attention, kind: PEAK_OF[attention] ?? peakKindFor('exact') });
    }
    // The int8 dot on AVX512-VNNI counts its multiply-adds as two operations, as the FMA probes do.
    if (i.ops.matmul.chosenByFormat!.q8 === 'q_avx512vnni') expect(matmulPeak('exact', 'q8').kind).toBe('dpbusd');
  });

  it('a CPU without AVX2 (QWENVL_MAX_ISA=generic) has its floor probe: the exact kernels, fast too, on SSE2', () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    // In a child: the cap is read once per process.
    const script = `const b = require('node-gyp-build')(${JSON.stringify(root)}); const i = b.info();
      const kind = (${JSON.stringify(PEAK_OF)})[i.ops.matmul.chosenByFormat.bf16];
      b.benchPeak({ kind, rounds: ${ROUNDS} }).then((g) => process.stdout.write(JSON.stringify({ kind, g, fast: i.fast })));`;
    const env = { ...process.env, QWENVL_MAX_ISA: 'generic' };
    const r = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: root, env, encoding: 'utf8' })) as {
      kind: string; g: number; fast: { matmulByFormat: Record<string, string | null>; attention: string | null };
    };
    expect(r.kind).toBe('muladd32-sse2');
    expect(r.g).toBeGreaterThan(0);
    expect(Object.values(r.fast.matmulByFormat).every((v) => v === null) && r.fast.attention === null).toBe(true);
  });

  it('an unknown kind is E_INPUT', async () => {
    await expect(native.benchPeak({ kind: 'fma64' as never, rounds: ROUNDS })).rejects.toMatchObject({ code: 'E_INPUT' });
  });
});
