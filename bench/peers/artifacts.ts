/**
 * Where the peer benchmark's artifacts live: everything big is outside the repository, in one
 * folder that bench/peers/prepare.sh fills (`QWENVL_PEERS_DIR`, default /work/peers). Each path can
 * be overridden by its own variable. A missing artifact stops the suite with the command that makes it.
 * @module
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The llama.cpp GGUF quantizations compared, with the qwenvl `weights` each one faces. */
export const QUANTS = [
  { ours: 'bf16', theirs: 'BF16' },
  { ours: 'q8', theirs: 'Q8_0' },
  { ours: 'q4', theirs: 'Q4_0' },
] as const;

export type OurWeights = (typeof QUANTS)[number]['ours'];
export type TheirQuant = (typeof QUANTS)[number]['theirs'];

export interface PeerArtifacts {
  root: string;
  /** Folder with node-llama-cpp installed and nlc_bench_json.mjs copied in. */
  nlcDir: string;
  /** llama.cpp's llama-mtmd-cli (vision encode timing). */
  mtmdCli: string;
  /** Language-model GGUFs by quantization. */
  gguf: Record<TheirQuant, string>;
  /** The vision tower (mmproj) GGUF, F16. */
  mmproj: string;
  /** The Qwen2-VL-2B-shaped checkpoint folder qwenvl loads. */
  checkpoint: string;
  /** Where qwenvl keeps its converted q8/q4 weights between runs (`loadModel`'s weightCache). */
  weightCache: string;
}

const PREPARE = resolve(dirname(fileURLToPath(import.meta.url)), 'prepare.sh');

/** The artifact paths from the environment; throws, naming what is missing and how to make it. */
export function peerArtifacts(rootArg?: string): PeerArtifacts {
  const env = process.env;
  const root = rootArg ?? env.QWENVL_PEERS_DIR ?? '/work/peers';
  const gg = (q: string) => join(root, 'gguf', `qwen2vl-2b-${q}.gguf`);
  const a: PeerArtifacts = {
    root,
    nlcDir: env.QWENVL_PEERS_NLC ?? join(root, 'nlc'),
    mtmdCli: env.QWENVL_PEERS_MTMD ?? join(root, 'llama.cpp', 'build', 'bin', 'llama-mtmd-cli'),
    gguf: {
      BF16: env.QWENVL_PEERS_GGUF_BF16 ?? gg('BF16'),
      Q8_0: env.QWENVL_PEERS_GGUF_Q8_0 ?? gg('Q8_0'),
      Q4_0: env.QWENVL_PEERS_GGUF_Q4_0 ?? gg('Q4_0'),
    },
    mmproj: env.QWENVL_PEERS_MMPROJ ?? gg('mmproj-F16'),
    checkpoint: env.QWENVL_PEERS_CHECKPOINT ?? join(root, 'qwen2vl-2b-checkpoint'),
    weightCache: env.QWENVL_PEERS_WEIGHT_CACHE ?? join(root, 'weight-cache'),
  };
  const need: [string, string][] = [
    [join(a.nlcDir, 'node_modules', 'node-llama-cpp', 'package.json'), 'node-llama-cpp@3.21.1 (QWENVL_PEERS_NLC)'],
    [join(a.nlcDir, 'nlc_bench_json.mjs'), 'the pp/tg script copied next to node-llama-cpp'],
    [a.mtmdCli, 'llama-mtmd-cli (QWENVL_PEERS_MTMD)'],
    ...QUANTS.map((q): [string, string] => [a.gguf[q.theirs], `${q.theirs} language-model GGUF (QWENVL_PEERS_GGUF_${q.theirs})`]),
    [a.mmproj, 'vision mmproj GGUF (QWENVL_PEERS_MMPROJ)'],
    [join(a.checkpoint, 'model.safetensors'), 'Qwen2-VL-2B-shaped checkpoint (QWENVL_PEERS_CHECKPOINT)'],
    [join(a.checkpoint, 'tokenizer.json'), 'its tokenizer.json'],
  ];
  const missing = need.filter(([p]) => !existsSync(p));
  if (missing.length > 0) {
    throw new Error(
      [
        `peers: missing under ${root} (QWENVL_PEERS_DIR):`,
        ...missing.map(([p, what]) => `  ${p}  — ${what}`),
        `make them (≈25 GB of disk, 20–60 min on 2 cores, mostly the llama.cpp build) with:`,
        `  ${PREPARE} ${root}`,
      ].join('\n'),
    );
  }
  return a;
}
