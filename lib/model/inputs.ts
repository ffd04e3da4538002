/**
 * Chat messages -> model inputs, as transformers' processor builds them: the chat template, the
 * images of every message in order, placeholder expansion, tokenization with left padding, and
 * M-RoPE position ids.
 * @module
 */
import { QwenVLError, inputError } from '../errors.js';
import { getRopeIndexImpl, ropeIndexOptionsImpl } from '../families/rope-index.js';
import type { ImageProcessorConfig } from '../processor/config.js';
import { processImagesImpl, type ImageInput, type ImageItem, type ImageSize, type ImageSizeOptions } from '../processor/image.js';
import { resolveMediaPolicy, type ResolvedMediaPolicy } from '../processor/media-policy.js';
import { processVideoImpl, type ProcessVideoOptions, type ProcessedVideo, type VideoInput } from '../processor/video.js';
import type { VideoProcessorConfig } from '../processor/video-config.js';
import { padBatchImpl } from '../text/batch.js';
import type { ChatMessage, ChatTemplate, ChatTemplateOptions } from '../text/chat-template.js';
import { countOf, expandVisionPlaceholdersImpl } from '../text/expand.js';
import type { QwenTokenizer } from '../text/tokenizer.js';
import { templateMessages, type ToolDefinition } from '../text/tool-messages.js';
import { expandOutsideSpans, renderMarked, type MarkedPrompt } from '../text/user-text.js';
import { checkTextLength, countOutside, overflowInContext } from './prompt-limits.js';
import type { ModelConfig } from './config.js';

/** Everything the model runs on for one batch of prompts. */
export interface PreparedInputs {
  /** The rendered prompts (before placeholder expansion), one per row. */
  promptTexts: string[];
  batchSize: number;
  /** Padded prompt length S. */
  seqLength: number;
  /** [batchSize × seqLength] token ids, left padded. */
  inputIds: Int32Array;
  /** [batchSize × seqLength], 1 for real tokens. */
  attentionMask: Int32Array;
  /** Leading padding tokens of each row. */
  padding: number[];
  /** Flattened image patches, [patches × patchDim], or null without images. */
  pixelValues: Float32Array | null;
  patchDim: number;
  /** (t, h, w) per image, in placeholder order. */
  imageGridThw: [number, number, number][];
  /** Original and resized size per image, in placeholder order (grounding maps boxes with them). */
  imageSizes: ImageSize[];
  /** The batch row (conversation) of each image, in placeholder order. */
  imageRows: number[];
  /** Flattened video patches of all videos, [patches × videoPatchDim], or null without videos. */
  pixelValuesVideos: Float32Array | null;
  videoPatchDim: number;
  /** (t, h, w) per video, in placeholder order. */
  videoGridThw: [number, number, number][];
  /** Original and resized frame size per video, in placeholder order (grounding maps boxes on a video with them). */
  videoSizes: ImageSize[];
  /** The batch row (conversation) of each video, in placeholder order. */
  videoRows: number[];
  /** Qwen2.5-VL: seconds per temporal grid step of each video. */
  secondPerGridTs: number[];
  /** [3][batchSize × seqLength]: temporal, height and width positions. */
  positionIds: Int32Array;
  /** Per row: position of cache slot c is c + ropeDeltas[b] on every axis. */
  ropeDeltas: number[];
}

/** What {@link prepareInputs} needs from a loaded model. @internal */
export interface InputContext {
  config: ModelConfig;
  tokenizer: QwenTokenizer;
  template: ChatTemplate;
  imageConfig: ImageProcessorConfig;
  videoConfig: VideoProcessorConfig;
  maxInputPixels?: number;
  /** The request's media policy (the model's, narrowed by the request's). */
  media?: ResolvedMediaPolicy;
  /** The request's vision-token budget: videos over what is left are refused before decoding. */
  maxVisualTokens?: number;
}

const SIZE_KEYS: [keyof ImageSizeOptions, string][] = [
  ['minPixels', 'min_pixels'],
  ['maxPixels', 'max_pixels'],
  ['resizedWidth', 'resized_width'],
  ['resizedHeight', 'resized_height'],
];

function sizeOptions(part: Record<string, unknown>): ImageSizeOptions {
  const out: ImageSizeOptions = {};
  for (const [camel, snake] of SIZE_KEYS) {
    const v = part[camel] ?? part[snake];
    if (v !== undefined) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw inputError(`image part: ${camel} must be a positive number`);
      out[camel] = v;
    }
  }
  return out;
}

