/**
 * The `peers` benchmark: qwenvl side by side with llama.cpp (node-llama-cpp's prebuilt CPU build,
 * and llama-mtmd-cli for the vision tower) on random weights with Qwen2-VL-2B's real shapes, both
 * on the same number of threads, runs of the two interleaved (peer, qwenvl, peer, qwenvl, … with
 * the order flipped every other round) so that load from other processes falls on both. One table:
 * decode and prefill-512 tokens/s, vision-tower seconds at 448×448 and 1288×980 (exact, fast, and
 * fast with the tower's weights in q8), RSS after load,
 * each with its ratio and issue 9's target.
 *
 * The artifacts (GGUFs, the checkpoint, node-llama-cpp, llama.cpp's tools) live outside the
 * repository; bench/peers/prepare.sh makes them (see bench/peers/artifacts.ts for the variables).
 *
 * usage: npm run bench -- peers [--quick] [--profile] [--reps N] [--threads N] [--peers DIR]
 * (--profile adds the op profiler's split of qwenvl's prefill, decode and vision tower, per format and precision)
 * @module
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { peerArtifacts, QUANTS, type OurWeights, type PeerArtifacts, type TheirQuant } from './peers/artifacts.js';
import { llamaText, llamaVision, mtmdArgs, nlcCommand, writeTestImage } from './peers/llama.js';
import { machineFacts, withForeignLoad } from './peers/machine.js';
import {
  disposeOurs, exactPrompt, loadOurs, loadVisionQ8, ourDecode, ourPrefill, ourVision, testPixels, VISION_VARIANTS,
  type OurModels, type VisionModels, type VisionVariant,
} from './peers/ours.js';
import { profileText, profileVision } from '../lib/bench/profile.js';
import { formatShares, opShares } from '../lib/bench/shares.js';
import { foreignSummary, median, rateRatio, renderTable, series, timeRatio, type Row, type Series } from './peers/table.js';

interface Options { quick: boolean; profile: boolean; reps: number; threads: number; peersDir?: string }

const USAGE = 'usage: npm run bench -- peers [--quick] [--profile] [--reps N] [--threads N] [--peers DIR]';

function parseArgs(args: string[]): Options {
  const o: Options = { quick: false, profile: false, reps: 3, threads: 2 };
  let repsGiven = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const num = () => {
      const n = Number(args[++i]);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${a} needs a positive integer\n${USAGE}`);
      return n;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--profile') o.profile = true;
    else if (a === '--reps') [o.reps, repsGiven] = [num(), true];
    else if (a === '--threads') o.threads = num();
    else if (a === '--peers' && i + 1 < args.length) o.peersDir = args[++i];
    else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  if (o.quick && !repsGiven) o.reps = 2;
  return o;
}

const VISION_SIZES = [
  { width: 448, height: 448, maxSeconds: 2.0, minRatio: 2.5 },
  { width: 1288, height: 980, maxSeconds: 20, minRatio: 3.4 },
] as const;

const DECODE_TARGET: Record<TheirQuant, number> = { BF16: 1.3, Q8_0: 1.5, Q4_0: 1.5 };
const PREFILL_TARGET = 1.5;
const RSS_SLACK = 1.1;
const GEN_TOKENS = 64;

/** Every sample, by measurement. */
interface Samples {
  theirDecode: Record<TheirQuant, Series>;
  theirPrefill: Record<TheirQuant, Series>;
  ourDecode: Record<OurWeights, Series>;
  ourPrefill: Record<string, Series>; // `${weights} ${precision}`
  theirVision: Series[];
  ourVision: Record<VisionVariant, Series>[];
  rss: Record<string, RssReport>;
  /** --profile lines. */
  profile: string[];
}

interface RssReport {
  weights: OurWeights;
  afterLoad: { rss: number; anon: number; file: number };
  afterRun: { rss: number; anon: number; file: number };
  weightBytes: number;
  kvBytes: number;
}

const elapsed = (t0: number) => `${((performance.now() - t0) / 60000).toFixed(1)} min`;

/** Alternates the two sides of one round; odd rounds run qwenvl first, so neither always goes first. */
async function interleave(round: number, peer: () => Promise<void>, ours: () => Promise<void>): Promise<void> {
  if (round % 2 === 0) {
    await peer();
    await ours();
  } else {
    await ours();
    await peer();
  }
}

