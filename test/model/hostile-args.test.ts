// Garbage at every public entry point: wrong types, NaN, negative and huge numbers, null, arrays of the
// wrong things, objects whose getters throw, proxies that throw on every operation. Each call either
// succeeds or fails with a QwenVLError of a sensible code; nothing escapes as a TypeError and the
// process stays alive.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as q from '../../lib/index.js';
import { QwenVLError, loadModel, type Model } from '../../lib/index.js';
import { fixtureDir } from '../helpers/fixtures.js';

const FIX = fixtureDir('qwen2-vl');
const CKPT = join(FIX, 'checkpoint');
const IMG = join(FIX, 'inputs/gradient_224x224.png');

const throwingGetters = new Proxy({}, {
  get() {
    throw new Error('getter boom');
  },
});
const throwingEverything = new Proxy({}, Object.fromEntries(
  ['get', 'has', 'ownKeys', 'getPrototypeOf', 'getOwnPropertyDescriptor', 'set', 'defineProperty', 'apply'].map((t) => [t, () => {
    throw new Error(`proxy ${t} boom`);
  }]),
));
const throwingArray = new Proxy([1, 2, 3], {
  get(target, k) {
    if (k === 'length' || k === '0') throw new Error('array boom');
    return Reflect.get(target, k);
  },
});
const getterObject = Object.defineProperty({}, 'maxTokens', { enumerable: true, get: () => { throw new Error('maxTokens boom'); } });
const sparseHuge: unknown[] = [];
sparseHuge.length = 2 ** 32 - 1;

const GARBAGE: [string, unknown][] = [
  ['undefined', undefined], ['null', null], ['NaN', NaN], ['-1', -1], ['2^53', 2 ** 53], ['Infinity', Infinity], ['0.5', 0.5],
  ['5', 5], ['"x"', 'x'], ['""', ''], ['true', true], ['symbol', Symbol('s')], ['10n', 10n], ['function', () => 1],
  ['{}', {}], ['[]', []], ['[null]', [null]], ['[{}]', [{}]], ['[1, 2]', [1, 2]], ['[[5]]', [[5]]], ['["x"]', ['x']],
  ['Date', new Date(0)], ['Float64Array', new Float64Array(3)], ['Buffer', Buffer.from('junk')],
  ['{role: 5}', { role: 5 }], ['getter that throws', getterObject], ['proxy with throwing get', throwingGetters],
  ['proxy that throws on everything', throwingEverything], ['array proxy that throws', throwingArray],
  ['sparse array of length 2^32-1', sparseHuge],
];

const OK_CODES = new Set(['E_INPUT', 'E_CONTEXT_OVERFLOW', 'E_UNSUPPORTED', 'E_MODEL_FORMAT', 'E_DISPOSED']);

let model: Model;
let tok: q.QwenTokenizer;
let prepared: q.PreparedInputs;
beforeAll(async () => {
  model = await loadModel(CKPT, { contextLength: 48 });
  tok = model.tokenizer;
  prepared = await model.prepare([{ role: 'user', content: 'hi' }]);
});
afterAll(() => model?.dispose());

const msgs = (): any => [{ role: 'user', content: 'hi' }];
const userContent = (c: unknown): any => [{ role: 'user', content: c }];
const part = (p: unknown): any => [{ role: 'user', content: [p] }];
const drain = async (it: AsyncIterable<unknown>) => {
  for await (const _ of it) void _;
};