/**
 * The image of a part. Sources stay as given: paths, `file:` and `data:` URLs are resolved by the
 * image decoder under the media policy, so that nothing is read or decoded before the request's
 * limits are checked.
 */
function imageOfPart(part: Record<string, unknown>, where: string): ImageItem {
  if (part.type === 'image_url') {
    const iu = part.image_url;
    const url = typeof iu === 'string' ? iu : iu && typeof iu === 'object' ? (iu as { url?: unknown }).url : undefined;
    if (typeof url !== 'string' || url.length === 0) throw inputError(`${where}: image_url part needs image_url.url`);
    return { image: url, ...sizeOptions(part) };
  }
  const src = part.image ?? part.url ?? part.path;
  if (src === undefined || src === null) throw inputError(`${where}: image part has no image, url or path`);
  return { image: src as ImageInput, ...sizeOptions(part) };
}

const KNOWN_PARTS = new Set(['text', 'image', 'image_url', 'video']);

/** A video part resolved to its input and options. @internal */
export interface VideoItem {
  input: VideoInput;
  options: ProcessVideoOptions;
  /** The message part it came from, for error messages. */
  where: string;
}

const VIDEO_KEYS: [keyof ProcessVideoOptions, string][] = [
  ['fps', 'fps'],
  ['nframes', 'nframes'],
  ['minFrames', 'min_frames'],
  ['maxFrames', 'max_frames'],
  ['minPixels', 'min_pixels'],
  ['maxPixels', 'max_pixels'],
  ['totalPixels', 'total_pixels'],
  ['resizedHeight', 'resized_height'],
  ['resizedWidth', 'resized_width'],
  ['videoStart', 'video_start'],
  ['videoEnd', 'video_end'],
];

function videoOfPart(part: Record<string, unknown>, where: string): VideoItem {
  const options: ProcessVideoOptions = {};
  for (const [camel, snake] of VIDEO_KEYS) {
    const v = part[camel] ?? part[snake];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw inputError(`${where}: ${camel} must be a number`);
    (options as Record<string, number>)[camel] = v;
  }
  const src = part.video ?? part.url ?? part.path;
  if (Array.isArray(src)) {
    // A list of frames: the fps they were sampled at describes them, it does not resample them.
    const { fps, ...rest } = options;
    return { input: { frames: src as ImageInput[], ...(fps !== undefined ? { fps } : {}) }, options: rest, where };
  }
  if (src && typeof src === 'object' && Array.isArray((src as { frames?: unknown }).frames)) {
    return { input: src as VideoInput, options, where };
  }
  // Paths and URLs are resolved by processVideo under the media policy.
  if (typeof src === 'string' || src instanceof URL) return { input: src, options, where };
  throw inputError(`${where}: video part needs video (a path or a list of frames), url or path`);
}

/**
 * Validates the messages and collects their image and video parts in order, reading nothing.
 * `imageWhere[i]` names the message part of `images[i]`. @internal
 */
export function collectVision(
  messages: readonly ChatMessage[],
  row: number,
): { images: ImageItem[]; imageWhere: string[]; videos: VideoItem[] } {
  if (!Array.isArray(messages) || messages.length === 0) throw inputError(`conversation ${row}: messages must be a non-empty array`);
  const images: ImageItem[] = [];
  const imageWhere: string[] = [];
  const videos: VideoItem[] = [];
  for (let m = 0; m < messages.length; m++) {
    const msg = messages[m];
    const where = `conversation ${row}, message ${m}`;
    if (!msg || typeof msg !== 'object' || typeof msg.role !== 'string') throw inputError(`${where}: a message needs a role`);
    const content = msg.content;
    if (content === undefined || content === null || typeof content === 'string') continue;
    if (!Array.isArray(content)) throw inputError(`${where}: content must be a string or an array of parts`);
    for (let p = 0; p < content.length; p++) {
      const part = content[p] as Record<string, unknown>;
      const pw = `${where}, part ${p}`;
      if (!part || typeof part !== 'object' || typeof part.type !== 'string') throw inputError(`${pw}: a part needs a type`);
      if (!KNOWN_PARTS.has(part.type)) {
        throw inputError(`${pw}: unknown part type '${part.type}' (expected text, image, image_url or video)`);
      }
      if (part.type === 'video') videos.push(videoOfPart(part, pw));
      if (part.type === 'text' && typeof part.text !== 'string') throw inputError(`${pw}: text part needs a string text`);
      if (part.type === 'image' || part.type === 'image_url') {
        images.push(imageOfPart(part, pw));
        imageWhere.push(pw);
      }
    }
  }
  return { images, imageWhere, videos };
}

