/**
 * loadModel(): a Hugging Face checkpoint folder -> a {@link Model}.
 * @module
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { QwenVLError, inputError } from '../errors.js';
import { setThreadsImpl } from '../info.js';
import { openSafetensorsImpl } from '../io/safetensors.js';
import { DTYPE_CODES } from '../tensor.js';
import { native } from '../native/binding.js';
import { loadImageProcessorConfigImpl } from '../processor/config.js';
import { loadVideoProcessorConfigImpl } from '../processor/video-config.js';
import { resolveMediaPolicy, type MediaPolicy } from '../processor/media-policy.js';
import { ropeIndexOptionsImpl } from '../families/rope-index.js';
import { ChatTemplate } from '../text/chat-template.js';
import { QwenTokenizer } from '../text/tokenizer.js';
import { loadGenerationDefaultsImpl, loadModelConfigImpl } from './config.js';
import { defaultBudgetImpl } from './budget.js';
import { checkProcessorsMatch, checkSpecialTokens, checkSupported } from './checkpoint-checks.js';
import { checkLoadOptions } from './load-options.js';
import { guard } from '../validate.js';
import { Model } from './model.js';
import type { GenerateOptions } from '../generate/options.js';
import { nativeSpec, weightNames } from './native-spec.js';
import { quantSpec } from './quantization.js';
import { weightCachePlan } from './weight-cache.js';
import { isRepoId } from '../hub/cache.js';
import { pullModel } from '../hub/pull.js';
import type { HubOptions } from '../hub/settings.js';
import type { EngineOptions } from '../engine/engine.js';

/** A step of {@link loadModel}, reported through `onProgress`. */
export interface LoadProgress {
  stage: 'config' | 'tokenizer' | 'weights' | 'ready';
  /** Overall progress in [0, 1]. */
  fraction: number;
  message: string;
}

