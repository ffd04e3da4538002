/**
 * Load-time consistency checks across a checkpoint's files. Each fault here would otherwise load
 * and then fail (or silently misbehave on) every request; refusing at load names the file and
 * field instead of blaming the request.
 * @internal
 * @module
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { QwenVLError, formatError } from '../errors.js';
import type { ImageProcessorConfig } from '../processor/config.js';
import type { VideoProcessorConfig } from '../processor/video-config.js';
import type { QwenTokenizer } from '../text/tokenizer.js';
import type { ModelConfig } from './config.js';
import { quantSpec } from './quantization.js';

/** The text decoder's MLP is SwiGLU (native/models/text.cpp): gate activation silu only. */
const TEXT_ACTS = ['silu'];
/** What native/models/layers.cpp act_kind maps onto a kernel. */
const VISION_ACTS = ['quick_gelu', 'silu', 'gelu_pytorch_tanh', 'gelu_new', 'gelu'];

/**
 * E_UNSUPPORTED for what config.json declares but qwenvl cannot compute: quantization other than
 * the official AWQ / GPTQ / FP8 layouts (see quantization.ts), and activations the kernels lack.
 */
export function checkSupported(config: ModelConfig, file: string): void {
  quantSpec(config, file);
  const textField = config.layout === 'nested' ? 'text_config.hidden_act' : 'hidden_act';
  if (!TEXT_ACTS.includes(config.text.hiddenAct)) {
    throw new QwenVLError(
      'E_UNSUPPORTED',
      `${file}: ${textField} "${config.text.hiddenAct}" is not supported; the text decoder implements ${TEXT_ACTS.join(', ')}`,
    );
  }
  const gated = config.family === 'qwen2.5-vl';
  const visionActs = gated ? ['silu'] : VISION_ACTS;
  if (!visionActs.includes(config.vision.hiddenAct)) {
    throw new QwenVLError(
      'E_UNSUPPORTED',
      `${file}: vision_config.hidden_act "${config.vision.hiddenAct}" is not supported; the ${gated ? 'gated ' : ''}` +
        `vision MLP implements ${visionActs.join(', ')}`,
    );
  }
}

/**
 * E_MODEL_FORMAT when the image or video processor cuts patches of another size than the vision
 * tower was built for: every request would produce pixel rows of the wrong width.
 */
export async function checkProcessorsMatch(
  dir: string,
  config: ModelConfig,
  image: ImageProcessorConfig,
  video: VideoProcessorConfig,
): Promise<void> {
  const imageFile = join(dir, 'preprocessor_config.json');
  let videoFile = join(dir, 'video_preprocessor_config.json');
  try {
    await access(videoFile);
  } catch {
    videoFile = imageFile;
  }
  const pairs: [keyof ImageProcessorConfig, string, number][] = [
    ['patchSize', 'patch_size', config.vision.patchSize],
    ['mergeSize', 'merge_size', config.vision.spatialMergeSize],
    ['temporalPatchSize', 'temporal_patch_size', config.vision.temporalPatchSize],
  ];
  for (const [file, proc] of [[imageFile, image], [videoFile, video]] as const) {
    for (const [prop, key, want] of pairs) {
      if (proc[prop] !== want) {
        const visionKey = key === 'merge_size' ? 'spatial_merge_size' : key;
        throw formatError(file, `${key} ${String(proc[prop])} disagrees with config.json vision_config.${visionKey} ${want}`);
      }
    }
  }
}

/**
 * E_MODEL_FORMAT unless the config's vision token ids are the tokenizer's vision tokens: the chat
 * template writes `<|image_pad|>` etc. as text, and the model finds image positions by id.
 */
export function checkSpecialTokens(dir: string, config: ModelConfig, tokenizer: QwenTokenizer): void {
  const expected: [number, string, string][] = [
    [config.tokens.imageTokenId, 'image_token_id', '<|image_pad|>'],
    [config.tokens.videoTokenId, 'video_token_id', '<|video_pad|>'],
    [config.tokens.visionStartTokenId, 'vision_start_token_id', '<|vision_start|>'],
    [config.tokens.visionEndTokenId, 'vision_end_token_id', '<|vision_end|>'],
  ];
  for (const [id, key, content] of expected) {
    const actual = tokenizer.idToToken(id);
    if (actual === content) continue;
    const where = tokenizer.tokenToId(content);
    throw formatError(
      join(dir, 'tokenizer.json'),
      `config.json ${key} is ${id}, but the tokenizer's token ${id} is ` +
        `${actual === undefined ? 'undefined' : JSON.stringify(actual)} and ${content} is ` +
        `${where === undefined ? 'missing' : `id ${where}`}`,
    );
  }
}
