/**
 * A loaded checkpoint: chat, streaming, and the low-level pieces (processor, tokenizer, vision
 * embeddings, logits) for power users.
 * @module
 */
import { inputError, QwenVLError } from '../errors.js';
import { resolveGenerateOptions, type GenerateOptions, type ResolvedGenerateOptions } from '../generate/options.js';
import { StopMatcher } from '../generate/stop.js';
import { native, type NativeHandle } from '../native/binding.js';
import type { ImageProcessorConfig } from '../processor/config.js';
import { processVideoImpl, type ProcessedVideo, type ProcessVideoOptions, type VideoInput } from '../processor/video.js';
import type { VideoProcessorConfig } from '../processor/video-config.js';
import { processImagesImpl, type ImageInput, type ImageItem, type ProcessedImages } from '../processor/image.js';
import { defaultMediaPolicy, resolveMediaPolicy, type MediaPolicy, type ResolvedMediaPolicy } from '../processor/media-policy.js';
import type { ChatMessage, ChatTemplate } from '../text/chat-template.js';
import type { QwenTokenizer } from '../text/tokenizer.js';
import { Tensor, tensorFromNative } from '../tensor.js';
import { checkBudget, estimateMemory, kvBytesPerToken, type Budget, type TokenEstimate } from './budget.js';
import { RequestCancel } from './cancel.js';
import type { GenerationDefaults, ModelConfig } from './config.js';
import { encodeFeatures, encodePrepared, prefillOnce, runOnEngine, type LoopContext } from './generate.js';
import { Engine, resolveEngineOptions, type EngineOptions, type EngineStats } from '../engine/engine.js';
import { prepareInputs, type PreparedInputs } from './inputs.js';
import { contextOverflow } from './prompt-limits.js';
import { checkPrepared, readPrepareOptions, readEstimateOptions, readLogitsOptions } from './request-args.js';
import { checkArray, guard, guardAsync } from '../validate.js';
import { chatGrounding } from '../grounding/chat.js';
import type { GroundingItem } from '../grounding/types.js';
import { promptOpensThinking } from '../generate/reasoning.js';
import { ModelGrammars } from '../structured/model-grammars.js';
import { ReplyParser, type ChatStreamEvent } from '../generate/reply.js';
import type { ToolCall, ToolCallError } from '../generate/tool-calls.js';
import type { ToolDefinition } from '../text/tool-messages.js';
import { toolCallIds } from './tool-call-ids.js';
import type { PlacementReport } from './placement.js';

/** Most images one call of processImages / encodeImages accepts. */
const MAX_IMAGES = 1 << 16;

/** Why generation ended. */
export type FinishReason = 'stop' | 'length' | 'abort' | 'tool_calls';

/** The result of {@link Model.chat}. */
export interface ChatResult {
  /**
   * The generated text (stop string and end-of-sequence token excluded), without the thinking block
   * (see `reasoning`) and, when the request gave `tools`, without the tool calls (see `toolCalls`).
   */
  text: string;
  /**
   * The thinking block's content (`<think>…</think>`, tags and surrounding newlines excluded), present
   * when the reply has one: thinking checkpoints write it first, or their chat template opens it at the
   * end of the prompt. A reply cut off inside it (maxTokens) has its reasoning so far and an empty text.
   * Thinking templates read it back as an assistant message's `reasoning_content`.
   */
  reasoning?: string;
  /**
   * The tool calls of the reply (Hermes `<tool_call>` blocks) in OpenAI's shape, present when the
   * request gave `tools` and the reply made calls. Answer them with `role: 'tool'` messages.
   */
  toolCalls?: ToolCall[];
  /** `<tool_call>` blocks that are not well-formed calls, with their raw text; present when there are any. */
  toolCallErrors?: ToolCallError[];
  /** Generated token ids (the end-of-sequence token included when one was produced). */
  tokens: number[];
  /** Token counts; all 0 when the request was aborted before its prompt was tokenized. */
  usage: { promptTokens: number; completionTokens: number; totalTokens: number };
  /**
   * 'stop': end-of-sequence token or stop string; 'tool_calls': the same, the reply ending with tool
   * calls; 'length': maxTokens or the context; 'abort': the signal.
   */
  finishReason: FinishReason;
  /**
   * The boxes and points of the reply in pixels of the ORIGINAL images (see {@link parseGrounding}),
   * present when the reply has any on the request's images.
   */
  grounding?: GroundingItem[];
}

