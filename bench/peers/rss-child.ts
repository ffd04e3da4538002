/**
 * Child process of the peer benchmark: loads the checkpoint with one `weights` format as a user
 * would (default options: no weight cache, so q8/q4 are converted at load), and prints one JSON
 * line with its resident memory after load and after one 512-token prompt + 64 tokens, next to the
 * bytes the weights take in their format and the KV bytes of that request.
 * usage: node --import tsx bench/peers/rss-child.ts CHECKPOINT bf16|q8|q4 THREADS
 * @module
 */
import { readFileSync } from 'node:fs';
import { loadModel } from '../../lib/index.js';
import { openSafetensorsImpl } from '../../lib/io/safetensors.js';
import { checkpointWork } from '../../lib/bench/work.js';
import { exactPrompt } from './ours.js';
import type { OurWeights } from './artifacts.js';

function memory(): { rss: number; anon: number; file: number } {
  const st = readFileSync('/proc/self/status', 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(st)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') };
}

const [dir, weights, threads] = process.argv.slice(2) as [string, OurWeights, string];
const before = memory();
const model = await loadModel(dir, { weights, threads: Number(threads), engine: { prefixCacheBytes: 0 } });
const afterLoad = memory();

// Weights in their run-time format: every stored tensor, with the language model's matrices (and
// the LM head, a copy when tied to the embedding) in `weights` instead of as stored.
const ckpt = await openSafetensorsImpl(dir);
let stored = 0;
for (const t of ckpt.tensors.values()) stored += t.byteLength;
ckpt.dispose();
const inFormat = (await checkpointWork(dir, model.config, weights)).decodeBytes;
const asStored = (await checkpointWork(dir, model.config, 'bf16')).decodeBytes;
const t = model.config.text;
const headCopy = weights !== 'bf16' && t.tieWordEmbeddings ? t.vocabSize * t.hiddenSize * 2 : 0;
const weightBytes = stored - asStored + inFormat + headCopy;

const { messages } = await exactPrompt(model, 512);
const r = await model.chat(messages, { doSample: false, maxTokens: 64, eosTokenIds: [t.vocabSize] });
const afterRun = memory();
// KV of that request as the engine counts it (f32 K and V per layer and KV head).
const kvBytes = (512 + r.usage.completionTokens) * t.layers * 2 * t.kvHeads * t.headDim * 4;
model.dispose();
console.log('RSS ' + JSON.stringify({ weights, before, afterLoad, afterRun, weightBytes, kvBytes }));
