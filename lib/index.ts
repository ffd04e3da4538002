/**
 * qwenvl: run the Qwen vision-language model family locally from Node.js.
 * @module
 */
export { QwenVLError, type ErrorCode } from './errors.js';
import { info as raw_info, setThreads as raw_setThreads } from './info.js';
export {
  type Info,
  type OpFamilyInfo,
  type CudaInfo,
} from './info.js';
import { castTensor as raw_castTensor } from './tensor.js';
export {
  Tensor,
  type DType,
  type TensorData,
} from './tensor.js';
import { openSafetensors as raw_openSafetensors, readSafetensorsHeader as raw_readSafetensorsHeader } from './io/safetensors.js';
export {
  SafetensorsCheckpoint,
  type SafetensorsHeader,
  type SafetensorsTensorInfo,
} from './io/safetensors.js';
import { loadModelConfig as raw_loadModelConfig, parseModelConfig as raw_parseModelConfig, loadGenerationDefaults as raw_loadGenerationDefaults, parseGenerationConfig as raw_parseGenerationConfig, supportedModelTypes as raw_supportedModelTypes } from './model/config.js';
export {
  type ModelConfig,
  type TextConfig,
  type VisionConfig,
  type MoeConfig,
  type TokenIds,
  type QuantizationConfig,
  type GenerationDefaults,
} from './model/config.js';
import { familyForModelType as raw_familyForModelType, getFamily as raw_getFamily } from './families/registry.js';
export {
  FAMILIES,
  type FamilyId,
} from './families/registry.js';
export type { FamilyDescriptor, ConfigLayout } from './families/family.js';
import { getRopeIndex as raw_getRopeIndex, decodePosition as raw_decodePosition, ropeIndexOptions as raw_ropeIndexOptions } from './families/rope-index.js';
export {
  type RopeIndex,
  type RopeIndexOptions,
  type RopeIndexKind,
  type GridThw,
} from './families/rope-index.js';
import { parseImageProcessorConfig as raw_parseImageProcessorConfig, loadImageProcessorConfig as raw_loadImageProcessorConfig, smartResize as raw_smartResize, decodeImage as raw_decodeImage, processImages as raw_processImages, patchifyFrames as raw_patchifyFrames, resizeRgb as raw_resizeRgb } from './processor/index.js';
export {
  DEFAULT_MAX_INPUT_PIXELS,
  type ImageProcessorConfig,
  type ProcessorFlavor,
  type SmartResizeOptions,
  type ImageInput,
  type ImageItem,
  type ImageSizeOptions,
  type RawImage,
  type RgbImage,
  type DecodeOptions,
  type ProcessImagesOptions,
  type ProcessedImages,
} from './processor/index.js';
import {
  processVideo as raw_processVideo,
  loadVideoProcessorConfig as raw_loadVideoProcessorConfig,
  parseVideoProcessorConfig as raw_parseVideoProcessorConfig,
  smartNframes as raw_smartNframes,
} from './processor/index.js';
export {
  DEFAULT_MAX_VIDEO_FRAMES,
  type VideoInput,
  type VideoFrames,
  type VideoPipeline,
  type ProcessVideoOptions,
  type ProcessedVideo,
  type VideoProcessorConfig,
  type VideoProcessorKind,
  type FrameCountOptions,
  type FramePixelOptions,
} from './processor/index.js';
export {
  QwenTokenizer,
  type AddedToken,
  type QwenSpecialIds,
  type StreamDecoder,
  type TokenEncodeOptions,
  type TokenDecodeOptions,
} from './text/tokenizer.js';
import { applyChatTemplate as raw_applyChatTemplate, findChatTemplate as raw_findChatTemplate } from './text/chat-template.js';
export {
  ChatTemplate,
  type ChatMessage,
  type ContentPart,
  type TextPart,
  type ImagePart,
  type ImageUrlPart,
  type VideoPart,
  type ChatTemplateOptions,
  type ChatTemplateSource,
} from './text/chat-template.js';
import { expandVisionPlaceholders as raw_expandVisionPlaceholders, qwen3VideoTimestamps as raw_qwen3VideoTimestamps, formatFixed1 as raw_formatFixed1 } from './text/expand.js';
export {
  type ExpandOptions,
  type PatchGrid,
  type VideoExpansionStyle,
} from './text/expand.js';
import { padBatch as raw_padBatch, batchRow as raw_batchRow, encodeBatch as raw_encodeBatch } from './text/batch.js';
export {
  type PaddedBatch,
  type PadOptions,
} from './text/batch.js';
export { loadModel, type LoadOptions, type LoadProgress } from './model/load.js';
export { pullModel, type PulledModel } from './hub/pull.js';
export type { HubOptions } from './hub/settings.js';
export type { PullProgress } from './hub/progress.js';
export { Model, type ChatResult, type FinishReason, type ModelProcessor, type Conversation, type RequestOptions, type PrepareOptions, type EstimateOptions } from './model/model.js';
export {
  DEFAULT_MEDIA_POLICY,
  type MediaPolicy,
  type LocalFilesRule,
  type ResolvedMediaPolicy,
} from './processor/media-policy.js';
export type { PreparedInputs } from './model/inputs.js';
export type { GenerateOptions } from './generate/options.js';
import { listConformanceCases as raw_listConformanceCases, runConformance as raw_runConformance } from './conformance/run.js';
export {
  type ConformanceOptions,
  type ConformanceTolerances,
  type StageResult,
} from './conformance/run.js';
import { defaultBudget as raw_defaultBudget } from './model/budget.js';
export {
  type Budget,
  type TokenEstimate,
} from './model/budget.js';
export type { Sources as TokenizerSources, TokenEncodeAsyncOptions } from './text/tokenizer.js';
export type { ConfigReader, Json } from './families/fields.js';