async function push(s: Series, fn: () => Promise<number>): Promise<void> {
  const [v, f] = await withForeignLoad(fn);
  s.values.push(v);
  s.foreign.push(f);
}

/** Decode and prefill of one weights format against its llama.cpp quantization. */
async function textRounds(a: PeerArtifacts, o: Options, q: (typeof QUANTS)[number], m: OurModels, s: Samples, log: (l: string) => void): Promise<void> {
  const { messages, prepared } = await exactPrompt(m.exact, 512);
  // warm-up: worker threads, page faults of the mapped weights, first-call allocations
  await ourDecode(m.fast, messages, 4);
  for (const p of ['exact', 'fast'] as const) await ourPrefill(m[p], prepared);
  if (o.profile) {
    for (const p of ['exact', 'fast'] as const) {
      const prof = await profileText(m[p], prepared, 16);
      s.profile.push(`${q.ours} ${p} prefill 512: ${formatShares(opShares([prof.prefill]))}`);
      if (p === 'exact') s.profile.push(`${q.ours} decode step: ${formatShares(opShares(prof.decode.slice(4)))}`);
    }
  }
  for (let r = 0; r < o.reps; r++) {
    await interleave(
      r,
      async () => {
        const t = await llamaText(a, q.theirs, o.threads);
        s.theirPrefill[q.theirs].values.push(t.ppTokensPerS);
        s.theirPrefill[q.theirs].foreign.push(t.foreignPct[0]);
        s.theirDecode[q.theirs].values.push(t.tgTokensPerS);
        s.theirDecode[q.theirs].foreign.push(t.foreignPct[1]);
      },
      async () => {
        // decode does not depend on the precision mode; the fast model prefills its prompt sooner
        await push(s.ourDecode[q.ours], () => ourDecode(m.fast, messages, GEN_TOKENS));
        for (const p of ['exact', 'fast'] as const) await push((s.ourPrefill[`${q.ours} ${p}`] ??= series()), () => ourPrefill(m[p], prepared));
      },
    );
    log(`  ${q.ours}/${q.theirs} round ${r + 1}/${o.reps}: decode ${median(s.ourDecode[q.ours].values).toFixed(1)} vs ${median(s.theirDecode[q.theirs].values).toFixed(1)} tok/s, prefill exact ${median(s.ourPrefill[`${q.ours} exact`].values).toFixed(0)} fast ${median(s.ourPrefill[`${q.ours} fast`].values).toFixed(0)} vs ${median(s.theirPrefill[q.theirs].values).toFixed(0)} tok/s`);
  }
}

/** The vision tower at each size, qwenvl's variants (exact, fast, fast with q8 weights) against llama-mtmd-cli. */
async function visionRounds(a: PeerArtifacts, o: Options, m: VisionModels, s: Samples, images: string, log: (l: string) => void): Promise<void> {
  const sizes = o.quick ? VISION_SIZES.slice(0, 1) : VISION_SIZES;
  for (const [i, size] of sizes.entries()) {
    const pixels = testPixels(size.width, size.height);
    const file = writeTestImage(images, size.width, size.height, pixels);
    s.theirVision[i] = series();
    s.ourVision[i] = { exact: series(), fast: series(), 'fast, vision q8': series() };
    for (const p of VISION_VARIANTS) if (i === 0) await ourVision(m[p], size.width, size.height, pixels); // warm-up
    if (o.profile) {
      for (const p of VISION_VARIANTS) {
        const prof = await profileVision(m[p], { data: pixels, width: size.width, height: size.height });
        s.profile.push(`vision ${size.width}×${size.height} ${p}: ${formatShares(opShares([prof]))}`);
      }
    }
    for (let r = 0; r < o.reps; r++) {
      await interleave(
        r,
        async () => {
          try {
            const v = await withForeignLoad(() => llamaVision(a, file, o.threads));
            s.theirVision[i].values.push(v[0].seconds);
            s.theirVision[i].foreign.push(v[1]);
          } catch (e) {
            // a peer crash leaves its cell empty (MISS); qwenvl's numbers and the other lines still print
            log(`  llama-mtmd-cli failed: ${(e as Error).message.split('\n')[0]}`);
          }
        },
        async () => {
          for (const p of VISION_VARIANTS) await push(s.ourVision[i][p], () => ourVision(m[p], size.width, size.height, pixels));
        },
      );
      const ours = VISION_VARIANTS.map((p) => `${p} ${median(s.ourVision[i][p].values).toFixed(2)} s`).join(', ');
      log(`  vision ${size.width}x${size.height} round ${r + 1}/${o.reps}: ${ours} vs ${median(s.theirVision[i].values).toFixed(2)} s`);
    }
  }
}

