// Structured output end to end on the random-weight fixture checkpoint: chat/stream with a
// responseFormat, greedy and sampled, alone and batched with other requests, the thinking models'
// start-after, and the typed errors. The random model writes whatever the grammar lets it: with
// bounded strings, arrays and numbers the schema's language is finite, so it must finish, and what it
// writes must parse and validate (ajv).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadModel, QwenVLError, type ChatMessage, type Model } from '../../lib/index.js';
import { tokenLoop } from '../../lib/model/generate.js';
import { resolveGenerateOptions } from '../../lib/generate/options.js';
import { ModelGrammars } from '../../lib/structured/model-grammars.js';
import { flattenGrammar } from '../../lib/structured/flatten-grammar.js';
import { native, type NativeHandle } from '../../lib/native/binding.js';
import { readResponseFormat } from '../../lib/structured/response-format.js';
import { RequestCancel } from '../../lib/model/cancel.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { validatorFor } from '../helpers/json-schema-validator.js';

const user = (text: string): ChatMessage[] => [{ role: 'user', content: [{ type: 'text', text }] }];

/** Bounded everywhere: every sentence is short, so a random model must reach the end. */
export const PERSON = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 8 },
    age: { type: 'integer', minimum: 0, maximum: 120 },
    tags: { type: 'array', items: { enum: ['red', 'green', 'blue'] }, maxItems: 3 },
    address: {
      type: 'object',
      properties: { city: { type: 'string', minLength: 1, maxLength: 6 }, zip: { anyOf: [{ type: 'integer', minimum: 1000, maximum: 9999 }, { type: 'null' }] } },
      required: ['city', 'zip'],
      additionalProperties: false,
    },
    ok: { type: 'boolean' },
  },
  required: ['name', 'age', 'tags', 'address', 'ok'],
  additionalProperties: false,
} as const;

const FORMAT = { type: 'json_schema', schema: PERSON } as const;
const valid = validatorFor(PERSON);

function expectValid(text: string): void {
  let value: unknown;
  expect(() => (value = JSON.parse(text)), text).not.toThrow();
  expect(valid(value), text).toBe(true);
}

async function rejection(p: Promise<unknown>): Promise<QwenVLError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(QwenVLError);
  return e as QwenVLError;
}

