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
   */
  checkFinite?: boolean;
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
  const handle = await native.loadModel(
    nativeSpec(config),
    names,
    [...byFile].map(([path, tensors]) => ({ path, tensors })),
    { checkFinite: options.checkFinite ?? true },
  );
  progress('ready', 1, 'model ready');
  return new Model({
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
    ...(options.engine !== undefined ? { engine: options.engine } : {}),
  });
}
