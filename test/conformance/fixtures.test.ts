// The conformance tool on every public reference fixture folder: every case, every stage, within
// the tolerances of the issues (integer stages identical, pixel values to 1e-5, hidden states and
// logits to 1e-4 of max |ref|, greedy tokens identical).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { QwenVLError, listConformanceCases, runConformance } from '../../lib/index.js';

const ROOT = join(__dirname, '../../../shared/fixtures');
const folders = readdirSync(ROOT, { withFileTypes: true })
  .filter((e) => e.isDirectory() && existsSync(join(ROOT, e.name, 'cases')))
  .map((e) => e.name)
  .sort();

describe('conformance against transformers reference fixtures', () => {
  it('finds the four public fixture folders', () => {
    expect(folders).toEqual(expect.arrayContaining(['qwen2-vl', 'qwen2.5-vl', 'qwen3-vl', 'qwen3-vl-moe']));
  });
  for (const folder of folders) {
    it(folder, async () => {
      const results = await runConformance(join(ROOT, folder));
      const cases = new Set(results.map((r) => r.case));
      expect(cases.size).toBe(readdirSync(join(ROOT, folder, 'cases')).length);
      for (const stage of ['input_ids', 'position_ids', 'logits_last', 'generated_ids[0]']) {
        expect(results.some((r) => r.stage === stage), stage).toBe(true);
      }
      const failures = results.filter((r) => !r.passed).map((r) => `${r.case} ${r.stage}: ${r.note} abs=${r.maxAbs}`);
      expect(failures).toEqual([]);
    }, 600_000);
  }

  it('an unknown case name is E_INPUT naming the known ones (not "0 passed, 0 failed")', async () => {
    const dir = join(ROOT, folders[0]);
    const known = await listConformanceCases(dir);
    expect(known.length).toBeGreaterThan(0);
    const err = await runConformance(dir, { cases: ['no-such-case'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QwenVLError);
    expect((err as QwenVLError).code).toBe('E_INPUT');
    expect((err as Error).message).toContain(`unknown conformance case(s) no-such-case (known: ${known.join(', ')})`);
    const missing = await listConformanceCases(join(ROOT, 'no-such-folder')).catch((e: unknown) => e);
    expect((missing as QwenVLError).code).toBe('E_INPUT');
  });
});
