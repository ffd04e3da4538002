/**
 * The engine of one loaded model: every `chat()`/`stream()` call (and a server's requests) shares
 * one scheduler, so concurrent requests join and leave one running batch at any step. One loop
 * runs, in turn, a vision encode (one image or video run at a time, its own stage: encodes
 * alternate with decode steps, so a large image delays the running streams by one encode, never
 * more) and a scheduler step (every running sequence's decode token plus prefill chunks under the
 * token budget). A request waits first for the vision stage (skipped on a vision-cache hit), then
 * for admission (KV memory, running cap); one that could never fit is refused at once. A request's
 * abort cancels its own encode (its cancel token) and its sequences (their KV freed at once or
 * right after the step in flight); a step none of whose sequences is left stops within a layer
 * (each step has a token of its own, which dispose() sets too).
 * @internal
 * @module
 */
import { QwenVLError } from '../errors.js';
import { native, type NativeCancelToken, type NativeEncodedFeatures, type NativeHandle } from '../native/binding.js';
import type { PreparedInputs } from '../model/inputs.js';
import { Scheduler, type GroupSpec, type Sequence } from './scheduler.js';
import { VisionCache, visionItemHashes, visionKey, type VisionCacheStats, type VisionEntry } from './vision-cache.js';
import type { PrefixCacheStats } from './prefix-cache.js';

/**
 * How a loaded model shares its work between concurrent requests ({@link LoadOptions.engine}).
 * Every field is optional.
 */
export interface EngineOptions {
  /** Most sequences in the running batch (a batched call's rows count one each). Default 32. */
  maxRunning?: number;
  /** Most requests waiting (for the vision stage or for admission); more are refused with E_BUSY. Default 256. */
  maxQueue?: number;
  /**
   * Most tokens one step computes: the running sequences' decode tokens plus prefill chunks, so a
   * long prompt is prefilled over several steps while the others keep decoding. Default 256.
   */
  tokenBudget?: number;
  /**
   * KV cache bytes shared by the running sequences (each reserves prompt + maxTokens) and the
   * prefix cache. Default: the model's `maxMemoryBytes`.
   */
  kvMemoryBytes?: number;
  /** Most bytes of cached vision features (0: no vision cache). Default 256 MiB. */
  visionCacheBytes?: number;
  /** Most KV bytes the prefix cache keeps (0: none). Default: a quarter of `kvMemoryBytes`. */
  prefixCacheBytes?: number;
  /**
   * How the KV cache stores keys and values: `'f32'` (the default, exact; under `precision: 'fast'`
   * the default is `'bf16'`) or `'bf16'`, half the
   * memory per token (twice the tokens in `kvMemoryBytes`, so longer video prompts or more
   * concurrent sequences), with keys and values rounded to bf16 once as they are stored; attention
   * reads them as stored. Applies to every sequence of the model (and to `logits()`). Its accuracy
   * against f32 is measured in README, "Concurrency and caches".
   */
  kvCache?: KvCacheDtype;
}

/** The KV cache's storage choices ({@link EngineOptions.kvCache}). */
export type KvCacheDtype = 'f32' | 'bf16';

/** The engine's settings with every default filled in. @internal */
export type ResolvedEngineOptions = Required<EngineOptions>;

/**
 * A snapshot of a model's engine ({@link Model.stats}): its queue, the running batch, the tokens it
 * computed and the caches' hit counts and sizes. Counters grow from the model's load.
 */
