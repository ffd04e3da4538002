/**
 * config.json and generation_config.json of a checkpoint folder, parsed into one normalised,
 * typed {@link ModelConfig} whatever the layout (the flat one of the official Qwen2-VL /
 * Qwen2.5-VL repos, or the nested `text_config` of newer transformers and Qwen3-VL). Missing
 * fields take the defaults of the family's transformers configuration classes (4.57).
 * @module
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QwenVLError, formatError } from '../errors.js';
import type { ConfigLayout } from '../families/family.js';
import { ConfigReader, isJsonObject } from '../families/fields.js';
import { emptySection } from '../families/common.js';
import { familyForModelTypeImpl, supportedModelTypesImpl, supportedModelTypes, type FamilyId } from '../families/registry.js';
import { publicCall, publicCallAsync } from '../validate.js';

/** Mixture-of-experts settings of a sparse decoder (Qwen3-VL-MoE). */
export interface MoeConfig {
  /** Routed experts per MoE layer. */
  numExperts: number;
  /** Experts each token is routed to (`num_experts_per_tok`). */
  topK: number;
  /** Whether the top-k routing weights are renormalised to sum to 1. */
  normTopkProb: boolean;
  /** Hidden size of one expert's MLP. */
  moeIntermediateSize: number;
  /** Every `decoderSparseStep`-th layer is sparse (unless listed in `mlpOnlyLayers`). */
  decoderSparseStep: number;
  /** Layers that use a dense MLP instead. */
  mlpOnlyLayers: number[];
  /** Per layer: true where the layer's MLP is the sparse MoE block. */
  sparseLayers: boolean[];
}

/** The text decoder, normalised. */
export interface TextConfig {
  hiddenSize: number;
  /** Decoder layers (`num_hidden_layers`). */
  layers: number;
  /** Attention (query) heads. */
  heads: number;
  /** Key/value heads (grouped-query attention when fewer than `heads`). */
  kvHeads: number;
  /** Size of one attention head. */
  headDim: number;
  /** Dense MLP hidden size. */
  intermediateSize: number;
  vocabSize: number;
  /** RMSNorm epsilon. */
  rmsEps: number;
  /** RoPE base. */
  ropeTheta: number;
  /** RoPE variant after normalisation (always "default" today; other kinds are rejected). */
  ropeType: string;
  /** How the head_dim / 2 rotary frequencies are split among temporal, height and width positions. */
  mropeSection: [number, number, number];
  /** Qwen3-VL interleaves the three axes across frequencies (THWTHW...) instead of contiguous chunks. */
  mropeInterleaved: boolean;
  tieWordEmbeddings: boolean;
  /** Bias on the q, k and v projections (Qwen2 decoders: yes). */
  qkvBias: boolean;
  /** Bias on the output projection. */
  oBias: boolean;
  /** Per-head RMSNorm of queries and keys before RoPE (Qwen3 decoders). */
  qkNorm: boolean;
  /** MLP activation (`hidden_act`). */
  hiddenAct: string;
  maxPositionEmbeddings: number;
  /** Sliding-window size when enabled, else null. */
  slidingWindow: number | null;
  /** Per layer: full or sliding-window attention. */
  layerTypes: ('full_attention' | 'sliding_attention')[];
  /** Present for mixture-of-experts decoders. */
  moe?: MoeConfig;
}

/** The vision tower, normalised. */
export interface VisionConfig {
  /** Transformer blocks. */
  depth: number;
  /** Width of the vision transformer (Qwen2-VL's `embed_dim`, later `hidden_size`). */
  hiddenSize: number;
  heads: number;
  /** hiddenSize / heads. */
  headDim: number;
  /** Hidden size of each block's MLP (Qwen2-VL: embed_dim × mlp_ratio). */
  intermediateSize: number;
  /** Qwen2-VL's `mlp_ratio`, null for the others. */
  mlpRatio: number | null;
  hiddenAct: string;
  /** Spatial patch edge in pixels. */
  patchSize: number;
  /** Frames per temporal patch. */
  temporalPatchSize: number;
  /** Patches merged per side into one language token. */
  spatialMergeSize: number;
  inChannels: number;
  /** Width of the merger's output, which must equal the text hidden size. */
  outHiddenSize: number;
  /** Qwen2.5-VL window attention size in pixels, else null. */
  windowSize: number | null;
  /** Qwen2.5-VL blocks that use full attention, else null. */
  fullattBlockIndexes: number[] | null;
  /** Qwen2.5-VL temporal position scale for videos, else null. */
  tokensPerSecond: number | null;
  /** Qwen3-VL learned position embedding table size (a square grid), else null. */
  numPositionEmbeddings: number | null;
  /** Qwen3-VL blocks whose outputs are merged and added to early decoder layers ([] elsewhere). */
  deepstackVisualIndexes: number[];
}