/** Each entry: a name and a call taking the garbage value in one argument position. */
const ENTRIES: [string, (g: any) => unknown][] = [
  ['model.chat(g)', (g) => model.chat(g)],
  ['model.chat(msgs, g)', (g) => model.chat(msgs(), g)],
  ['model.chat(msgs, {stop: g})', (g) => model.chat(msgs(), { stop: g, maxTokens: 1 })],
  ['model.chat(msgs, {eosTokenIds: g})', (g) => model.chat(msgs(), { eosTokenIds: g, maxTokens: 1 })],
  ['model.chat(msgs, {signal: g})', (g) => model.chat(msgs(), { signal: g, maxTokens: 1 })],
  ['model.chat(msgs, {seed: g})', (g) => model.chat(msgs(), { seed: g, maxTokens: 1 })],
  ['model.chat(msgs, {temperature: g})', (g) => model.chat(msgs(), { temperature: g, maxTokens: 1 })],
  ['model.chat(msgs, {specialTokensInUserText: g})', (g) => model.chat(msgs(), { specialTokensInUserText: g, maxTokens: 1 })],
  ['model.chat(content g)', (g) => model.chat(userContent(g), { maxTokens: 1 })],
  ['model.chat(part g)', (g) => model.chat(part(g), { maxTokens: 1 })],
  ['model.chat(text part g)', (g) => model.chat(part({ type: 'text', text: g }), { maxTokens: 1 })],
  ['model.chat(role g)', (g) => model.chat([{ role: g, content: 'x' }], { maxTokens: 1 })],
  ['model.chat([g])', (g) => model.chat([g], { maxTokens: 1 })],
  ['model.stream(g)', (g) => drain(model.stream(g))],
  ['model.stream(msgs, g)', (g) => drain(model.stream(msgs(), g))],
  ['model.streamEvents(msgs, g)', (g) => drain(model.streamEvents(msgs(), g))],
  ['model.chat(msgs, {tools: g})', (g) => model.chat(msgs(), { tools: g, maxTokens: 1 })],
  ['model.chat(msgs, {tools: [g]})', (g) => model.chat(msgs(), { tools: [g], maxTokens: 1 })],
  ['model.chat(msgs, {templateVariables: g})', (g) => model.chat(msgs(), { templateVariables: g, maxTokens: 1 })],
  ['model.prepare(msgs, {tools: g})', (g) => model.prepare(msgs(), { tools: g })],
  ['model.chat(tool_calls g)', (g) => model.chat([...msgs(), { role: 'assistant', content: null, tool_calls: g }], { maxTokens: 1 })],
  ['model.chat(tool_calls [g])', (g) => model.chat([...msgs(), { role: 'assistant', content: null, tool_calls: [g] }], { maxTokens: 1 })],
  ['model.chat(tool content g)', (g) => model.chat([...msgs(), { role: 'tool', content: g }], { maxTokens: 1 })],
  ['parseToolCalls(g)', (g) => q.parseToolCalls(g)],
  ['parseToolCalls("x", g)', (g) => q.parseToolCalls('x', g)],
  ['new ToolCallStream(g)', (g) => new q.ToolCallStream(g)],
  ['toolCallStream.push(g)', (g) => new q.ToolCallStream().push(g)],
  ['splitReasoning(g)', (g) => q.splitReasoning(g)],
  ['splitReasoning("x", g)', (g) => q.splitReasoning('x', g)],
  ['new ReasoningStream(g)', (g) => new q.ReasoningStream(g)],
  ['reasoningStream.push(g)', (g) => new q.ReasoningStream().push(g)],
  ['model.estimateTokens(g)', (g) => model.estimateTokens(g)],
  ['model.estimateTokens(msgs, g)', (g) => model.estimateTokens(msgs(), g)],
  ['model.estimateTokens(msgs, {maxTokens: g})', (g) => model.estimateTokens(msgs(), { maxTokens: g })],
  ['model.prepare(g)', (g) => model.prepare(g)],
  ['model.prepare(msgs, g)', (g) => model.prepare(msgs(), g)],
  ['model.logits(g)', (g) => model.logits(g)],
  ['model.logits(prepared, g)', (g) => model.logits(prepared, g)],
  ['model.logits({...prepared, inputIds: g})', (g) => model.logits({ ...prepared, inputIds: g })],
  ['model.logits({...prepared, padding: g})', (g) => model.logits({ ...prepared, padding: g })],
  ['model.logits({...prepared, seqLength: g})', (g) => model.logits({ ...prepared, seqLength: g })],
  ['model.encodeImages(g)', (g) => model.encodeImages(g)],
  ['model.processor.processImages(g)', (g) => model.processor.processImages(g)],
  ['model.processor.processVideo(g)', (g) => model.processor.processVideo(g)],
  ['model.processor.processVideo(frames, g)', (g) => model.processor.processVideo({ frames: [IMG, IMG] }, g)],
  ['tokenizer.encode(g)', (g) => tok.encode(g)],
  ['tokenizer.encode("x", g)', (g) => tok.encode('x', g)],
  ['tokenizer.encodeAsync(g)', (g) => tok.encodeAsync(g)],
  ['tokenizer.encodeAsync("x", g)', (g) => tok.encodeAsync('x', g)],
  ['tokenizer.decode(g)', (g) => tok.decode(g)],
  ['tokenizer.decode([1], g)', (g) => tok.decode([1], g)],
  ['tokenizer.tokenize(g)', (g) => tok.tokenize(g)],
  ['tokenizer.tokenToId(g)', (g) => tok.tokenToId(g)],
  ['tokenizer.idToToken(g)', (g) => tok.idToToken(g)],
  ['tokenizer.createStreamDecoder(g)', (g) => tok.createStreamDecoder(g)],
  ['streamDecoder.push(g)', (g) => tok.createStreamDecoder().push(g)],
  ['loadModel(g)', (g) => loadModel(g)],
  ['loadModel(dir, g)', (g) => loadModel(CKPT, g).then((m) => m.dispose())],
  ['loadModel(dir, {threads: g})', (g) => loadModel(CKPT, { threads: g }).then((m) => m.dispose())],
  ['loadModel(dir, {contextLength: g})', (g) => loadModel(CKPT, { contextLength: g }).then((m) => m.dispose())],
  ['loadModel(dir, {onProgress: g})', (g) => loadModel(CKPT, { onProgress: g }).then((m) => m.dispose())],
  ['QwenTokenizer.fromJSON(g)', (g) => q.QwenTokenizer.fromJSON(g)],
  ['QwenTokenizer.load(g)', (g) => q.QwenTokenizer.load(g)],
  ['new ChatTemplate(g)', (g) => new q.ChatTemplate(g)],
  ['chatTemplate.render(g)', (g) => model.template.render(g)],
  ['chatTemplate.render(msgs, g)', (g) => model.template.render(msgs(), g)],
  ['applyChatTemplate("{{ messages }}", g)', (g) => q.applyChatTemplate('{{ messages }}', g)],
  ['findChatTemplate(g)', (g) => q.findChatTemplate(g)],
  ['expandVisionPlaceholders(g)', (g) => q.expandVisionPlaceholders(g)],
  ['expandVisionPlaceholders(["x"], g)', (g) => q.expandVisionPlaceholders(['x'], g)],
  ['padBatch(g, {padId: 0})', (g) => q.padBatch(g, { padId: 0 })],
  ['padBatch([[1]], g)', (g) => q.padBatch([[1]], g)],
  ['encodeBatch(tok, g)', (g) => q.encodeBatch(tok, g)],
  ['smartResize(g, 100, {})', (g) => q.smartResize(g, 100, {} as never)],
  ['smartNframes(g, 10, 2)', (g) => q.smartNframes(g, 10, 2)],
  ['qwen3VideoTimestamps(g)', (g) => q.qwen3VideoTimestamps(g)],
  ['formatFixed1(g)', (g) => q.formatFixed1(g)],
  ['parseModelConfig(g)', (g) => q.parseModelConfig(g)],
  ['parseGenerationConfig(g)', (g) => q.parseGenerationConfig(g)],
  ['parseImageProcessorConfig(g)', (g) => q.parseImageProcessorConfig(g)],
  ['parseVideoProcessorConfig(g)', (g) => q.parseVideoProcessorConfig(g)],
  ['loadModelConfig(g)', (g) => q.loadModelConfig(g)],
  ['loadImageProcessorConfig(g)', (g) => q.loadImageProcessorConfig(g)],
  ['openSafetensors(g)', (g) => q.openSafetensors(g)],
  ['readSafetensorsHeader(g)', (g) => q.readSafetensorsHeader(g)],
  ['getRopeIndex(g, ...)', (g) => q.getRopeIndex(g, null, null, null, q.ropeIndexOptions(model.config))],
  ['getRopeIndex(ids, g, ...)', (g) => q.getRopeIndex([[1, 2]], g, null, null, q.ropeIndexOptions(model.config))],
  ['getRopeIndex(ids, null, g, ...)', (g) => q.getRopeIndex([[1, 2]], null, g, null, q.ropeIndexOptions(model.config))],
  ['getRopeIndex(ids, null, null, null, g)', (g) => q.getRopeIndex([[1, 2]], null, null, null, g)],
  ['processImages(g, config)', (g) => q.processImages(g, model.processor.config)],
  ['processImages([img], g)', (g) => q.processImages([IMG], g)],
  ['processVideo(g, config)', (g) => q.processVideo(g, model.processor.videoConfig)],
  ['castTensor(g, "float32")', (g) => q.castTensor(g, 'f32' as never)],
  ['setThreads(g)', (g) => q.setThreads(g)],
];

