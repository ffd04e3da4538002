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
  type RawImage,
  type RgbImage,
  type DecodeOptions,
  type ProcessImagesOptions,
  type ProcessedImages,
} from './image.js';