/** RSS after load, in a fresh process per format (loaded as a user would: no weight cache). */
function rssChild(a: PeerArtifacts, weights: OurWeights, threads: number): Promise<RssReport> {
  const script = resolve(fileURLToPath(new URL('.', import.meta.url)), 'peers', 'rss-child.ts');
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, a.checkpoint, weights, String(threads)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', fail);
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RSS '));
      if (code !== 0 || !line) fail(new Error(`rss-child ${weights} exited ${code}: ${out.slice(-1000)}`));
      else ok(JSON.parse(line.slice(4)));
    });
  });
}

function rows(s: Samples, o: Options): Row[] {
  const out: Row[] = [];
  for (const q of QUANTS) {
    const ours = s.ourDecode[q.ours], theirs = s.theirDecode[q.theirs];
    const ratio = rateRatio(ours, theirs);
    out.push({ what: `decode ${q.ours} vs ${q.theirs}`, unit: 'tok/s', ours, theirs, ratio, target: `≥${DECODE_TARGET[q.theirs]}×`, pass: ratio >= DECODE_TARGET[q.theirs] });
  }
  for (const q of QUANTS) out.push({ what: `prefill 512 llama.cpp ${q.theirs}`, unit: 'tok/s', ours: null, theirs: s.theirPrefill[q.theirs], target: '', pass: null });
  const best = QUANTS.map((q) => s.theirPrefill[q.theirs]).reduce((x, y) => (median(y.values) > median(x.values) ? y : x));
  const bestName = QUANTS.find((q) => s.theirPrefill[q.theirs] === best)!.theirs;
  for (const q of QUANTS) {
    for (const p of ['exact', 'fast'] as const) {
      const ours = s.ourPrefill[`${q.ours} ${p}`];
      const ratio = rateRatio(ours, best);
      out.push({ what: `prefill 512 ${q.ours} ${p} vs best (${bestName})`, unit: 'tok/s', ours, theirs: best, ratio, target: `≥${PREFILL_TARGET}×`, pass: ratio >= PREFILL_TARGET });
    }
  }
  for (const [i, size] of VISION_SIZES.entries()) {
    if (!s.theirVision[i]) continue;
    for (const p of VISION_VARIANTS) {
      const ours = s.ourVision[i][p], theirs = s.theirVision[i];
      const ratio = timeRatio(ours, theirs);
      out.push({
        what: `vision ${size.width}×${size.height} ${p}`, unit: 's', ours, theirs, ratio,
        target: `≤${size.maxSeconds} s, ≥${size.minRatio}×`, pass: median(ours.values) <= size.maxSeconds && ratio >= size.minRatio,
      });
    }
  }
  const gib = (b: number) => b / 2 ** 30;
  for (const q of QUANTS) {
    const r = s.rss[q.ours];
    if (!r) continue;
    const budget = r.weightBytes + r.kvBytes;
    const one = (v: number): Series => ({ values: [gib(v)], foreign: [] });
    out.push({
      what: `RSS after load ${q.ours} (anon ${gib(r.afterLoad.anon).toFixed(2)}, file ${gib(r.afterLoad.file).toFixed(2)})`, unit: 'GiB',
      ours: one(r.afterLoad.rss), theirs: null, ratio: budget / r.afterLoad.rss,
      target: `≤ (weights ${gib(r.weightBytes).toFixed(2)} + KV ${(r.kvBytes / 2 ** 20).toFixed(0)} MiB) × ${RSS_SLACK}`, pass: r.afterLoad.rss <= budget * RSS_SLACK,
    });
    out.push({ what: `RSS after 512+${GEN_TOKENS} tokens ${q.ours}`, unit: 'GiB', ours: one(r.afterRun.rss), theirs: null, ratio: budget / r.afterRun.rss, target: 'same budget', pass: r.afterRun.rss <= budget * RSS_SLACK });
  }
  void o;
  return out;
}