/** The image processor of a model: its settings and the function that runs it. */
export interface ModelProcessor {
  readonly config: ImageProcessorConfig;
  readonly videoConfig: VideoProcessorConfig;
  /** Images -> flattened patches and grids, exactly as transformers' processor. */
  processImages(images: readonly (ImageInput | ImageItem)[]): Promise<ProcessedImages>;
  /** One video (file or frames) -> flattened patches, grid and timing, as transformers' video processor. */
  processVideo(video: VideoInput, options?: ProcessVideoOptions): Promise<ProcessedVideo>;
}

/** Parts a {@link Model} is built from ({@link loadModel} assembles them). @internal */
export interface ModelParts {
  dir: string;
  config: ModelConfig;
  generationDefaults: GenerationDefaults;
  tokenizer: QwenTokenizer;
  template: ChatTemplate;
  imageConfig: ImageProcessorConfig;
  videoConfig: VideoProcessorConfig;
  handle: NativeHandle;
  contextLength: number;
  budget: Budget;
  maxInputPixels?: number;
  media?: ResolvedMediaPolicy;
  /** Default of {@link GenerateOptions.specialTokensInUserText}; true when unset. */
  specialTokensInUserText?: boolean;
  /** How concurrent requests share the model (see {@link EngineOptions}). */
  engine?: EngineOptions;
  /** Where the language model's weights are (see {@link LoadOptions.placement}). */
  placement: PlacementReport;
}

/** Per-request options shared by chat, stream, prepare and estimateTokens. */
export interface RequestOptions {
  /**
   * This request's media policy; it narrows the model's (`LoadOptions.media`): smaller
   * limits win and local files must pass both folder rules.
   */
  media?: MediaPolicy;
  /**
   * Functions the model may call, in OpenAI's `tools` shape, passed to the chat template (which lists
   * them in the system turn). The reply's `<tool_call>` blocks then come back as
   * {@link ChatResult.toolCalls}. A template that does not read `tools` (Qwen2-VL's and Qwen2.5-VL's
   * own) leaves them out of the prompt, as transformers does; the Qwen3-VL templates list them.
   */
  tools?: readonly ToolDefinition[];
  /**
   * Further chat template variables, as transformers' `apply_chat_template(**kwargs)` passes them:
   * e.g. `{ enable_thinking: false }` for templates that read it, `{ add_vision_id: true }`.
   */
  templateVariables?: Record<string, unknown>;
}

/** Options of {@link Model.prepare}. */
export interface PrepareOptions extends RequestOptions {
  /** See {@link GenerateOptions.specialTokensInUserText}. */
  specialTokensInUserText?: boolean;
}

/** Options of {@link Model.estimateTokens}. */
export interface EstimateOptions extends PrepareOptions {
  /** New tokens the memory estimate allows for. Default 0. */
  maxTokens?: number;
}

/**
 * One conversation, or a batch of conversations run together. Each row gets the tokens of
 * transformers' left-padded batch (its repetition penalty counts the padding, as transformers' does),
 * but no padding is computed: the rows are prefilled side by side at their own lengths.
 */
export type Conversation = readonly ChatMessage[];

function isBatch(m: Conversation | readonly Conversation[]): m is readonly Conversation[] {
  return Array.isArray(m) && m.length > 0 && Array.isArray(m[0]);
}