/** The arrays joined end to end (the array itself when there is one). @internal */
export function concatFloat(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}


/** How {@link prepareInputs} treats the text of a request. @internal */
export interface PromptOptions {
  /** Tokenize user and tool text without recognising special-token strings in it. */
  plainUserText?: boolean;
  /** Refuse (E_CONTEXT_OVERFLOW) a prompt of more tokens, before tokenizing when its length shows it. */
  contextLength?: number;
  /** Tools the chat template lists for the model (RequestOptions.tools). */
  tools?: readonly ToolDefinition[];
  /** Further chat template variables (RequestOptions.templateVariables). */
  templateVariables?: Record<string, unknown>;
}

/** Builds the model inputs of a batch of conversations (one row each). */
export async function prepareInputs(
  ctx: InputContext,
  conversations: readonly (readonly ChatMessage[])[],
  prompt: PromptOptions = {},
): Promise<PreparedInputs> {
  if (!Array.isArray(conversations) || conversations.length === 0) throw inputError('no conversation given');
  const imageToken = ctx.tokenizer.idToToken(ctx.config.tokens.imageTokenId) ?? '<|image_pad|>';
  const videoToken = ctx.tokenizer.idToToken(ctx.config.tokens.videoTokenId) ?? '<|video_pad|>';
  const promptTexts: string[] = [];
  const marked: MarkedPrompt[] = [];
  const items: ImageItem[] = [];
  const itemWhere: string[] = [];
  const videoItems: VideoItem[] = [];
  const collected = conversations.map((c, b) => collectVision(c, b));
  // Counted from the parts alone, before any source is read or decoded.
  const media = await resolveMediaPolicy(ctx.media);
  for (const [kind, n, max, key] of [
    ['image', collected.reduce((k, c) => k + c.images.length, 0), media.maxImages, 'maxImages'],
    ['video', collected.reduce((k, c) => k + c.videos.length, 0), media.maxVideos, 'maxVideos'],
  ] as const) {
    if (n > max) throw inputError(`the request has ${n} ${kind} parts, over the media policy's ${key} of ${max}; refused before reading any`);
  }
  const render: ChatTemplateOptions = {
    addGenerationPrompt: true,
    ...(prompt.tools ? { tools: prompt.tools } : {}),
    ...(prompt.templateVariables ? { variables: prompt.templateVariables } : {}),
  };
  for (let b = 0; b < conversations.length; b++) {
    const { images, imageWhere, videos } = collected[b];
    if (prompt.contextLength !== undefined) checkTextLength(conversations[b], ctx.tokenizer, prompt.contextLength, b);
    const messages = templateMessages(conversations[b], b);
    const m = prompt.plainUserText
      ? renderMarked(ctx.template, ctx.tokenizer, messages, render, `conversation ${b}`)
      : { text: ctx.template.render(messages, render), spans: [] };
    const text = m.text;
    marked.push(m);
    for (const [kind, token, n] of [['image', imageToken, images.length], ['video', videoToken, videos.length]] as const) {
      const slots = m.spans.length > 0 ? countOutside(text, m.spans, token) : countOf(text, token);
      if (slots !== n) {
        throw inputError(`conversation ${b}: ${n} ${kind} part(s) but the chat template placed ${slots} ${kind} placeholder(s)`);
      }
    }
    promptTexts.push(text);
    items.push(...images);
    itemWhere.push(...imageWhere);
    videoItems.push(...videos);
  }

  const pixels = ctx.maxInputPixels ? { maxInputPixels: ctx.maxInputPixels } : {};
  const processed = items.length > 0
    ? await processImagesImpl(items, ctx.imageConfig, { ...pixels, media, labels: itemWhere })
    : null;
  const imageGridThw = processed?.imageGridThw ?? [];
  const imageRows = collected.flatMap((c, b) => c.images.map(() => b));
  // Videos one at a time: each may be long, and only its sampled frames are kept.
  const videos: ProcessedVideo[] = [];
  const merge = ctx.config.vision.spatialMergeSize ** 2;
  const tokensOf = (grids: readonly (readonly number[])[]): number => grids.reduce((n, [t, h, w]) => n + (t * h * w) / merge, 0);
  for (let i = 0; i < videoItems.length; i++) {
    const left: number | undefined = ctx.maxVisualTokens === undefined ? undefined : ctx.maxVisualTokens - tokensOf(imageGridThw) - tokensOf(videos.map((v) => v.gridThw));
    try {
      videos.push(await processVideoImpl(videoItems[i].input, ctx.videoConfig, {
        ...videoItems[i].options,
        ...pixels,
        media,
        ...(left !== undefined ? { maxVisualTokens: Math.max(0, left) } : {}),
      }));
    } catch (err) {
      if (err instanceof QwenVLError) throw new QwenVLError(err.code, `${videoItems[i].where}: ${err.message}`, { cause: err });
      throw err;
    }
  }
  const videoGridThw = videos.map((v) => v.gridThw);
  const qwen3 = ropeIndexOptionsImpl(ctx.config).kind === 'qwen3_vl';
  const videoTimestamps = videos.map((v) => v.timestamps);
  const expand = (texts: string[]) => expandVisionPlaceholdersImpl(texts, {
    imageGridThw,
    videoGridThw,
    mergeSize: ctx.config.vision.spatialMergeSize,
    videoStyle: qwen3 ? 'qwen3' : 'qwen2',
    videoTimestamps,
  });
  const expanded = marked.some((m) => m.spans.length > 0)
    ? expandOutsideSpans(marked, expand)
    : expand(promptTexts).map((text) => ({ text, spans: [] as [number, number][] }));
  const padId = ctx.tokenizer.specialIds.pad ?? ctx.tokenizer.specialIds.endOfText ?? 0;
  const rowsIds: number[][] = [];
  for (let b = 0; b < expanded.length; b++) {
    try {
      rowsIds.push(await ctx.tokenizer.encodeAsync(expanded[b].text, {
        plainTextRanges: expanded[b].spans,
        ...(prompt.contextLength !== undefined ? { maxTokens: prompt.contextLength } : {}),
      }));
    } catch (e) {
      if (e instanceof QwenVLError && e.code === 'E_CONTEXT_OVERFLOW') throw overflowInContext(b, prompt.contextLength!, e);
      throw e;
    }
  }
  const batch = padBatchImpl(rowsIds, { padId, side: 'left' });
  const S = batch.seqLength, B = batch.batchSize;
  const rows = Array.from({ length: B }, (_, b) => batch.inputIds.subarray(b * S, (b + 1) * S));
  const masks = Array.from({ length: B }, (_, b) => batch.attentionMask.subarray(b * S, (b + 1) * S));
  const secondPerGridTs = videos.map((v) => v.secondPerGridT);
  const rope = getRopeIndexImpl(rows, masks, imageGridThw, videoGridThw, ropeIndexOptionsImpl(ctx.config, secondPerGridTs));
  const positionIds = new Int32Array(3 * B * S);
  for (let axis = 0; axis < 3; axis++) {
    for (let b = 0; b < B; b++) positionIds.set(rope.positionIds[axis as 0 | 1 | 2][b], axis * B * S + b * S);
  }
  return {
    promptTexts,
    batchSize: B,
    seqLength: S,
    inputIds: batch.inputIds,
    attentionMask: batch.attentionMask,
    padding: batch.lengths.map((l) => S - l),
    pixelValues: processed?.pixelValues ?? null,
    patchDim: processed?.shape[1] ?? 0,
    imageGridThw,
    imageSizes: processed?.imageSizes ?? [],
    imageRows,
    pixelValuesVideos: videos.length > 0 ? concatFloat(videos.map((v) => v.pixelValues)) : null,
    videoPatchDim: videos[0]?.shape[1] ?? 0,
    videoGridThw,
    videoSizes: videos.map((v) => ({ originalWidth: v.originalSize[1], originalHeight: v.originalSize[0], resizedWidth: v.size[1], resizedHeight: v.size[0] })),
    videoRows: collected.flatMap((c, b) => c.videos.map(() => b)),
    secondPerGridTs,
    positionIds,
    ropeDeltas: rope.ropeDeltas,
  };
}