/** The suite: `npm run bench -- peers [--quick] [--reps N] [--threads N] [--peers DIR]`. */
export async function runPeers(args: string[]): Promise<void> {
  const o = parseArgs(args);
  const a = peerArtifacts(o.peersDir);
  const t0 = performance.now();
  const log = (l: string) => console.log(`[${elapsed(t0)}] ${l}`);
  console.log('qwenvl vs llama.cpp, Qwen2-VL-2B shapes (28 layers, vision 32 blocks), random weights');
  for (const l of machineFacts()) console.log(l);
  console.log(`threads ${o.threads} on both sides; ${o.reps} interleaved rounds per measure${o.quick ? ' (--quick: no 1288×980 vision, no RSS for bf16/q8)' : ''}`);
  // Expected on a quiet machine, per round: ≈ 1.75 min of text (3 formats, both engines; each
  // node-llama-cpp call loads and runs a warm-up round), 0.3 min at 448², 2.5 min at 1288×980
  // (exact qwenvl and llama.cpp ≈ 1 min each); loads, warm-ups and RSS children ≈ 2 min.
  const minutes = o.reps * (1.75 + 0.3 + (o.quick ? 0 : 2.5)) + (o.quick ? 1 : 2);
  console.log(`expected duration on a quiet 2-core Sapphire Rapids: about ${Math.round(minutes)} min (longer on a busy machine)`);
  console.log('peer commands (one round each):');
  for (const q of QUANTS) {
    const c = nlcCommand(a, q.theirs, o.threads);
    console.log(`  (cd ${c.cwd} && QUIET_MAX_WAIT=0 node ${c.args.join(' ')})`);
  }
  console.log(`  ${a.mtmdCli} ${mtmdArgs(a, '<image.ppm>', o.threads).map((x) => (/\s/.test(x) ? `'${x}'` : x)).join(' ')}`);

  const s: Samples = {
    theirDecode: { BF16: series(), Q8_0: series(), Q4_0: series() },
    theirPrefill: { BF16: series(), Q8_0: series(), Q4_0: series() },
    ourDecode: { bf16: series(), q8: series(), q4: series() },
    ourPrefill: {},
    theirVision: [],
    ourVision: [],
    rss: {},
    profile: [],
  };
  const images = mkdtempSync(join(tmpdir(), 'qwenvl-peers-'));
  try {
    // bf16 last: its models also serve the vision tower (stored bf16 in every format)
    for (const q of [QUANTS[2], QUANTS[1], QUANTS[0]]) {
      log(`loading qwenvl ${q.ours} (exact and fast)`);
      const m = await loadOurs(a, q.ours, o.threads);
      try {
        await textRounds(a, o, q, m, s, log);
        if (q.ours === 'bf16') {
          log('loading qwenvl fast with visionWeights q8');
          const q8 = await loadVisionQ8(a, o.threads);
          try {
            await visionRounds(a, o, { ...m, 'fast, vision q8': q8 }, s, images, log);
          } finally {
            q8.dispose();
          }
        }
      } finally {
        disposeOurs(m);
      }
    }
  } finally {
    rmSync(images, { recursive: true, force: true });
  }
  for (const q of o.quick ? [QUANTS[2]] : QUANTS) {
    log(`RSS: loading ${q.ours} in a fresh process`);
    s.rss[q.ours] = await rssChild(a, q.ours, o.threads);
  }

  console.log('');
  console.log(renderTable(rows(s, o)));
  console.log('');
  console.log('ratio: qwenvl/llama.cpp for tokens/s, llama.cpp/qwenvl for seconds (above 1 = qwenvl ahead); RSS: (weights + KV) / RSS');
  console.log('med: the median sample (of an even count, the upper middle one); compare ratios only when the load line below is low');
  console.log(`load from other processes during the samples: qwenvl ${foreignSummary([...Object.values(s.ourDecode), ...Object.values(s.ourPrefill), ...s.ourVision.flatMap((v) => VISION_VARIANTS.map((p) => v[p]))])}; llama.cpp ${foreignSummary([...Object.values(s.theirDecode), ...Object.values(s.theirPrefill), ...s.theirVision])}`);
  if (s.profile.length > 0) console.log(['', 'qwenvl op profile (one pass each, median of 12 decode steps):', ...s.profile.map((l) => `  ${l}`)].join('\n'));
  console.log(`total ${elapsed(t0)}`);
}