// Building blocks as exported: only QwenVLError escapes them (see publicFunction).
import { publicFunction } from './validate.js';
/** See the module of its definition. */
export const info: typeof raw_info = publicFunction('info', raw_info);
/** See the module of its definition. */
export const setThreads: typeof raw_setThreads = publicFunction('setThreads', raw_setThreads);
/** See the module of its definition. */
export const castTensor: typeof raw_castTensor = publicFunction('castTensor', raw_castTensor);
/** See the module of its definition. */
export const openSafetensors: typeof raw_openSafetensors = publicFunction('openSafetensors', raw_openSafetensors);
/** See the module of its definition. */
export const readSafetensorsHeader: typeof raw_readSafetensorsHeader = publicFunction('readSafetensorsHeader', raw_readSafetensorsHeader);
/** See the module of its definition. */
export const loadModelConfig: typeof raw_loadModelConfig = publicFunction('loadModelConfig', raw_loadModelConfig);
/** See the module of its definition. */
export const parseModelConfig: typeof raw_parseModelConfig = publicFunction('parseModelConfig', raw_parseModelConfig);
/** See the module of its definition. */
export const loadGenerationDefaults: typeof raw_loadGenerationDefaults = publicFunction('loadGenerationDefaults', raw_loadGenerationDefaults);
/** See the module of its definition. */
export const parseGenerationConfig: typeof raw_parseGenerationConfig = publicFunction('parseGenerationConfig', raw_parseGenerationConfig);
/** See the module of its definition. */
export const familyForModelType: typeof raw_familyForModelType = publicFunction('familyForModelType', raw_familyForModelType);
/** See the module of its definition. */
export const getFamily: typeof raw_getFamily = publicFunction('getFamily', raw_getFamily);
/** See the module of its definition. */
export const getRopeIndex: typeof raw_getRopeIndex = publicFunction('getRopeIndex', raw_getRopeIndex);
/** See the module of its definition. */
export const decodePosition: typeof raw_decodePosition = publicFunction('decodePosition', raw_decodePosition);
/** See the module of its definition. */
export const ropeIndexOptions: typeof raw_ropeIndexOptions = publicFunction('ropeIndexOptions', raw_ropeIndexOptions);
/** See the module of its definition. */
export const parseImageProcessorConfig: typeof raw_parseImageProcessorConfig = publicFunction('parseImageProcessorConfig', raw_parseImageProcessorConfig);
/** See the module of its definition. */
export const loadImageProcessorConfig: typeof raw_loadImageProcessorConfig = publicFunction('loadImageProcessorConfig', raw_loadImageProcessorConfig);
/** See the module of its definition. */
export const smartResize: typeof raw_smartResize = publicFunction('smartResize', raw_smartResize);
/** See the module of its definition. */
export const decodeImage: typeof raw_decodeImage = publicFunction('decodeImage', raw_decodeImage);
/** See the module of its definition. */
export const processImages: typeof raw_processImages = publicFunction('processImages', raw_processImages);
/** See the module of its definition. */
export const patchifyFrames: typeof raw_patchifyFrames = publicFunction('patchifyFrames', raw_patchifyFrames);
/** See the module of its definition. */
export const resizeRgb: typeof raw_resizeRgb = publicFunction('resizeRgb', raw_resizeRgb);
/** See the module of its definition. */
export const processVideo: typeof raw_processVideo = publicFunction('processVideo', raw_processVideo);
/** See the module of its definition. */
export const loadVideoProcessorConfig: typeof raw_loadVideoProcessorConfig = publicFunction('loadVideoProcessorConfig', raw_loadVideoProcessorConfig);
/** See the module of its definition. */
export const parseVideoProcessorConfig: typeof raw_parseVideoProcessorConfig = publicFunction('parseVideoProcessorConfig', raw_parseVideoProcessorConfig);
/** See the module of its definition. */
export const smartNframes: typeof raw_smartNframes = publicFunction('smartNframes', raw_smartNframes);
/** See the module of its definition. */
export const applyChatTemplate: typeof raw_applyChatTemplate = publicFunction('applyChatTemplate', raw_applyChatTemplate);
/** See the module of its definition. */
export const findChatTemplate: typeof raw_findChatTemplate = publicFunction('findChatTemplate', raw_findChatTemplate);
/** See the module of its definition. */
export const expandVisionPlaceholders: typeof raw_expandVisionPlaceholders = publicFunction('expandVisionPlaceholders', raw_expandVisionPlaceholders);
/** See the module of its definition. */
export const qwen3VideoTimestamps: typeof raw_qwen3VideoTimestamps = publicFunction('qwen3VideoTimestamps', raw_qwen3VideoTimestamps);
/** See the module of its definition. */
export const formatFixed1: typeof raw_formatFixed1 = publicFunction('formatFixed1', raw_formatFixed1);
/** See the module of its definition. */
export const padBatch: typeof raw_padBatch = publicFunction('padBatch', raw_padBatch);
/** See the module of its definition. */
export const batchRow: typeof raw_batchRow = publicFunction('batchRow', raw_batchRow);
/** See the module of its definition. */
export const encodeBatch: typeof raw_encodeBatch = publicFunction('encodeBatch', raw_encodeBatch);
/** See the module of its definition. */
export const runConformance: typeof raw_runConformance = publicFunction('runConformance', raw_runConformance);
/** See the module of its definition. */
export const listConformanceCases: typeof raw_listConformanceCases = publicFunction('listConformanceCases', raw_listConformanceCases);
/** See the module of its definition. */
export const defaultBudget: typeof raw_defaultBudget = publicFunction('defaultBudget', raw_defaultBudget);
/** See the module of its definition. */
export const supportedModelTypes: typeof raw_supportedModelTypes = publicFunction('supportedModelTypes', raw_supportedModelTypes);