describe('hostile arguments at every public entry point', () => {
  it('fail only with QwenVLError of a sensible code', async () => {
    const escaped: string[] = [];
    for (const [name, call] of ENTRIES) {
      for (const [gname, g] of GARBAGE) {
        try {
          const r = call(g);
          if (r && typeof (r as Promise<unknown>).then === 'function') await r;
        } catch (e) {
          if (!(e instanceof QwenVLError)) escaped.push(`${name} with ${gname}: ${(e as Error)?.constructor?.name} ${String((e as Error)?.message).slice(0, 100)}`);
          else if (!OK_CODES.has(e.code)) escaped.push(`${name} with ${gname}: ${e.code} ${e.message.slice(0, 100)}`);
        }
      }
    }
    expect(escaped).toEqual([]);
  }, 600_000);

  it('an error names the argument, what was expected and what was received', async () => {
    const e1 = await model.chat(msgs(), { stop: 5 as never }).catch((e) => e);
    expect(e1).toBeInstanceOf(QwenVLError);
    expect(e1.message).toMatch(/stop.*expected a string or an array of strings, got number 5/);
    const e2 = await model.chat(msgs(), { eosTokenIds: 5 as never }).catch((e) => e);
    expect(e2.message).toMatch(/eosTokenIds.*expected an array of token ids, got number 5/);
    const e3 = await model.chat(msgs(), { stop: {} as never }).catch((e) => e);
    expect(e3.code).toBe('E_INPUT');
    const e4 = await model.chat(msgs(), getterObject as never).catch((e) => e);
    expect(e4.message).toMatch(/maxTokens: reading it threw \(maxTokens boom\)/);
    // The model still answers afterwards.
    expect((await model.chat(msgs(), { maxTokens: 1, doSample: false })).tokens).toHaveLength(1);
  });
});