/** A loaded vision-language model. Create with {@link loadModel}; free with {@link Model.dispose}. */
export class Model {
  /** The checkpoint folder. */
  readonly dir: string;
  /** Parsed config.json. */
  readonly config: ModelConfig;
  /** Sampling defaults from generation_config.json. */
  readonly generationDefaults: GenerationDefaults;
  /** The checkpoint's tokenizer. */
  readonly tokenizer: QwenTokenizer;
  /** The checkpoint's chat template. */
  readonly template: ChatTemplate;
  /** The image processor. */
  readonly processor: ModelProcessor;
  /** Most tokens (prompt + generated) one sequence may hold. */
  readonly contextLength: number;
  /** Limits every request is checked against (see {@link LoadOptions}). */
  readonly budget: Readonly<Budget>;
  /** Whether special-token strings in user and tool text are control tokens, unless a request says. */
  readonly specialTokensInUserText: boolean;
  /**
   * Where the language model's linear weights are (`used`), what {@link LoadOptions.placement}
   * asked, and the read bandwidths the process's placement probe measured.
   */
  readonly placement: Readonly<PlacementReport>;
  private handle: NativeHandle | null;
  private readonly maxInputPixels?: number;
  private readonly media: ResolvedMediaPolicy;
  /** Requests not yet settled; dispose() cancels them. */
  private readonly running = new Set<RequestCancel>();
  /** The one running batch every chat()/stream() call joins. */
  private readonly engine: Engine;
  /** Structured output's vocabulary index and compiled grammars, made on the first constrained request. */
  private grammars: ModelGrammars | null = null;

  /** @internal */
  constructor(parts: ModelParts) {
    this.dir = parts.dir;
    this.config = parts.config;
    this.generationDefaults = parts.generationDefaults;
    this.tokenizer = parts.tokenizer;
    this.template = parts.template;
    this.contextLength = parts.contextLength;
    this.handle = parts.handle;
    this.maxInputPixels = parts.maxInputPixels;
    const media = (this.media = parts.media ?? defaultMediaPolicy());
    this.budget = Object.freeze({ ...parts.budget });
    this.specialTokensInUserText = parts.specialTokensInUserText ?? true;
    this.placement = Object.freeze({ ...parts.placement });
    const engine = resolveEngineOptions(parts.engine, parts.budget.maxMemoryBytes);
    this.engine = new Engine({ handle: parts.handle, kvBytesPerToken: kvBytesPerToken(parts.config, engine.kvCache) }, engine);
    const { imageConfig, videoConfig } = parts;
    const decode = parts.maxInputPixels ? { maxInputPixels: parts.maxInputPixels } : {};
    this.processor = {
      config: imageConfig,
      videoConfig,
      processImages: (images) =>
        guardAsync('processImages', async () =>
          processImagesImpl(checkArray('processImages: images', images, 'an array of images', MAX_IMAGES) as typeof images, imageConfig, { ...decode, media }),
        ),
      processVideo: (video, options = {}) =>
        guardAsync('processVideo', async () => {
          const o = guard('processVideo: options', () => ({ ...options }));
          return processVideoImpl(video, videoConfig, { ...decode, ...o, media: await resolveMediaPolicy(o.media, media) });
        }),
    };
  }

  /** True once {@link dispose} has run. */
  get disposed(): boolean {
    return this.handle === null;
  }

  private live(): NativeHandle {
    if (this.handle === null) throw new QwenVLError('E_DISPOSED', `model ${this.dir} has been disposed`);
    return this.handle;
  }

  /** Runs `body` as a request that dispose() (and `signal`, if given) can cancel. */
  private async request<T>(what: string, signal: AbortSignal | undefined, body: (cancel: RequestCancel) => Promise<T>): Promise<T> {
    this.live();
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw inputError(`${what}: signal must be an AbortSignal`);
    const cancel = new RequestCancel(what, signal);
    this.running.add(cancel);
    try {
      return await body(cancel);
    } finally {
      this.running.delete(cancel);
      cancel.close();
    }
  }