describe('structured output on the fixture checkpoint', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(checkpointDir('qwen2-vl'));
  });
  afterAll(() => model?.dispose());

  it('greedy: the answer parses and validates, and ends on the end token', async () => {
    const r = await model.chat(user('Describe a person.'), { responseFormat: FORMAT, maxTokens: 400, doSample: false });
    expect(r.finishReason).toBe('stop');
    expectValid(r.text);
    // Unconstrained, the same random model writes no JSON at all.
    const free = await model.chat(user('Describe a person.'), { maxTokens: 30, doSample: false });
    expect(() => JSON.parse(free.text)).toThrow();
  });

  it('sampled, several seeds: every answer validates; the seed replays a run', async () => {
    const texts: string[] = [];
    for (const seed of [1, 2, 3]) {
      const r = await model.chat(user('Describe a person.'), { responseFormat: FORMAT, maxTokens: 400, doSample: true, temperature: 1, topK: 0, topP: 1, seed });
      expect(r.finishReason).toBe('stop');
      expectValid(r.text);
      texts.push(r.text);
    }
    const again = await model.chat(user('Describe a person.'), { responseFormat: FORMAT, maxTokens: 400, doSample: true, temperature: 1, topK: 0, topP: 1, seed: 2 });
    expect(again.text).toBe(texts[1]);
  });

  it('stream() yields the same validated text as chat()', async () => {
    const opts = { responseFormat: FORMAT, maxTokens: 400, doSample: false } as const;
    let streamed = '';
    for await (const chunk of model.stream(user('Another person.'), opts)) streamed += chunk;
    expect(streamed).toBe((await model.chat(user('Another person.'), opts)).text);
    expectValid(streamed);
  });

  it('json_object: the answer starts as an object and every prefix stays on the grammar', async () => {
    const r = await model.chat(user('Anything.'), { responseFormat: { type: 'json_object' }, maxTokens: 24, doSample: false });
    expect(r.text.startsWith('{')).toBe(true);
  });

  it('batched: concurrent constrained and unconstrained requests each get what they get alone', async () => {
    const a = { responseFormat: FORMAT, maxTokens: 400, doSample: false } as const;
    const b = { maxTokens: 12, doSample: false } as const;
    const c = { responseFormat: FORMAT, maxTokens: 400, doSample: true, temperature: 0.9, seed: 7 } as const;
    const alone = [await model.chat(user('One.'), a), await model.chat(user('Two.'), b), await model.chat(user('Three.'), c)];
    const together = await Promise.all([model.chat(user('One.'), a), model.chat(user('Two.'), b), model.chat(user('Three.'), c)]);
    expect(together.map((r) => r.tokens)).toEqual(alone.map((r) => r.tokens));
    expectValid(together[0].text);
    expectValid(together[2].text);
    // A batched call: each row under the format.
    const rows = await model.chat([user('One.'), user('A longer second prompt.')], a);
    for (const r of rows) expectValid(r.text);
  });

  it('a thinking prompt runs free until </think>, then follows the grammar', async () => {
    // The random model never writes </think> on its own: take the token its free greedy run draws at
    // step 3 as the start marker, the way </think> marks the answer of a thinking model.
    const o = resolveGenerateOptions({ maxTokens: 300, doSample: false }, model.generationDefaults);
    const p = await model.prepare(user('Think first.'));
    const run = async (constraints?: Parameters<typeof tokenLoop>[0]['constraints']) => {
      const cancel = new RequestCancel('test', undefined);
      const ctx = { ...(model as unknown as { loopContext(c: RequestCancel): Parameters<typeof tokenLoop>[0] }).loopContext(cancel), constraints };
      const out: number[] = [];
      for await (const step of tokenLoop(ctx, p, o, () => false)) {
        if (step.eos[0]) break;
        out.push(step.tokens[0]);
      }
      cancel.close();
      return out;
    };
    const free = await run();
    const marker = free[3];
    const grammars = new ModelGrammars(model.tokenizer, model.config.text.vocabSize);
    try {
      const fmt = readResponseFormat('f', FORMAT)!;
      const [constraint] = await grammars.constraints(fmt, model.config.tokens.eosTokenIds, [false]);
      const after = free.indexOf(marker) + 1;
      const constrained = await run([{ ...constraint, startAfter: marker }]);
      expect(constrained.slice(0, after)).toEqual(free.slice(0, after));
      expectValid(model.tokenizer.decode(constrained.slice(after)));
      // thinking rows get </think> as their start marker
      const [thinking] = await grammars.constraints(fmt, [1], [true]);
      expect(thinking.startAfter).toBe(model.tokenizer.tokenToId('</think>'));
    } finally {
      grammars.dispose();
    }
  });

  it('the native sampler refuses a constraint over another vocabulary, bad end ids and a bad start token', async () => {
    const handle = (model as unknown as { handle: NativeHandle }).handle;
    const session = native.modelNewSession(handle, 1, 16);
    const small = native.grammarVocabulary(new Uint8Array([97]), Int32Array.from([0, 1]));
    const grammar = native.grammarCompile(flattenGrammar({ rules: [[[{ lit: 'a' }]]], root: 0 }));
    const params = [{ doSample: false, temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1 }];
    const sampling = (masks: NativeHandle, extra: Record<string, unknown> = {}) => () =>
      native.sessionSampling(session, { params, seed: 1, constraints: [{ masks, endIds: Int32Array.from([0]), ...extra }] });
    const wrong = native.grammarMasks(grammar, small);
    const grammars = new ModelGrammars(model.tokenizer, model.config.text.vocabSize);
    try {
      expect(sampling(wrong)).toThrow(/vocabulary has 1 ids/);
      const right = await grammars.masks(readResponseFormat('f', FORMAT)!);
      expect(sampling(right, { endIds: Int32Array.from([1 << 30]) })).toThrow(/endIds/);
      expect(sampling(right, { startAfter: 1 << 30 })).toThrow(/startAfter/);
      expect(sampling(right)).not.toThrow();
    } finally {
      grammars.dispose();
      for (const h of [wrong, grammar, small, session]) native.disposeHandle(h);
    }
  });

  it("a model's vocabulary index is built once, off the event loop, for concurrent first requests", async () => {
    const grammars = new ModelGrammars(model.tokenizer, model.config.text.vocabSize);
    const builds = vi.spyOn(native, 'grammarVocabularyAsync');
    try {
      const fmt = readResponseFormat('f', FORMAT)!;
      let ticked = false;
      let tickedFirst: boolean | undefined;
      const first = grammars.masks(fmt).then((m) => ((tickedFirst ??= ticked), m));
      setImmediate(() => (ticked = true));
      const [a, b, c] = await Promise.all([first, grammars.masks(fmt), grammars.masks(readResponseFormat('g', { type: 'json_object' })!)]);
      expect(tickedFirst).toBe(true); // the loop ran while the first request's index was built
      expect(builds).toHaveBeenCalledTimes(1);
      expect(a).toBe(b);
      expect(c).not.toBe(a);
      await grammars.masks(fmt);
      expect(builds).toHaveBeenCalledTimes(1);
    } finally {
      builds.mockRestore();
      grammars.dispose();
    }
  });

  it('a model disposed while its vocabulary is indexed: the pending request is E_DISPOSED', async () => {
    const grammars = new ModelGrammars(model.tokenizer, model.config.text.vocabSize);
    const pending = grammars.masks(readResponseFormat('f', FORMAT)!);
    grammars.dispose();
    await expect(pending).rejects.toMatchObject({ code: 'E_DISPOSED' });
  });

  it('unsupported keywords and malformed formats are typed errors before anything runs', async () => {
    const before = model.stats().steps;
    const e = await rejection(model.chat(user('x'), { responseFormat: { type: 'json_schema', schema: { type: 'string', not: { const: 'a' } } } }));
    expect(e.code).toBe('E_UNSUPPORTED');
    expect(e.message).toMatch(/not/);
    expect((await rejection(model.chat(user('x'), { responseFormat: { type: 'yaml' } as never }))).code).toBe('E_INPUT');
    expect((await rejection(model.chat(user('x'), { responseFormat: { type: 'json_schema', schema: 5 } as never }))).code).toBe('E_INPUT');
    expect(model.stats().steps).toBe(before);
  });
});