/** Special token ids the model code relies on. */
export interface TokenIds {
  imageTokenId: number;
  videoTokenId: number;
  visionStartTokenId: number;
  visionEndTokenId: number;
  /** `<|vision_pad|>` where the config names it, else null. */
  visionTokenId: number | null;
  bosTokenId: number | null;
  /** End-of-sequence ids from config.json (possibly empty). */
  eosTokenIds: number[];
  padTokenId: number | null;
}

/** Weight quantization declared by config.json (`quantization_config`). */
export interface QuantizationConfig {
  /** `quant_method`, e.g. "awq", "gptq", "fp8". */
  method: string;
  bits: number | null;
  /** Input channels per scale; -1 (GPTQ) for one group over the whole input. */
  groupSize: number | null;
  zeroPoint: boolean | null;
  version: string | null;
  /** Modules left unquantized (e.g. ["visual"]). */
  modulesToNotConvert: string[];
  /** The section as written, for method-specific fields. */
  raw: Record<string, unknown>;
}

/** A checkpoint's architecture, normalised across families and config layouts. */
export interface ModelConfig {
  family: FamilyId;
  /** config.json `model_type`. */
  modelType: string;
  architectures: string[];
  /** Where the text fields were found. */
  layout: ConfigLayout;
  text: TextConfig;
  vision: VisionConfig;
  tokens: TokenIds;
  /** Declared weight dtype (`torch_dtype` / `dtype`), or null. */
  dtype: string | null;
  quantization: QuantizationConfig | null;
  transformersVersion: string | null;
}

/** Sampling defaults of a checkpoint (generation_config.json, with transformers' defaults). */
export interface GenerationDefaults {
  /** Tokens that end generation. */
  eosTokenIds: number[];
  padTokenId: number | null;
  bosTokenId: number | null;
  doSample: boolean;
  temperature: number;
  topP: number;
  topK: number;
  repetitionPenalty: number;
  /** Only when the file sets it (transformers' own default of 20 is not applied). */
  maxNewTokens: number | null;
  /** Only when the file sets it (transformers' own default of 20 is not applied). */
  maxLength: number | null;
  /** Where the values came from. */
  source: 'generation_config.json' | 'defaults';
}

/** The model types {@link parseModelConfig} accepts. */
export { supportedModelTypes };

function optionalString(r: ConfigReader, key: string): string | null {
  return r.has(key) ? r.str(key) : null;
}

function optionalId(r: ConfigReader, key: string): number | null {
  return r.has(key) ? r.nonNegInt(key) : null;
}

function parseQuantization(root: ConfigReader): QuantizationConfig | null {
  const q = root.sub('quantization_config');
  if (q === null) return null;
  const modules = q.raw('modules_to_not_convert');
  if (modules !== undefined && !(Array.isArray(modules) && modules.every((m) => typeof m === 'string'))) {
    throw q.error('modules_to_not_convert', 'expected an array of module names');
  }
  return {
    method: q.str('quant_method'),
    bits: q.has('bits') ? q.posInt('bits') : null,
    // GPTQ writes -1 for one group spanning the whole input.
    groupSize: q.has('group_size') ? (q.raw('group_size') === -1 ? -1 : q.nonNegInt('group_size')) : null,
    zeroPoint: q.has('zero_point') ? q.bool('zero_point') : null,
    version: q.has('version') ? q.str('version') : null,
    modulesToNotConvert: modules === undefined ? [] : [...(modules as string[])],
    raw: { ...q.obj },
  };
}