  private loopContext(cancel: RequestCancel): LoopContext {
    const eos = this.generationDefaults.eosTokenIds.length > 0 ? this.generationDefaults.eosTokenIds : this.config.tokens.eosTokenIds;
    return {
      cancel,
      handle: this.live(),
      hidden: this.config.text.hiddenSize,
      imageTokenId: this.config.tokens.imageTokenId,
      videoTokenId: this.config.tokens.videoTokenId,
      eosTokenIds: eos,
      padTokenId: this.generationDefaults.padTokenId ?? this.tokenizer.specialIds.pad ?? eos[0] ?? 0,
      contextLength: this.contextLength,
      kvDtype: this.engine.options.kvCache,
      spatialMergeSize: this.config.vision.spatialMergeSize,
    };
  }

  /**
   * A snapshot of the model's engine, the running batch that concurrent {@link chat} and
   * {@link stream} calls share: requests waiting, sequences running, tokens computed, KV memory in
   * use, and the vision-feature and prefix caches' hits, misses and sizes (see {@link EngineStats}).
   */
  stats(): EngineStats {
    this.live();
    return this.engine.stats();
  }

  /**
   * Renders, tokenizes and processes conversations into model inputs (what {@link logits} and
   * generation run on). A single conversation gives a batch of one.
   */
  async prepare(messages: Conversation | readonly Conversation[], options?: PrepareOptions): Promise<PreparedInputs> {
    const o = readPrepareOptions('prepare', options);
    return guardAsync('prepare: messages', () => this.prepareWith(messages, o));
  }

  /** prepare() with checked options; the prompt must fit the context. */
  private async prepareWith(messages: Conversation | readonly Conversation[], options: PrepareOptions): Promise<PreparedInputs> {
    this.live();
    const batch = isBatch(messages) ? messages : [messages as Conversation];
    const media = await resolveMediaPolicy(options.media, this.media);
    return prepareInputs(
      {
        config: this.config,
        tokenizer: this.tokenizer,
        template: this.template,
        imageConfig: this.processor.config,
        videoConfig: this.processor.videoConfig,
        ...(this.maxInputPixels ? { maxInputPixels: this.maxInputPixels } : {}),
        media,
        maxVisualTokens: this.budget.maxVisualTokens,
      },
      batch,
      {
        plainUserText: !(options.specialTokensInUserText ?? this.specialTokensInUserText),
        contextLength: this.contextLength,
        ...(options.tools ? { tools: options.tools } : {}),
        ...(options.templateVariables ? { templateVariables: options.templateVariables } : {}),
      },
    );
  }

  /**
   * Counts the vision and text tokens of a request, and estimates its peak memory for
   * `maxTokens` new tokens, without running the model (images are decoded and resized).
   */
  async estimateTokens(messages: Conversation | readonly Conversation[], options?: EstimateOptions): Promise<TokenEstimate> {
    const o = readEstimateOptions('estimateTokens', options);
    return guardAsync('estimateTokens: messages', async () => this.estimate(await this.prepareWith(messages, o), o.maxTokens ?? 0));
  }

  private estimate(p: PreparedInputs, maxTokens: number): TokenEstimate {
    const merge = this.config.vision.spatialMergeSize ** 2;
    const imageTokens = p.imageGridThw.reduce((n, [t, h, w]) => n + (t * h * w) / merge, 0);
    const videoTokens = p.videoGridThw.reduce((n, [t, h, w]) => n + (t * h * w) / merge, 0);
    const realTokens = p.padding.reduce((n, pad) => n + p.seqLength - pad, 0);
    const patches = [...p.imageGridThw, ...p.videoGridThw].reduce((n, [t, h, w]) => n + t * h * w, 0);
    return {
      imageTokens,
      videoTokens,
      textTokens: realTokens - imageTokens - videoTokens,
      promptTokens: p.batchSize * p.seqLength,
      batchSize: p.batchSize,
      memoryBytes: estimateMemory(this.config, patches, p.batchSize, p.seqLength, maxTokens, this.engine.options.kvCache),
    };
  }