export interface EngineStats {
  /** Requests waiting for the vision stage or for admission. */
  queued: number;
  /** Sequences in the running batch (prefilling or decoding). */
  running: number;
  /** Vision encodes waiting or running. */
  visionQueued: number;
  /** Forward steps run. */
  steps: number;
  /** Prompt tokens prefilled (tokens a prefix-cache hit skipped are not counted). */
  promptTokens: number;
  /** Tokens generated. */
  generatedTokens: number;
  /** Vision encodes run (cache misses). */
  visionEncodes: number;
  /** KV memory: bytes reserved by running sequences plus the prefix cache's, and the limit. */
  kv: { usedBytes: number; capacityBytes: number };
  /** Hits and misses per request with images or videos; `savedSeconds`: vision tower time the hits skipped. */
  visionCache: { hits: number; misses: number; entries: number; bytes: number; capacityBytes: number; savedSeconds: number };
  /** Hits and misses per prompt; `savedTokens`: prompt tokens whose prefill the hits skipped. */
  prefixCache: { hits: number; misses: number; entries: number; bytes: number; capacityBytes: number; savedTokens: number };
}

/** Engine defaults given the model's memory budget. @internal */
export function resolveEngineOptions(o: EngineOptions | undefined, maxMemoryBytes: number): ResolvedEngineOptions {
  const kvMemoryBytes = o?.kvMemoryBytes ?? maxMemoryBytes;
  return {
    maxRunning: o?.maxRunning ?? 32,
    maxQueue: o?.maxQueue ?? 256,
    tokenBudget: o?.tokenBudget ?? 256,
    kvMemoryBytes,
    visionCacheBytes: o?.visionCacheBytes ?? 256 * 2 ** 20,
    prefixCacheBytes: o?.prefixCacheBytes ?? Math.floor(kvMemoryBytes / 4),
    kvCache: o?.kvCache ?? 'f32',
  };
}

/** What the engine needs to know of its model. @internal */
export interface EngineModel {
  handle: NativeHandle;
  /** KV bytes one token takes (every layer's keys and values, at the options' kvCache width). */
  kvBytesPerToken: number;
}

/** A request's vision features from the vision stage; release once its prompt is in the cache. @internal */
export interface AcquiredFeatures {
  enc: NativeEncodedFeatures;
  /** Each image's and video's identity, in feature-row order (for prefix-cache tags). */
  items: string[];
  release(): void;
}

/** One vision encode, shared by the requests waiting for the same key. */
interface VisionJob {
  key: string;
  p: PreparedInputs;
  /** Its own token: set when every waiting request has gone, or on dispose. */
  token: NativeCancelToken;
  waiters: number;
  started: boolean;
  done: Promise<VisionEntry>;
  settle: { resolve(e: VisionEntry): void; reject(e: unknown): void };
}

/** A request's place in the queue: held from its arrival until its sequences are admitted. @internal */
export interface QueueTicket {
  release(): void;
}

/** Most image identities remembered for prefix-cache tags (an image seen again after that gets a new tag: a miss, never a false hit). */
const MAX_TAG_IDS = 1 << 16;
/** A visual token's tag: its image's id above its row within the image. */
const TAG_ROW_SPAN = 2 ** 24;

/** @internal */
export class Engine {
  readonly scheduler: Scheduler;
  readonly options: ResolvedEngineOptions;
  private readonly cache: VisionCache;
  private readonly jobs: VisionJob[] = [];
  private readonly inflight = new Map<string, VisionJob>();
  private waiting = 0;
  private visionEncodes = 0;
  private loop: Promise<void> | null = null;
  private kickAgain = false;
  private disposed = false;
  private readonly tagIds = new Map<string, number>();
  private nextTagId = 1;

  constructor(
    private readonly model: EngineModel,
    options: ResolvedEngineOptions,
  ) {
    this.options = options;
    this.scheduler = new Scheduler({
      model: model.handle,
      kvDtype: options.kvCache,
      tokenBudget: options.tokenBudget,
      maxRunning: options.maxRunning,
      kvBytesPerToken: model.kvBytesPerToken,
      kvBytes: options.kvMemoryBytes,
      prefixCacheBytes: Math.min(options.prefixCacheBytes, options.kvMemoryBytes),
    });
    this.cache = new VisionCache(options.visionCacheBytes);
  }

