// The conformance tool on every reference fixture case (the in-repo ones and, when present, those
// of ../shared/fixtures): every case, every stage, within the tolerances of the issues (integer
// stages identical, pixel values to 1e-5, hidden states and logits to 1e-4 of max |ref|, greedy
// tokens identical).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { QwenVLError, listConformanceCases, runConformance, type StageResult } from '../../lib/index.js';
import { FAMILIES, fixtureCaseRefs, fixtureFolders, fixtureDir } from '../helpers/fixtures.js';

const folders = fixtureFolders().map((f) => f.family);

describe('conformance against transformers reference fixtures', () => {
  it('finds the four public fixture folders', () => {
    expect(folders).toEqual(expect.arrayContaining([...FAMILIES]));
  });
  for (const folder of folders) {
    it(folder, async () => {
      const refs = fixtureCaseRefs(folder);
      // One run per fixture tree the cases come from: each uses its own checkpoint and inputs.
      const byRoot = new Map<string, string[]>();
      for (const r of refs) byRoot.set(r.root, [...(byRoot.get(r.root) ?? []), r.name]);
      const results: StageResult[] = [];
      for (const [root, cases] of byRoot) results.push(...(await runConformance(root, { cases })));
      const cases = new Set(results.map((r) => r.case));
      expect(cases.size).toBe(refs.length);
      for (const stage of ['input_ids', 'position_ids', 'logits_last', 'generated_ids[0]']) {
        expect(results.some((r) => r.stage === stage), stage).toBe(true);
      }
      const failures = results.filter((r) => !r.passed).map((r) => `${r.case} ${r.stage}: ${r.note} abs=${r.maxAbs}`);
      expect(failures).toEqual([]);
    }, 600_000);
  }

  it('an unknown case name is E_INPUT naming the known ones (not "0 passed, 0 failed")', async () => {
    const dir = fixtureDir(FAMILIES[0]);
    const known = await listConformanceCases(dir);
    expect(known.length).toBeGreaterThan(0);
    const err = await runConformance(dir, { cases: ['no-such-case'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QwenVLError);
    expect((err as QwenVLError).code).toBe('E_INPUT');
    expect((err as Error).message).toContain(`unknown conformance case(s) no-such-case (known: ${known.join(', ')})`);
    const missing = await listConformanceCases(join(fixtureDir(FAMILIES[0]), 'no-such-folder')).catch((e: unknown) => e);
    expect((missing as QwenVLError).code).toBe('E_INPUT');
  });
});