function parseTokens(root: ConfigReader, text: ConfigReader, vocabSize: number): TokenIds {
  const pick = (key: string) => (root.has(key) ? optionalId(root, key) : optionalId(text, key));
  const tokens: TokenIds = {
    imageTokenId: root.nonNegInt('image_token_id', 151655),
    videoTokenId: root.nonNegInt('video_token_id', 151656),
    visionStartTokenId: root.nonNegInt('vision_start_token_id', 151652),
    visionEndTokenId: root.nonNegInt('vision_end_token_id', 151653),
    visionTokenId: optionalId(root, 'vision_token_id'),
    bosTokenId: pick('bos_token_id'),
    eosTokenIds: root.has('eos_token_id') ? root.idList('eos_token_id') : text.idList('eos_token_id'),
    padTokenId: pick('pad_token_id'),
  };
  const keys: [keyof TokenIds, string][] = [
    ['imageTokenId', 'image_token_id'],
    ['videoTokenId', 'video_token_id'],
    ['visionStartTokenId', 'vision_start_token_id'],
    ['visionEndTokenId', 'vision_end_token_id'],
  ];
  for (const [prop, key] of keys) {
    if ((tokens[prop] as number) >= vocabSize) {
      throw root.error(key, `token id ${tokens[prop] as number} is outside the vocabulary (vocab_size ${vocabSize})`);
    }
  }
  const distinct = new Set([tokens.imageTokenId, tokens.videoTokenId, tokens.visionStartTokenId, tokens.visionEndTokenId]);
  if (distinct.size !== 4) {
    throw root.error('image_token_id', 'image, video, vision_start and vision_end token ids must all differ');
  }
  return tokens;
}

/**
 * Parses the contents of a config.json.
 * @param json the parsed JSON
 * @param file the file name for error messages
 * @throws QwenVLError E_UNSUPPORTED for an unknown model_type or RoPE scaling kind; E_MODEL_FORMAT
 *   naming the file and field for missing, mistyped or inconsistent values.
 */
export function parseModelConfig(json: unknown, file = 'config.json'): ModelConfig {
  return publicCall('parseModelConfig', arguments, () => parseModelConfigImpl(json, file));
}

/** {@link parseModelConfig} without the public guard, for internal callers: what it throws passes through unchanged. */
function parseModelConfigImpl(json: unknown, file = 'config.json'): ModelConfig {
  if (!isJsonObject(json)) throw formatError(file, 'expected a JSON object at the top level');
  const root = new ConfigReader(json, file);
  const modelType = root.str('model_type');
  const family = familyForModelTypeImpl(modelType);
  if (family === undefined) {
    throw new QwenVLError(
      'E_UNSUPPORTED',
      `${file}: model_type "${modelType}" is not supported; supported model types: ${supportedModelTypesImpl().join(', ')}`,
    );
  }
  const { text, layout } = family.parseText(root);
  const visionReader = root.sub('vision_config') ?? emptySection(root, 'vision_config');
  const vision = family.parseVision(visionReader);
  if (vision.outHiddenSize !== text.hiddenSize) {
    const key = family.id === 'qwen2-vl' ? 'hidden_size' : 'out_hidden_size';
    throw visionReader.error(key, `vision merger output ${vision.outHiddenSize} differs from the text hidden_size ${text.hiddenSize}`);
  }
  const textReader = layout === 'nested' ? root.sub('text_config')! : root;
  const archRaw = root.raw('architectures');
  if (archRaw !== undefined && !(Array.isArray(archRaw) && archRaw.every((a) => typeof a === 'string'))) {
    throw root.error('architectures', 'expected an array of class names');
  }
  return {
    family: family.id,
    modelType,
    architectures: archRaw === undefined ? [] : [...(archRaw as string[])],
    layout,
    text,
    vision,
    tokens: parseTokens(root, textReader, text.vocabSize),
    dtype: optionalString(root, 'torch_dtype') ?? optionalString(root, 'dtype') ??
      optionalString(textReader, 'torch_dtype') ?? optionalString(textReader, 'dtype'),
    quantization: parseQuantization(root),
    transformersVersion: optionalString(root, 'transformers_version'),
  };
}