/** Options of {@link loadModel}. */
export interface LoadOptions {
  /** Compute threads (default: physical cores). Applies process-wide. */
  threads?: number;
  /** 'cpu' (default) or 'auto'; the CUDA backend does not run models yet, so both use the CPU. */
  device?: 'cpu' | 'auto';
  /** Called as loading advances. */
  onProgress?: (p: LoadProgress) => void;
  /** Most tokens (prompt + answer) per sequence. Default: the config's max_position_embeddings, at most 32768. */
  contextLength?: number;
  /** Largest accepted input image (width × height) before decoding; see the processor's default. */
  maxInputPixels?: number;
  /** Most vision tokens per request (default 16384); larger requests get E_INPUT. */
  maxVisualTokens?: number;
  /** Most estimated bytes per request (default: a quarter of system memory, at most 16 GiB). */
  maxMemoryBytes?: number;
  /**
   * Scan every weight for NaN and infinity at load (default true), so a corrupt checkpoint fails
   * there (E_MODEL_FORMAT naming the tensor) rather than answering garbage. The scan reads all
   * weights once on the compute threads; `false` skips it for a trusted checkpoint on slow storage.
   * A `weightCache` file written by a load that scanned vouches for the tensors it was converted
   * from (its entries are checksummed), so a hit does not read those from the checkpoint again; a
   * file written without the scan vouches once a scanning load has hit it (and scanned them all).
   */
  checkFinite?: boolean;
  /**
   * Arithmetic of the large matrix products (prompt prefill, the vision tower): `'exact'` (default)
   * keeps f32 activations, the path the conformance tests hold to the reference; `'fast'` rounds
   * activations and weights to bf16 and accumulates in f32 on Intel AMX tiles or AVX512-BF16 where
   * the CPU has them (otherwise it runs exact), several times faster on AMX, where the attention
   * of the vision tower and of prefill runs on bf16 tiles too; and makes `'bf16'` the KV cache's
   * default storage (`engine.kvCache`: half the memory, and decode's attention reads half the
   * bytes). Token-by-token decode's matrix products and attention are unaffected. Its measured
   * error budget is in the README, "Precision".
   */
  precision?: 'exact' | 'fast';
  /**
   * Which image and video sources requests may use and how large and many they may be (default:
   * local files allowed, see `DEFAULT_MEDIA_POLICY`). A request's own `media` option can
   * only narrow it. A server should set this; see README, "Untrusted input / servers".
   */
  media?: MediaPolicy;
  /**
   * Default of {@link GenerateOptions.specialTokensInUserText} for every request: `true` (transformers'
   * behaviour) lets special-token strings typed in user and tool text act as control tokens; a server
   * passing on untrusted text should set `false`.
   */
  specialTokensInUserText?: boolean;
  /**
   * How the language model's linear weights (attention, MLP, LM head; tied or not) are kept:
   * - `'bf16'` (default): as stored in the checkpoint (bf16, f16 or f32): the exact path.
   * - `'q8'`: quantized at load to int8, one f16 scale per 64 weights (8.25 bits per weight; per 32, 8.5
   *   bits, where a weight's input size is no multiple of 64): about half the bytes a decode step reads,
   *   with a small measured error (README, "Quantized weights").
   * - `'q4'`: 4-bit with an f16 scale and a 4-bit zero point per 64 weights (4.3125 bits per weight; per 32
   *   where a weight's input size is no multiple of 64), both fitted to each group's weights: fewer bytes
   *   still, a larger error (about llama.cpp's Q4_0's).
   * - `'auto'`: `'q8'` for a checkpoint stored in 16/32-bit floats (decode is bound by the bytes
   *   of weights it reads, and q8 keeps the output close to the exact path); as stored for a
   *   checkpoint that is quantized already.
   * The conversion runs once at load on the compute threads, weight by weight, reported through
   * `onProgress`. Mixture-of-experts decoders quantize their routed experts too (the bulk of their
   * weights; an expert projection whose input size is no multiple of 32 stays as stored); the MoE
   * router and the embedding lookup stay as stored. Quantized weights use int8 activations inside
   * each matrix product (not the exact path).
   */
  weights?: 'bf16' | 'q8' | 'q4' | 'auto';
  /**
   * The same choice for the vision tower's linear weights (default `'bf16'`, as stored; `'auto'`
   * keeps them as stored too). The tower's large matrix products are compute-bound: with AMX 8- and
   * 4-bit weights save little, while on CPUs with AVX512-VNNI but no AMX (AMD Zen 4/5) their int8
   * GEMM outruns the bf16 one under `precision: 'fast'` (README, "Precision"). Weights whose input
   * size is no multiple of 32 stay as stored.
   */
  visionWeights?: 'bf16' | 'q8' | 'q4' | 'auto';
  /**
   * Keep the weights converted by `weights`/`visionWeights` in a cache file, so the next load with
   * the same checkpoint files and options reads them instead of converting (default false). `true`:
   * next to the checkpoint if that folder is writable (not for a Hub model id: its folder belongs to
   * the Hub cache), else in `$XDG_CACHE_HOME/qwenvl/weights` (`~/.cache/qwenvl/weights`); a string:
   * that folder. The file is written once, atomically; one that is stale (a checkpoint file's size,
   * modification or change time differs), truncated or corrupt is detected and rewritten in place.
   * Files of other checkpoints, options or library cache versions stay until deleted.
   */
  weightCache?: boolean | string;
  /**
   * Where the language model's linear weights live while the model runs (decode reads every one
   * of them per token, so this sets decode's speed):
   * - `'auto'` (default): the fastest of the three as measured on this machine by the placement
   *   probe (a fraction of a second, on this checkpoint's own mapped pages; see {@link Model.placement}). Weights
   *   are copied out of the mapped file only when owned memory reads over 10% faster, and owned
   *   weights go in huge pages unless 4 KiB pages read over 10% faster (a steady read misses the
   *   stalls 4 KiB pages bring when the kernel scans page tables during decode).
   * - `'mmap'`: the checkpoint file's pages, mapped as stored (no copy; the page cache holds them).
   * - `'owned'`: copied into memory the process owns, in 4 KiB pages.
   * - `'huge'`: the same in transparent huge pages (4 KiB pages where THP is off).
   * Copies are made weight by weight, each releasing its mapped pages, so the process never holds
   * two copies of the model. Weights quantized at load are owned whatever is asked: in the pages
   * `'owned'`/`'huge'` name, else the faster measured. The vision tower's weights stay as loaded.
   */
  placement?: 'auto' | 'mmap' | 'owned' | 'huge';
  /**
   * For a Hub model id (`loadModel('Qwen/Qwen2.5-VL-3B-Instruct')`): revision, cache folder,
   * endpoint, token, offline mode and download progress (see {@link pullModel}). A revision whose
   * files are all in the cache loads without asking the Hub unless `preferCache` is `false`.
   */
  hub?: HubOptions;
  /**
   * How concurrent `chat()`/`stream()` calls share the model (one running batch, continuous
   * batching): running cap, queue length, token budget per step, KV memory and cache sizes. See
   * {@link EngineOptions} and {@link Model.stats}.
   */
  engine?: EngineOptions;
}

