// The conformance tool on the Qwen2-VL reference fixtures: every case, every stage, within the
// issue's tolerances (integer stages identical, hidden states and logits to 1e-4 of max |ref|).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runConformance } from '../../lib/index.js';

const DIR = join(__dirname, '../../../shared/fixtures/qwen2-vl');

describe('conformance: qwen2-vl', () => {
  it('passes every stage of every case', async () => {
    const results = await runConformance(DIR);
    const cases = new Set(results.map((r) => r.case));
    expect(cases.size).toBeGreaterThanOrEqual(4);
    for (const stage of ['input_ids', 'position_ids', 'pixel_values', 'image_embeds', 'logits_last', 'generated_ids[0]']) {
      expect(results.some((r) => r.stage === stage), stage).toBe(true);
    }
    const failures = results.filter((r) => !r.passed).map((r) => `${r.case} ${r.stage}: ${r.note} abs=${r.maxAbs}`);
    expect(failures).toEqual([]);
  }, 600_000);
});