  /**
   * Merged vision embeddings of images: a [tokens, hidden] f32 {@link Tensor}, rows in image order.
   * `signal` rejects the call with E_ABORTED, stopping the vision tower within one block.
   */
  async encodeImages(images: readonly (ImageInput | ImageItem)[], options: { signal?: AbortSignal } = {}): Promise<Tensor> {
    return this.request('encodeImages', options.signal, async (cancel) => {
      const handle = this.live();
      const p = await cancel.race(this.processor.processImages(images));
      const grids = Int32Array.from(p.imageGridThw.flat());
      const r = await native.modelEncodeVision(handle, p.pixelValues, p.shape[1], grids, false, cancel.token);
      cancel.throwIfCancelled();
      return tensorFromNative(r.embeds);
    });
  }

  /**
   * Logits for prepared inputs: the last position of each row ([batch, vocab]), or with
   * `all: true` every position ([batch × seqLength, vocab]). `signal` rejects the call with
   * E_ABORTED, stopping the vision tower or the prefill within one layer.
   */
  async logits(inputs: PreparedInputs, options?: { all?: boolean; signal?: AbortSignal }): Promise<Tensor> {
    const o = readLogitsOptions('logits', options);
    checkPrepared('logits: inputs', inputs, this.config);
    if (inputs.seqLength > this.contextLength) throw contextOverflow(String(inputs.seqLength), this.contextLength);
    return this.request('logits', o.signal, async (cancel) => {
      const ctx = this.loopContext(cancel);
      checkBudget(this.estimate(inputs, 0), this.budget);
      // The features stay native: only the logits asked for come back.
      const vision = await encodeFeatures(ctx, inputs);
      try {
        const r = await prefillOnce(ctx, inputs, vision, o.all ? 'all' : 'last');
        cancel.throwIfCancelled();
        return tensorFromNative(r.logits!);
      } finally {
        if (vision) native.disposeHandle(vision.features);
      }
    });
  }

  /**
   * Every intermediate stage for prepared inputs (vision patch embedding and blocks, merged
   * vision embeddings, token embeddings, each decoder layer's input, final hidden states) and the
   * logits at every position: what `qwenvl conformance` compares against reference dumps.
   * @internal
   */
  async trace(inputs: PreparedInputs): Promise<{ stages: Map<string, Tensor>; logits: Tensor }> {
    return this.request('trace', undefined, async (cancel) => {
      const ctx = this.loopContext(cancel);
      const stages = new Map<string, Tensor>();
      const vision = await encodePrepared(ctx, inputs, (kind, r) => {
        for (const [name, t] of r.trace) stages.set(`${kind}_${name}`, tensorFromNative(t));
        stages.set(`${kind}_embeds`, tensorFromNative(r.embeds));
        r.deepstack.forEach((d, i) => stages.set(`deepstack_${kind}_embeds.${i}`, tensorFromNative(d)));
      });
      const r = await prefillOnce(ctx, inputs, vision, 'all', true);
      cancel.throwIfCancelled();
      for (const [name, t] of r.trace) stages.set(name, tensorFromNative(t));
      return { stages, logits: tensorFromNative(r.logits!) };
    });
  }

  /**
   * Answers a conversation. With a batch of conversations, resolves to one result per row.
   * Abort through `options.signal` stops the request wherever it is (preprocessing, the vision
   * tower or the prefill within one layer, between decode steps) and resolves with the text so far
   * and `finishReason: 'abort'`. {@link Model.dispose} during the call rejects it with E_DISPOSED.
   */
  async chat(messages: Conversation, options?: GenerateOptions & RequestOptions): Promise<ChatResult>;
  async chat(messages: readonly Conversation[], options?: GenerateOptions & RequestOptions): Promise<ChatResult[]>;
  async chat(
    messages: Conversation | readonly Conversation[],
    options?: GenerateOptions & RequestOptions,
  ): Promise<ChatResult | ChatResult[]> {
    const o = resolveGenerateOptions(options, this.generationDefaults);
    return guardAsync('chat', async () => {
      const results = await this.run(messages, o, undefined);
      return isBatch(messages) ? results : results[0];
    });
  }

