// loadModel keeps the event loop turning: tokenizer.json (5 MB, 150k vocabulary entries and merges) is
// parsed and built in slices, so no single synchronous span of the load holds up timers and I/O; so
// does the first structured-output request, which indexes the vocabulary's bytes.
// Before the slicing, JSON.parse and the BPE tables were one ~650 ms stall on the development machine.
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../lib/index.js';
import { ModelGrammars } from '../../lib/structured/model-grammars.js';
import { readResponseFormat } from '../../lib/structured/response-format.js';
import { QwenTokenizer } from '../../lib/text/tokenizer.js';
import { longestStall } from '../helpers/event-loop-stall.js';
import { checkpointDir } from '../helpers/fixtures.js';

/** Generous: about 3x what a loaded 2-core CI machine shows (GC pauses and preemption included). */
const BOUND_MS = 150;

describe('loadModel and the event loop', () => {
  it(`never stalls it for long (bound ${BOUND_MS} ms)`, async () => {
    const dir = checkpointDir('qwen2-vl');
    await QwenTokenizer.load(dir); // first-run costs (module compilation, lazy ICU data) are not the load's
    const { value: model, stallMs, histMs } = await longestStall(() => loadModel(dir));
    try {
      console.log(`loadModel(${dir}): longest event-loop stall ${stallMs.toFixed(1)} ms (delay histogram max ${histMs.toFixed(1)} ms)`);
      expect(model.tokenizer.vocabSize).toBeGreaterThan(150_000);
      expect(stallMs).toBeLessThan(BOUND_MS);
      expect(histMs).toBeLessThan(BOUND_MS);
    } finally {
      model.dispose();
    }
  }, 60_000);

  it(`a model's first constrained request indexes the vocabulary without stalling it for long (bound ${BOUND_MS} ms)`, async () => {
    const dir = checkpointDir('qwen2-vl');
    const tok = await QwenTokenizer.load(dir);
    const grammars = new ModelGrammars(tok, 151936);
    try {
      // Before the index moved off the loop: one 300-700 ms span (token bytes, then the trie).
      const format = readResponseFormat('f', { type: 'json_object' })!;
      const { stallMs, histMs } = await longestStall(() => grammars.masks(format));
      console.log(`first constrained request: longest event-loop stall ${stallMs.toFixed(1)} ms (delay histogram max ${histMs.toFixed(1)} ms)`);
      expect(stallMs).toBeLessThan(BOUND_MS);
      expect(histMs).toBeLessThan(BOUND_MS);
    } finally {
      grammars.dispose();
    }
  }, 60_000);

  it('loads the same tokenizer through the sliced path as through loadSync', async () => {
    const dir = checkpointDir('qwen3-vl');
    const a = await QwenTokenizer.load(dir);
    const b = QwenTokenizer.loadSync(dir);
    for (const k of ['vocabSize', 'baseVocabSize', 'maxTokenBytes', 'modelMaxLength', 'paddingSide'] as const) {
      expect(a[k]).toBe(b[k]);
    }
    expect(a.specialIds).toEqual(b.specialIds);
    expect(a.specialTokensMap).toEqual(b.specialTokensMap);
    expect(a.addedTokens).toEqual(b.addedTokens);
    const text = 'Hello, 世界! <|im_start|>user\n  spaces\t\ttabs 12345 émoji 😀 <|image_pad|>';
    expect(a.encode(text)).toEqual(b.encode(text));
    const ids = Array.from({ length: 4000 }, (_, i) => (i * 37) % a.vocabSize);
    expect(a.decode(ids)).toBe(b.decode(ids));
  });
});
