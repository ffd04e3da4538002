// Every function lib/index.ts exports, enumerated from the module itself (a function added later is covered,
// or this test fails until it is): hostile values in each argument position, the others plausible, fail only
// with a QwenVLError. The building blocks carry their guard in their own module (publicCall), and the guard's
// fingerprint is checked directly, so a building block exported without it fails here even when its own
// checks happen to throw a QwenVLError.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as q from '../lib/index.js';
import { QwenVLError, type Model, type RgbImage } from '../lib/index.js';
import { FakeHub, fakeCommit } from './helpers/fake-hub.js';
import { checkpointDir, fixtureDir } from './helpers/fixtures.js';

const CKPT = checkpointDir('qwen2-vl');
const IMG = join(fixtureDir('qwen2-vl'), 'inputs/gradient_224x224.png');

/** The 37 building blocks lib/index.ts has exported since they were wrapped there; each must stay exported. */
const BUILDING_BLOCKS = [
  'info', 'setThreads', 'castTensor', 'openSafetensors', 'readSafetensorsHeader', 'loadModelConfig', 'parseModelConfig',
  'loadGenerationDefaults', 'parseGenerationConfig', 'familyForModelType', 'getFamily', 'getRopeIndex', 'decodePosition',
  'ropeIndexOptions', 'parseImageProcessorConfig', 'loadImageProcessorConfig', 'smartResize', 'decodeImage', 'processImages',
  'patchifyFrames', 'resizeRgb', 'processVideo', 'loadVideoProcessorConfig', 'parseVideoProcessorConfig', 'smartNframes',
  'applyChatTemplate', 'findChatTemplate', 'expandVisionPlaceholders', 'qwen3VideoTimestamps', 'formatFixed1', 'padBatch',
  'batchRow', 'encodeBatch', 'runConformance', 'listConformanceCases', 'defaultBudget', 'supportedModelTypes',
];

/** Exported functions that check their arguments themselves rather than through publicCall. */
const GUARDED_OWN_WAY = new Set(['loadModel']);