/** A part's `weights` option as the native loader takes it. */
function resolveWeights(choice: LoadOptions['weights'], quantizedCheckpoint: boolean, auto: 'q8' | 'stored'): 'stored' | 'q8' | 'q4' {
  switch (choice) {
    case undefined:
    case 'bf16':
      return 'stored';
    case 'q8':
    case 'q4':
      return choice;
    case 'auto':
      return quantizedCheckpoint ? 'stored' : auto;
  }
}

/**
 * Loads a checkpoint folder, or a Hugging Face Hub model id (`org/name`, used when no such folder
 * exists; fetched into the Hub cache with {@link pullModel} unless the cache has it) (config.json, *.safetensors, tokenizer.json, preprocessor_config.json,
 * chat template). Weights are memory-mapped and used as stored, not copied (except tensors that a
 * header without padding leaves misaligned: those get one aligned copy).
 *
 * @throws QwenVLError E_INPUT for a bad option; for a Hub id, what {@link pullModel} throws; E_UNSUPPORTED for a model type, quantization or
 *   activation qwenvl cannot run; E_MODEL_FORMAT naming the file (and field or tensor) for missing,
 *   malformed or mutually inconsistent files, and for weights holding NaN or infinity.
 */
export async function loadModel(dirOrRepoId: string, loadOptions?: LoadOptions): Promise<Model> {
  const options = checkLoadOptions(loadOptions);
  if (typeof dirOrRepoId !== 'string' || dirOrRepoId.length === 0) throw inputError('loadModel: dir must be a path or a Hub model id');
  let dir = dirOrRepoId;
  try {
    if (!(await stat(dir)).isDirectory()) throw inputError(`loadModel: ${dir} is not a folder`);
  } catch (e) {
    if (e instanceof QwenVLError) throw e;
    if (!isRepoId(dir)) throw inputError(`loadModel: ${dir} does not exist (and is not a Hub model id 'org/name')`);
    dir = (await pullModel(dir, { preferCache: true, ...options.hub })).dir;
  }
  const budget = defaultBudgetImpl();
  for (const key of ['maxVisualTokens', 'maxMemoryBytes'] as const) {
    if (options[key] !== undefined) budget[key] = options[key];
  }
  const media = await resolveMediaPolicy(options.media, undefined, 'loadModel: media');
  const progress = (stage: LoadProgress['stage'], fraction: number, message: string) =>
    guard('loadModel: options.onProgress', () => options.onProgress?.({ stage, fraction, message }));
  if (options.threads !== undefined) setThreadsImpl(options.threads);

  progress('config', 0, 'reading config.json');
  const config = await loadModelConfigImpl(dir);
  checkSupported(config, join(dir, 'config.json'));
  const generationDefaults = await loadGenerationDefaultsImpl(dir, config);
  const contextLength = options.contextLength ?? Math.min(config.text.maxPositionEmbeddings, 32768);
  const imageConfig = await loadImageProcessorConfigImpl(dir);
  const videoConfig = await loadVideoProcessorConfigImpl(dir, ropeIndexOptionsImpl(config).kind === 'qwen3_vl' ? 'qwen3' : 'qwen2');
  progress('tokenizer', 0.1, 'loading tokenizer and chat template');
  const tokenizer = await QwenTokenizer.load(dir);
  await checkProcessorsMatch(dir, config, imageConfig, videoConfig);
  checkSpecialTokens(dir, config, tokenizer);
  const template = await ChatTemplate.fromDirectory(dir, tokenizer.specialTokensMap);

  progress('weights', 0.3, 'validating safetensors headers');
  const ckpt = await openSafetensorsImpl(dir);
  const names = weightNames(ckpt.tensors.keys(), ckpt.path, config.text.tieWordEmbeddings);
  const byFile = new Map<string, { name: string; dtype: number; shape: number[]; byteOffset: number; byteLength: number }[]>();
  for (const t of ckpt.tensors.values()) {
    const list = byFile.get(t.file) ?? [];
    list.push({ name: t.name, dtype: DTYPE_CODES[t.dtype], shape: [...t.shape], byteOffset: t.byteOffset, byteLength: t.byteLength });
    byFile.set(t.file, list);
  }
  ckpt.dispose();
  progress('weights', 0.5, `mapping ${byFile.size} weight file(s)`);
  const quantized = config.quantization !== null;
  const text = resolveWeights(options.weights, quantized, 'q8');
  const vision = resolveWeights(options.visionWeights, quantized, 'stored');
  // Progress of the conversion: stored bytes converted against the 2-D tensors of the parts
  // being converted and the decoder's 3-D fused MoE experts (an estimate: a few stay as stored).
  let total = 0;
  for (const list of byFile.values()) {
    for (const t of list) {
      const isVision = t.name.startsWith(names.visionPrefix);
      const converted = t.shape.length === 2 || (t.shape.length === 3 && !isVision);
      if (converted && (isVision ? vision !== 'stored' : text !== 'stored')) total += t.byteLength;
    }
  }
  const converting = text !== 'stored' || vision !== 'stored';
  const cache =
    converting && options.weightCache !== undefined && options.weightCache !== false
      ? await weightCachePlan(options.weightCache, dir, [...byFile.keys()], text, vision, dir !== dirOrRepoId)
      : undefined;
  let loading = true;
  let progressError: unknown;
  const onConverted = (bytes: number) => {
    if (!loading || progressError !== undefined) return;
    try {
      const f = total > 0 ? Math.min(1, bytes / total) : 1;
      progress('weights', 0.5 + 0.45 * f, `quantizing weights: ${(bytes / 2 ** 20).toFixed(0)} of ${(total / 2 ** 20).toFixed(0)} MiB`);
    } catch (e) {
      progressError = e;
    }
  };
  let handle;
  try {
    handle = await native.loadModel(
      nativeSpec(config, quantSpec(config, join(dir, 'config.json'))),
      names,
      [...byFile].map(([path, tensors]) => ({ path, tensors })),
      {
        checkFinite: options.checkFinite ?? true,
        precision: options.precision ?? 'exact',
        weights: text,
        visionWeights: vision,
        placement: options.placement ?? 'auto',
        ...(text !== 'stored' || vision !== 'stored' ? { onConverted } : {}),
        ...(cache ? { cache } : {}),
      },
    );
  } finally {
    loading = false;
  }
  if (progressError !== undefined) {
    native.disposeHandle(handle);
    throw progressError;
  }
  progress('ready', 1, 'model ready');
  const { placement: used, probe } = native.modelWeightFormat(handle);
  // 'fast' stores the KV cache in bf16 unless the engine options say otherwise (the engine's own default is f32).
  const engine = options.precision === 'fast' ? { ...options.engine, kvCache: options.engine?.kvCache ?? 'bf16' } : options.engine;
  return new Model({
    placement: { requested: options.placement ?? 'auto', used, probe },
    dir,
    config,
    generationDefaults,
    tokenizer,
    template,
    imageConfig,
    videoConfig,
    handle,
    contextLength,
    budget,
    media,
    ...(options.maxInputPixels !== undefined ? { maxInputPixels: options.maxInputPixels } : {}),
    ...(options.specialTokensInUserText !== undefined ? { specialTokensInUserText: options.specialTokensInUserText } : {}),
    ...(engine !== undefined ? { engine } : {}),
  });
}