async function readJson(path: string, name: string, required: boolean): Promise<unknown> {
  let body: string;
  try {
    body = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (!required && code === 'ENOENT') return undefined;
    const why = code === 'ENOENT' ? 'not found' : `cannot be read (${code ?? String(e)})`;
    throw new QwenVLError('E_MODEL_FORMAT', `${path}: ${name} ${why}`, { cause: e });
  }
  try {
    return JSON.parse(body) as unknown;
  } catch (e) {
    throw new QwenVLError('E_MODEL_FORMAT', `${path}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
}

/**
 * Reads and parses `<dir>/config.json`.
 * @throws QwenVLError E_MODEL_FORMAT when the file is missing or invalid; see {@link parseModelConfig}.
 */
export function loadModelConfig(dir: string): Promise<ModelConfig> {
  return publicCallAsync('loadModelConfig', arguments, () => loadModelConfigImpl(dir));
}

/** {@link loadModelConfig} without the public guard, for internal callers: what it throws passes through unchanged. */
export async function loadModelConfigImpl(dir: string): Promise<ModelConfig> {
  const path = join(dir, 'config.json');
  return parseModelConfigImpl(await readJson(path, 'config.json', true), path);
}

/**
 * Parses the contents of a generation_config.json. Absent fields take transformers'
 * GenerationConfig defaults; eos / pad / bos fall back to the model config's.
 */
export function parseGenerationConfig(json: unknown, file = 'generation_config.json', model?: ModelConfig): GenerationDefaults {
  return publicCall('parseGenerationConfig', arguments, () => parseGenerationConfigImpl(json, file, model));
}

/** {@link parseGenerationConfig} without the public guard, for internal callers: what it throws passes through unchanged. */
function parseGenerationConfigImpl(json: unknown, file = 'generation_config.json', model?: ModelConfig): GenerationDefaults {
  if (!isJsonObject(json)) throw formatError(file, 'expected a JSON object at the top level');
  const r = new ConfigReader(json, file);
  const eos = r.idList('eos_token_id');
  const topP = r.posNum('top_p', 1.0);
  if (topP > 1) throw r.error('top_p', `expected a number in (0, 1], got ${topP}`);
  return {
    eosTokenIds: eos.length > 0 ? eos : [...(model?.tokens.eosTokenIds ?? [])],
    padTokenId: r.has('pad_token_id') ? r.nonNegInt('pad_token_id') : (model?.tokens.padTokenId ?? null),
    bosTokenId: r.has('bos_token_id') ? r.nonNegInt('bos_token_id') : (model?.tokens.bosTokenId ?? null),
    doSample: r.bool('do_sample', false),
    temperature: r.nonNegNum('temperature', 1.0),
    topP,
    topK: r.nonNegInt('top_k', 50),
    repetitionPenalty: r.posNum('repetition_penalty', 1.0),
    maxNewTokens: r.has('max_new_tokens') ? r.posInt('max_new_tokens') : null,
    maxLength: r.has('max_length') ? r.posInt('max_length') : null,
    source: 'generation_config.json',
  };
}

/**
 * Reads `<dir>/generation_config.json`; when the folder has none, returns transformers' defaults
 * with the model config's special tokens.
 */
export function loadGenerationDefaults(dir: string, model?: ModelConfig): Promise<GenerationDefaults> {
  return publicCallAsync('loadGenerationDefaults', arguments, () => loadGenerationDefaultsImpl(dir, model));
}

/** {@link loadGenerationDefaults} without the public guard, for internal callers: what it throws passes through unchanged. */
export async function loadGenerationDefaultsImpl(dir: string, model?: ModelConfig): Promise<GenerationDefaults> {
  const path = join(dir, 'generation_config.json');
  const json = await readJson(path, 'generation_config.json', false);
  if (json === undefined) return { ...parseGenerationConfigImpl({}, path, model), source: 'defaults' };
  return parseGenerationConfigImpl(json, path, model);
}