  /**
   * Streams the answer to one conversation as text chunks (never splitting a character or a
   * stop string); the chunks join to {@link ChatResult.text}: a thinking block and tool calls are not
   * in them ({@link Model.streamEvents} streams those too). The iterator ends at end-of-sequence, a
   * stop string, maxTokens or abort, returns the {@link ChatResult}, and throws E_DISPOSED when
   * {@link Model.dispose} runs before it ends.
   */
  async *stream(messages: Conversation, options?: GenerateOptions & RequestOptions): AsyncGenerator<string, ChatResult, undefined> {
    const events = this.streamEvents(messages, options);
    let step = await events.next();
    try {
      for (; !step.done; step = await events.next()) if (step.value.type === 'text') yield step.value.text;
    } finally {
      // A consumer that stops iterating stops the generation.
      if (!step.done) await events.return(undefined as never);
    }
    return step.value;
  }

  /**
   * Streams the answer to one conversation as typed events, in reply order: `text` chunks of the
   * answer, `reasoning` chunks of the thinking block, and, when the request gave `tools`, each
   * `tool_call` once complete (or `tool_call_error` for a malformed one). Texts never split a
   * character, a stop string or a tag. Ends and returns the {@link ChatResult} as {@link Model.stream}.
   */
  async *streamEvents(messages: Conversation, options?: GenerateOptions & RequestOptions): AsyncGenerator<ChatStreamEvent, ChatResult, undefined> {
    const o = resolveGenerateOptions(options, this.generationDefaults);
    const queue: ChatStreamEvent[] = [];
    let wake: (() => void) | null = null;
    let finished = false;
    let failure: unknown;
    let result: ChatResult | undefined;
    // A consumer that stops iterating (break, return, throw) stops the generation too.
    const stop = new AbortController();
    const signal = o.signal ? AbortSignal.any([o.signal, stop.signal]) : stop.signal;
    const running = guardAsync('stream', () => this.run(messages, { ...o, signal }, (row, event) => {
      if (row === 0) {
        queue.push(event);
        wake?.();
      }
    })).then(
      (r) => {
        result = r[0];
        finished = true;
        wake?.();
      },
      (e) => {
        failure = e;
        finished = true;
        wake?.();
      },
    );
    try {
      for (;;) {
        if (queue.length > 0) {
          yield queue.shift()!;
          continue;
        }
        if (finished) break;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
    } finally {
      stop.abort();
      await running;
    }
    if (failure !== undefined) throw failure;
    return result!;
  }

  private async run(
    messages: Conversation | readonly Conversation[],
    o: ResolvedGenerateOptions,
    onEvent: ((row: number, event: ChatStreamEvent) => void) | undefined,
  ): Promise<ChatResult[]> {
    return this.request('chat', o.signal, (cancel) => this.generate(messages, o, cancel, onEvent));
  }

  private async generate(
    messages: Conversation | readonly Conversation[],
    o: ResolvedGenerateOptions,
    cancel: RequestCancel,
    onEvent: ((row: number, event: ChatStreamEvent) => void) | undefined,
  ): Promise<ChatResult[]> {
    const ctx = this.loopContext(cancel);
    // An abort during preprocessing resolves at once, before any token exists.
    const p = await cancel.race(this.prepareWith(messages, o)).catch((e: unknown) => {
      if (cancel.reason === 'abort' && cancel.isCancellation(e)) return null;
      throw e;
    });
    if (p === null) {
      const rows = isBatch(messages) ? messages.length : 1;
      return Array.from({ length: rows }, () => ({
        text: '',
        tokens: [],
        usage: { promptTokens: 0, completionTokens: 0, totalTokens: 0 },
        finishReason: 'abort' as const,
      }));
    }
    // The context first: a prompt that cannot fit is E_CONTEXT_OVERFLOW at any size, never a budget error.
    if (p.seqLength >= this.contextLength) throw contextOverflow(String(p.seqLength), this.contextLength);
    checkBudget(this.estimate(p, Math.min(o.maxTokens, Math.max(0, this.contextLength - p.seqLength))), this.budget);
    const B = p.batchSize;
    if (o.responseFormat) {
      this.grammars ??= new ModelGrammars(this.tokenizer, this.config.text.vocabSize);
      const eos = o.eosTokenIds.length > 0 ? o.eosTokenIds : ctx.eosTokenIds;
      ctx.constraints = await this.grammars.constraints(o.responseFormat, eos, p.promptTexts.map(promptOpensThinking));
    }
    const decoders = Array.from({ length: B }, () => this.tokenizer.createStreamDecoder({ skipSpecialTokens: true }));
    const stops = Array.from({ length: B }, () => new StopMatcher(o.stop));
    const texts = new Array<string>(B).fill('');
    const tokens = Array.from({ length: B }, () => [] as number[]);
    const reasons = new Array<FinishReason | null>(B).fill(null);
    // Each row's reply split as it streams: reasoning, answer text, tool calls.
    const replies = Array.from({ length: B }, (_, b) => new ReplyParser({
      thinking: promptOpensThinking(p.promptTexts[b]),
      tools: o.tools !== undefined,
      makeId: toolCallIds(o.seed, b, p.promptTexts[b]),
    }));
    const emit = (b: number, chunk: string) => {
      if (!chunk) return;
      texts[b] += chunk;
      for (const event of replies[b].push(chunk)) onEvent?.(b, event);
    };
    try {
      // Each token as it is chosen; a stop string ends its row before the next step.
      await runOnEngine(ctx, this.engine, p, o, (b, tok, eos) => {
        if (reasons[b] !== null) return true;
        tokens[b].push(tok);
        if (eos) {
          reasons[b] = 'stop';
          return true;
        }
        const { emit: safe, stopped } = stops[b].push(decoders[b].push(tok));
        emit(b, safe);
        if (stopped) reasons[b] = 'stop';
        return stopped;
      });
    } catch (e) {
      // The signal's abort (native E_ABORTED included) ends the rows still running; anything
      // else, dispose() included, rejects.
      if (!(cancel.reason === 'abort' && cancel.isCancellation(e))) throw e;
    }
    if (cancel.reason === 'dispose') throw cancel.error();
    const aborted = cancel.reason === 'abort';
    return texts.map((_, b) => {
      if (reasons[b] === null) emit(b, stops[b].push(decoders[b].flush()).emit + stops[b].flush());
      for (const event of replies[b].end()) onEvent?.(b, event);
      const { text, ...reply } = replies[b].fields();
      const promptTokens = p.seqLength - p.padding[b];
      const reason = reasons[b] ?? (aborted ? 'abort' : 'length');
      return {
        text,
        ...reply,
        tokens: tokens[b],
        usage: { promptTokens, completionTokens: tokens[b].length, totalTokens: promptTokens + tokens[b].length },
        finishReason: reason === 'stop' && replies[b].endsWithToolCall ? 'tool_calls' : reason,
        // The answer's boxes: not those drafted in the reasoning, nor tool-call arguments.
        ...chatGrounding(this.config.family, this.tokenizer, p, b, tokens[b], text),
      };
    });
  }

  /**
   * Frees the native model. Calls made later, and `chat`, `stream`, `logits`, `encodeImages`
   * calls still running, reject with E_DISPOSED; a running one stops its native work within one
   * layer. A call its signal aborted first still resolves (or rejects) as aborted. The memory is
   * returned once the last running native step has stopped.
   */
  dispose(): void {
    if (this.handle !== null) {
      for (const cancel of this.running) cancel.cancel('dispose');
      this.engine.dispose();
      this.grammars?.dispose();
      native.disposeHandle(this.handle);
      this.handle = null;
    }
  }

  /**
   * `await using model = await loadModel(...)` disposes it at the end of the scope, and resolves
   * once every call it cancelled has settled (its native work stopped, its memory returned).
   */
  async [Symbol.asyncDispose](): Promise<void> {
    const settling = [...this.running].map((c) => c.settled);
    this.dispose();
    await Promise.all(settling);
    // The calls' own promises settle a few microtasks after their requests end: one turn of the
    // event loop lets every one of them settle before the scope's end is reported.
    if (settling.length > 0) await new Promise((resolve) => setImmediate(resolve));
  }
}