const isClass = (f: unknown) => /^class[\s{]/.test(Function.prototype.toString.call(f));
const FUNCTIONS = Object.entries(q).filter(([, v]) => typeof v === 'function' && !isClass(v)) as [string, (...a: unknown[]) => unknown][];

const revoked = () => {
  const r = Proxy.revocable({}, {});
  r.revoke();
  return r.proxy;
};
const throwingGetter = () => Object.defineProperty({}, 'x', { enumerable: true, get: () => { throw new Error('getter boom'); } });
const throwingEverything = () => new Proxy({}, Object.fromEntries(
  ['get', 'has', 'ownKeys', 'getPrototypeOf', 'getOwnPropertyDescriptor', 'set', 'defineProperty'].map((t) => [t, () => {
    throw new Error(`proxy ${t} boom`);
  }]),
));
const sparseHuge = () => {
  const a: unknown[] = [];
  a.length = 2 ** 32 - 1;
  return a;
};
const HOSTILE: [string, () => unknown][] = [
  ['a revoked proxy', revoked], ['an object whose getter throws', throwingGetter],
  ['a proxy that throws on everything', throwingEverything], ['a symbol', () => Symbol('s')],
  ['a sparse array of length 2^32-1', sparseHuge],
];

let model: Model;
let rgb: RgbImage;
let noCases: string; // a fixture folder without cases: runConformance fails before loading anything
let configJson: Record<string, unknown>;
let hub: FakeHub; // pullModel's sample repository, on a loopback fake of the Hub
beforeAll(async () => {
  hub = await new FakeHub().start();
  hub.repos.set('org/tiny', { commit: fakeCommit('public-functions'), files: new Map(readdirSync(CKPT).map((f) => [f, readFileSync(join(CKPT, f))])) });
  model = await q.loadModel(CKPT, { contextLength: 48 });
  configJson = JSON.parse(await readFile(join(CKPT, 'config.json'), 'utf8')) as Record<string, unknown>;
  rgb = await q.decodeImage(IMG);
  noCases = await mkdtemp(join(tmpdir(), 'qwenvl-public-'));
  await mkdir(join(noCases, 'cases'));
});
afterAll(async () => {
  model?.dispose();
  await hub?.stop();
  if (noCases) await rm(noCases, { recursive: true, force: true });
});

/** Plausible arguments of each exported function: a hostile value in one position meets these in the others. */
const SAMPLES: Record<string, () => unknown[]> = {
  info: () => [],
  setThreads: () => [q.info().threads],
  castTensor: () => [new q.Tensor('f32', [2], new Float32Array([1, 2])), 'f16'],
  openSafetensors: () => [CKPT],
  readSafetensorsHeader: () => [join(CKPT, 'model.safetensors')],
  loadModelConfig: () => [CKPT],
  parseModelConfig: () => [{ ...configJson }, 'config.json'],
  loadGenerationDefaults: () => [CKPT, model.config],
  parseGenerationConfig: () => [{}, 'generation_config.json', model.config],
  familyForModelType: () => ['qwen2_vl'],
  getFamily: () => ['qwen2-vl'],
  getRopeIndex: () => [[[1, 2]], null, null, null, q.ropeIndexOptions(model.config)],
  decodePosition: () => [3, 1],
  ropeIndexOptions: () => [model.config, null],
  parseImageProcessorConfig: () => [{ patch_size: 14 }, 'preprocessor_config.json'],
  loadImageProcessorConfig: () => [CKPT],
  smartResize: () => [100, 120, { factor: 28, minPixels: 3136, maxPixels: 1_003_520 }],
  decodeImage: () => [IMG, {}],
  processImages: () => [[IMG], model.processor.config, {}],
  patchifyFrames: () => [[rgb.data], rgb.width, rgb.height, model.processor.config, 'slow'],
  resizeRgb: () => [rgb, 56, 56, 'slow'],
  processVideo: () => [{ frames: [IMG, IMG] }, model.processor.videoConfig, {}],
  loadVideoProcessorConfig: () => [CKPT, 'qwen2'],
  parseVideoProcessorConfig: () => [{}, 'video_preprocessor_config.json', 'qwen2'],
  smartNframes: () => [{}, 10, 2],
  applyChatTemplate: () => ['{{ messages[0].content }}', [{ role: 'user', content: 'hi' }], {}],
  findChatTemplate: () => [CKPT],
  expandVisionPlaceholders: () => [['x'], {}],
  qwen3VideoTimestamps: () => [[0, 1], 24, 2],
  formatFixed1: () => [0.25],
  padBatch: () => [[[1, 2]], { padId: 0 }],
  batchRow: () => [q.padBatch([[1, 2]], { padId: 0 }), 0],
  encodeBatch: () => [model.tokenizer, ['hi'], {}],
  runConformance: () => [noCases, {}],
  listConformanceCases: () => [fixtureDir('qwen2-vl')],
  defaultBudget: () => [],
  supportedModelTypes: () => [],
  parseGrounding: () => ['[{"bbox_2d": [1, 2, 30, 40]}]', { family: 'qwen2_5_vl', images: [{ originalWidth: 224, originalHeight: 224, resizedWidth: 224, resizedHeight: 224 }] }],
  drawGrounding: () => [IMG, [{ box: [1, 2, 30, 40], image: 0, label: 'a' }], {}],
  pullModel: () => ['org/tiny', { endpoint: hub.endpoint, cacheDir: join(noCases, 'hub'), token: false }],
  parseToolCalls: () => ['<tool_call>{"name": "f", "arguments": {}}</tool_call>', {}],
  splitReasoning: () => ['<think>\nhm\n</think>\n\nyes', { open: false }],
  loadModel: () => [CKPT, { contextLength: 48, checkFinite: false }],
};

/** What a call does: returns (a loaded model is disposed at once) or throws / rejects. */
async function outcome(f: (...a: unknown[]) => unknown, args: unknown[]): Promise<{ ok: true } | { ok: false; error: unknown }> {
  try {
    const r = await f(...args);
    if (r instanceof Object && typeof (r as { dispose?: unknown }).dispose === 'function') (r as { dispose(): void }).dispose();
    return { ok: true };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * Each argument position of `name` with `value` there, and one past the last (publicCall checks extra arguments
 * too; loadModel ignores them, and loading a model per hostile value to show that is slow).
 */
function* placements(name: string, value: () => unknown): Generator<[number, unknown[]]> {
  const sample = SAMPLES[name]();
  const last = GUARDED_OWN_WAY.has(name) ? sample.length - 1 : sample.length;
  for (let pos = 0; pos <= last; pos++) {
    const args = sample.slice();
    args[pos] = value();
    yield [pos, args];
  }
}

describe('every function exported from lib/index.ts', () => {
  it('includes the 37 building blocks, and each has sample arguments here', () => {
    const names = FUNCTIONS.map(([n]) => n);
    expect(names).toEqual(expect.arrayContaining(BUILDING_BLOCKS));
    expect(names.filter((n) => !(n in SAMPLES))).toEqual([]);
    expect(names.length).toBeGreaterThanOrEqual(BUILDING_BLOCKS.length + GUARDED_OWN_WAY.size);
  });

  it('accepts its sample arguments (so a hostile value elsewhere is what a call fails on)', async () => {
    const failed: string[] = [];
    for (const [name, f] of FUNCTIONS) {
      const r = await outcome(f, SAMPLES[name]());
      // The empty fixture folder is runConformance's refusal that comes after its options are read.
      if (!r.ok && !(name === 'runConformance' && /no cases/.test(String((r.error as Error)?.message)))) {
        failed.push(`${name}: ${String((r.error as Error)?.message ?? r.error)}`);
      }
    }
    expect(failed).toEqual([]);
  }, 120_000);

  it('fails only with QwenVLError, whatever hostile value sits in whichever argument', async () => {
    const escaped: string[] = [];
    for (const [name, f] of FUNCTIONS) {
      for (const [what, value] of HOSTILE) {
        for (const [pos, args] of placements(name, value)) {
          const r = await outcome(f, args);
          if (!r.ok && !(r.error instanceof QwenVLError)) {
            escaped.push(`${name} with ${what} as argument ${pos + 1}: ${(r.error as Error)?.constructor?.name} ${String((r.error as Error)?.message)}`);
          }
        }
      }
    }
    expect(escaped).toEqual([]);
  }, 300_000);

  it('checks every argument before running, naming the function (the public guard is in place)', async () => {
    const unguarded: string[] = [];
    for (const [name, f] of FUNCTIONS) {
      if (GUARDED_OWN_WAY.has(name)) continue;
      for (const [pos, args] of placements(name, revoked)) {
        const r = await outcome(f, args);
        const e = r.ok ? undefined : r.error;
        if (!(e instanceof QwenVLError && e.code === 'E_INPUT' && e.message.startsWith(`${name}: `) && /revoked/.test(e.message))) {
          unguarded.push(`${name} with a revoked proxy as argument ${pos + 1}: ${r.ok ? 'returned' : String((e as Error)?.message)}`);
        }
      }
      for (const [pos, args] of placements(name, sparseHuge)) {
        const r = await outcome(f, args);
        const e = r.ok ? undefined : r.error;
        if (!(e instanceof QwenVLError && e.message.startsWith(`${name}: argument ${pos + 1}: 4294967295 elements`))) {
          unguarded.push(`${name} with a huge sparse array as argument ${pos + 1}: ${r.ok ? 'returned' : String((e as Error)?.message)}`);
        }
      }
    }
    expect(unguarded).toEqual([]);
  }, 120_000);

  it('rejects (never throws synchronously) where it returns a promise', async () => {
    const sync: string[] = [];
    for (const [name, f] of FUNCTIONS) {
      if (GUARDED_OWN_WAY.has(name)) continue;
      const args = SAMPLES[name]();
      let r: unknown;
      try {
        r = f(...args); // the sample call: tells whether f returns a promise
      } catch {
        continue;
      }
      if (!(r instanceof Promise)) continue;
      await outcome(() => r, []);
      try {
        const p = f(...args, revoked()) as Promise<unknown>;
        await p.then(() => undefined, () => undefined);
      } catch (e) {
        sync.push(`${name}: threw ${String((e as Error)?.message)}`);
      }
    }
    expect(sync).toEqual([]);
  }, 120_000);
});