  /** A place in the queue for a new request; E_BUSY when maxQueue requests already wait. */
  enter(): QueueTicket {
    this.live();
    if (this.waiting >= this.options.maxQueue) {
      throw new QwenVLError('E_BUSY', `the model is busy: ${this.waiting} requests are waiting (engine.maxQueue ${this.options.maxQueue}); try again later`);
    }
    this.waiting += 1;
    let held = true;
    return {
      release: () => {
        if (held) this.waiting -= 1;
        held = false;
      },
    };
  }

  /** E_INPUT at once when a group could never be admitted (see Scheduler.checkFits). */
  checkFits(group: GroupSpec): void {
    this.scheduler.checkFits(group);
  }

  /**
   * The vision features of a prompt through the vision stage: from the cache, or encoded when the
   * loop's turn comes (requests waiting for the same pixels share one encode). `cancelled` rejects
   * the wait at once (and stops the encode when no other request waits for it).
   */
  async features(p: PreparedInputs, onCancel: (cb: () => void) => () => void, cancelError: () => Error): Promise<AcquiredFeatures | null> {
    if (!p.pixelValues && !p.pixelValuesVideos) return null;
    this.live();
    const items = visionItemHashes(p);
    const key = visionKey(p, items);
    const wrap = (e: VisionEntry): AcquiredFeatures => {
      let held = true;
      return {
        enc: e.enc,
        items,
        release: () => {
          if (held) this.cache.release(e);
          held = false;
        },
      };
    };
    const hit = this.cache.acquire(key);
    if (hit) return wrap(hit);
    let job = this.inflight.get(key);
    if (!job) {
      let settle!: VisionJob['settle'];
      const done = new Promise<VisionEntry>((resolve, reject) => (settle = { resolve, reject }));
      done.catch(() => undefined);
      job = { key, p, token: native.newCancelToken(), waiters: 0, started: false, done, settle };
      this.inflight.set(key, job);
      this.jobs.push(job);
      this.kick();
    }
    const j = job;
    j.waiters += 1;
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      j.waiters -= 1;
      if (j.waiters === 0) this.dropJob(j);
    };
    return new Promise<AcquiredFeatures>((resolve, reject) => {
      const off = onCancel(() => {
        leave();
        reject(cancelError());
      });
      j.done.then(
        (e) => {
          off();
          if (left) return;
          left = true;
          j.waiters -= 1;
          e.refs += 1; // each waiter holds its own pin
          resolve(wrap(e));
        },
        (err) => {
          off();
          if (!left) {
            left = true;
            j.waiters -= 1;
          }
          reject(err);
        },
      );
    });
  }

  /**
   * Per prompt token of `ids`, its visual tag for the prefix cache: 0 for text, else its image's id
   * (by pixels) and its row within the image.
   */
  tags(rows: Int32Array, items: readonly string[], itemTokens: readonly number[]): Float64Array {
    const starts: number[] = [];
    let at = 0;
    for (const n of itemTokens) {
      starts.push(at);
      at += n;
    }
    const ids = items.map((h) => this.tagId(h));
    const tags = new Float64Array(rows.length);
    let item = 0;
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      if (r < 0) continue;
      while (item + 1 < starts.length && r >= starts[item + 1]) item++;
      while (item > 0 && r < starts[item]) item--;
      tags[i] = ids[item] * TAG_ROW_SPAN + (r - starts[item]) + 1;
    }
    return tags;
  }

  /** Queues a group (checked by Scheduler.submit) and makes sure the loop runs. */
  submit(group: GroupSpec): Sequence[] {
    this.live();
    const seqs = this.scheduler.submit(group);
    this.kick();
    return seqs;
  }

  stats(): EngineStats {
    const s = this.scheduler.stats;
    const vision: VisionCacheStats = this.cache.stats();
    const prefix: PrefixCacheStats = this.scheduler.prefixStats();
    return {
      queued: this.waiting,
      running: this.scheduler.running,
      visionQueued: this.jobs.length,
      steps: s.steps,
      promptTokens: s.promptTokens,
      generatedTokens: s.generated,
      visionEncodes: this.visionEncodes,
      kv: { usedBytes: this.scheduler.kvUsedBytes, capacityBytes: this.options.kvMemoryBytes },
      visionCache: vision,
      prefixCache: prefix,
    };
  }

  /** Stops the step in flight, cancels every sequence and encode, frees the session and the caches. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const j of [...this.jobs]) {
      native.cancelToken(j.token, 'dispose');
      this.dropJob(j);
    }
    this.scheduler.dispose();
    this.cache.clear();
  }

  private live(): void {
    if (this.disposed) throw new QwenVLError('E_DISPOSED', 'the model has been disposed');
  }

  private tagId(hash: string): number {
    let id = this.tagIds.get(hash);
    if (id === undefined) {
      if (this.tagIds.size >= MAX_TAG_IDS) this.tagIds.delete(this.tagIds.keys().next().value!);
      id = this.nextTagId++;
      this.tagIds.set(hash, id);
    }
    return id;
  }

  /** A job nobody waits for: cancelled (running) or dropped (queued). */
  private dropJob(j: VisionJob): void {
    if (this.inflight.get(j.key) === j) this.inflight.delete(j.key);
    if (j.started) {
      native.cancelToken(j.token, 'abort');
    } else {
      const i = this.jobs.indexOf(j);
      if (i >= 0) this.jobs.splice(i, 1);
      j.settle.reject(new QwenVLError('E_ABORTED', 'vision encode: no request waits for it'));
    }
  }

  private kick(): void {
    if (this.loop !== null) {
      // The loop picks new work up, unless it is just ending: then it runs once more.
      this.kickAgain = true;
      return;
    }
    this.loop = this.run().finally(() => {
      this.loop = null;
      if (this.kickAgain && !this.disposed) {
        this.kickAgain = false;
        this.kick();
      }
    });
  }

  /** Vision encodes and steps in turn until neither has work. */
  private async run(): Promise<void> {
    this.kickAgain = false;
    let visionTurn = true;
    while (!this.disposed) {
      const canStep = !this.scheduler.idle;
      if (this.jobs.length > 0 && (visionTurn || !canStep)) {
        await this.encode(this.jobs.shift()!);
        visionTurn = false;
        continue;
      }
      if (!canStep) return;
      // A failed step has failed its own sequences; the others go on.
      const ran = await this.scheduler.step().catch(() => true);
      visionTurn = true;
      if (!ran && this.jobs.length === 0) return;
    }
  }

  private async encode(j: VisionJob): Promise<void> {
    j.started = true;
    const runs = {
      ...(j.p.pixelValues ? { images: { pixels: j.p.pixelValues, patchDim: j.p.patchDim, grids: Int32Array.from(j.p.imageGridThw.flat()) } } : {}),
      ...(j.p.pixelValuesVideos
        ? { videos: { pixels: j.p.pixelValuesVideos, patchDim: j.p.videoPatchDim, grids: Int32Array.from(j.p.videoGridThw.flat()) } }
        : {}),
    };
    const t0 = performance.now();
    try {
      const enc = await native.modelEncodeFeatures(this.model.handle, runs, j.token);
      this.visionEncodes += 1;
      // Pinned once for the first waiter; others pin their own (see features()).
      // Unpinned: each waiter pins it as it takes it (see features()).
      const e = this.cache.add(j.key, enc, (performance.now() - t0) / 1000);
      // Everyone left while it ran: it stays cached unpinned, or goes now.
      if ((j.waiters === 0 || this.disposed) && e.evicted) native.disposeHandle(enc.features);
      j.settle.resolve(e);
    } catch (err) {
      j.settle.reject(err);
    } finally {
      if (this.inflight.get(j.key) === j) this.inflight.delete(j.key);
    }
  }
}
