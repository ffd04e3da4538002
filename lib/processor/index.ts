/**
 * Image preprocessing: decoding, smart_resize, bicubic resize and patch flattening.
 * @module
 */
export {
  parseImageProcessorConfig,
  loadImageProcessorConfig,
  DEFAULT_IMAGE_PROCESSOR_CONFIG,
  OPENAI_CLIP_MEAN,
  OPENAI_CLIP_STD,
  type ImageProcessorConfig,
  type ProcessorFlavor,
} from './config.js';
export { smartResize, pyRound, type SmartResizeOptions } from './smart-resize.js';
export {
  decodeImage,
  processImages,
  patchifyFrames,
  resizeRgb,
  targetSize,
  DEFAULT_MAX_INPUT_PIXELS,
  type ImageInput,
  type ImageItem,
  type ImageSizeOptions,
  type ImageSize,
  type RawImage,
  type RgbImage,
  type DecodeOptions,
  type ProcessImagesOptions,
  type ProcessedImages,
} from './image.js';
export {
  DEFAULT_MEDIA_POLICY,
  type MediaPolicy,
  type LocalFilesRule,
  type ResolvedMediaPolicy,
} from './media-policy.js';
export {
  processVideo,
  DEFAULT_MAX_VIDEO_FRAMES,
  type VideoInput,
  type VideoFrames,
  type VideoPipeline,
  type ProcessVideoOptions,
  type ProcessedVideo,
} from './video.js';
export {
  parseVideoProcessorConfig,
  loadVideoProcessorConfig,
  type VideoProcessorConfig,
  type VideoProcessorKind,
} from './video-config.js';
export {
  smartNframes,
  videoFrameRange,
  sampleFramesQwenVlUtils,
  sampleFramesQwen2Processor,
  sampleFramesQwen3Processor,
  qwenVlUtilsSmartResize,
  qwenVlUtilsVideoSize,
  qwenVlUtilsFrameSize,
  qwen3VideoSmartResize,
  torchLinspaceF32,
  numpyLinspace,
  FRAME_FACTOR,
  DEFAULT_VIDEO_FPS,
  FPS_MIN_FRAMES,
  FPS_MAX_FRAMES,
  VIDEO_MIN_TOKEN_NUM,
  VIDEO_MAX_TOKEN_NUM,
  type FrameCountOptions,
  type FramePixelOptions,
  type FrameSample,
  type FrameRange,
  type ProcessorSamplingOptions,
} from './video-sampling.js';
export { findFfmpeg, probeVideo, decodeVideoFrames, type FfmpegTools, type VideoProbe } from './ffmpeg.js';
