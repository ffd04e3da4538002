/**
 * qwenvl: run the Qwen vision-language model family locally from Node.js.
 *
 * Every function exported here throws, or rejects with, nothing but a {@link QwenVLError}: an argument that
 * is not what the function expects (a getter or proxy that throws, a sparse array of billions of elements,
 * a symbol where a string belongs) is E_INPUT naming the function, never a TypeError or RangeError.
 * @module
 */
export { QwenVLError, type ErrorCode } from './errors.js';
export {
  info,
  setThreads,
  type Info,
  type OpFamilyInfo,
  type CudaInfo,
} from './info.js';
export {
  castTensor,
  Tensor,
  type DType,
  type TensorData,
} from './tensor.js';
export {
  openSafetensors,
  readSafetensorsHeader,
  SafetensorsCheckpoint,
  type SafetensorsHeader,
  type SafetensorsTensorInfo,
} from './io/safetensors.js';
export {
  loadModelConfig,
  parseModelConfig,
  loadGenerationDefaults,
  parseGenerationConfig,
  supportedModelTypes,
  type ModelConfig,
  type TextConfig,
  type VisionConfig,
  type MoeConfig,
  type TokenIds,
  type QuantizationConfig,
  type GenerationDefaults,
} from './model/config.js';
export {
  familyForModelType,
  getFamily,
  FAMILIES,
  type FamilyId,
} from './families/registry.js';
export type { FamilyDescriptor, ConfigLayout } from './families/family.js';
export {
  getRopeIndex,
  decodePosition,
  ropeIndexOptions,
  type RopeIndex,
  type RopeIndexOptions,
  type RopeIndexKind,
  type GridThw,
} from './families/rope-index.js';
export {
  parseImageProcessorConfig,
  loadImageProcessorConfig,
  smartResize,
  decodeImage,
  processImages,
  patchifyFrames,
  resizeRgb,
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
export {
  processVideo,
  loadVideoProcessorConfig,
  parseVideoProcessorConfig,
  smartNframes,
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
export {
  applyChatTemplate,
  findChatTemplate,
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
export {
  expandVisionPlaceholders,
  qwen3VideoTimestamps,
  formatFixed1,
  type ExpandOptions,
  type PatchGrid,
  type VideoExpansionStyle,
} from './text/expand.js';
export {
  padBatch,
  batchRow,
  encodeBatch,
  type PaddedBatch,
  type PadOptions,
} from './text/batch.js';
export { loadModel, type LoadOptions, type LoadProgress } from './model/load.js';
export type { PlacementProbe, PlacementReport, WeightPlacement } from './model/placement.js';
export { pullModel, type PulledModel } from './hub/pull.js';
export type { HubOptions } from './hub/settings.js';
export type { PullProgress } from './hub/progress.js';
export { Model, type ChatResult, type FinishReason, type ModelProcessor, type Conversation, type RequestOptions, type PrepareOptions, type EstimateOptions } from './model/model.js';
export type { EngineOptions, EngineStats, KvCacheDtype } from './engine/engine.js';
export {
  DEFAULT_MEDIA_POLICY,
  type MediaPolicy,
  type LocalFilesRule,
  type ResolvedMediaPolicy,
} from './processor/media-policy.js';
export type { PreparedInputs } from './model/inputs.js';
export type { ImageSize } from './processor/image.js';
export type { GroundingCoordinates } from './families/family.js';
export {
  parseGrounding,
  drawGrounding,
  GROUNDING_COLORS,
  type ParseGroundingOptions,
  type DrawGroundingOptions,
  type GroundingImage,
  type GroundingItem,
  type GroundingResult,
  type GroundingVideo,
} from './grounding/index.js';
export type { GenerateOptions } from './generate/options.js';
export type { ResponseFormat } from './structured/response-format.js';
export {
  parseToolCalls,
  ToolCallStream,
  type ToolCall,
  type ToolCallError,
  type ToolCallPiece,
  type ToolCallParseOptions,
  type ParsedToolCalls,
} from './generate/tool-calls.js';
export {
  splitReasoning,
  ReasoningStream,
  type ReasoningPiece,
  type ReasoningParseOptions,
  type SplitReasoning,
} from './generate/reasoning.js';
export type { ChatStreamEvent } from './generate/reply.js';
export type { ToolDefinition } from './text/tool-messages.js';
export {
  listConformanceCases,
  runConformance,
  type ConformanceOptions,
  type ConformanceTolerances,
  type StageResult,
} from './conformance/run.js';
export {
  defaultBudget,
  type Budget,
  type TokenEstimate,
} from './model/budget.js';
export type { Sources as TokenizerSources, TokenEncodeAsyncOptions } from './text/tokenizer.js';
export type { ConfigReader, Json } from './families/fields.js';
