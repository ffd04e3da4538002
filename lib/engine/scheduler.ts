/**
 * The one generation loop: a queue of sequences over one native session (its KV pool). Each step
 * runs one forward that takes the decode token of every running sequence plus prefill chunks of
 * waiting ones under a token budget (a prompt longer than the budget is prefilled over several
 * steps), samples natively, and hands each sequence its token. Sequences join at any step (they are
 * admitted to the pool between steps) and leave as soon as they finish, stop or are cancelled: their
 * KV slot is freed at once, or right after the step in flight.
 *
 * Sequences are submitted in groups. A group is what one call asks for (one conversation, or a
 * batched call's rows): its rows share one sampler RNG and draw from it in row order, exactly as a
 * batched call always has, so a seed replays a batch whatever the budget; separate groups have RNGs
 * of their own and never change each other's draws. For that, a group's prompts end their prefill
 * in the same step. A group may bring vision features (a native handle): its prompts' visual tokens
 * read their rows from it, and it is freed once every prompt of the group is in the cache.
 *
 * Admission is first come first served, by KV memory and a cap on running sequences: a group joins
 * when its sequences' slots (prompt + maxTokens each) fit beside the running ones (prefix-cache
 * entries are evicted to make room); a group that could never fit is refused at submit. With a
 * prefix cache, a sequence that ends gives its slot to the cache rather than freeing it, and a new
 * sequence whose prompt starts with a cached one copies that prefix's KV and prefills the rest.
 *
 * The engine (lib/engine/engine.ts) shares one scheduler per loaded model between every request;
 * tokenLoop (lib/model/generate.ts) still drives a private one step by step. One group's vision
 * features per step (another group's visual chunk waits a step).
 * @internal
 * @module
 */
import { QwenVLError } from '../errors.js';
import { PrefixCache, type PrefixCacheStats, type PrefixKey } from './prefix-cache.js';
import {
  native,
  type NativeCancelToken,
  type NativeForwardArgs,
  type NativeHandle,
  type NativeSamplingParams,
  type NativeTokenConstraint,
  type NativeVisionFeatures,
} from '../native/binding.js';

/** One prompt to continue. @internal */
export interface SequenceSpec {
  /** Prompt token ids (no padding). */
  ids: Int32Array;
  /** [3][ids.length]: each prompt token's (t, h, w) M-RoPE position. */
  positions: Int32Array;
  /** Position, on every axis, of the first generated token; each later one is one more. */
  nextPosition: number;
  /** Row of the group's vision features each prompt token takes (-1: a text token). */
  visualRows?: Int32Array;
  /**
   * The repetition history's start: the prompt row as transformers counts it (a batched call's
   * left padding included). Every sequence of a group gives the same number of ids.
   */
  history: Int32Array;
  /** Most tokens to generate (>= 1). */
  maxTokens: number;
  /**
   * Per prompt token, its visual identity for the prefix cache: 0 for a text token, else a number
   * naming the image (or video) by its pixels and the row within it. Without tags the prompt's
   * visual tokens (if any) never match a cached prefix past the first of them.
   */
  tags?: Float64Array;
  /** Each chosen token, in order (`eos`: an end-of-sequence id); return true to stop there. */
  onToken?(token: number, eos: boolean): boolean | void;
  /** Structured output: the grammar its tokens are drawn under (natively, in the sampler). */
  constraint?: NativeTokenConstraint;
}

/** Sequences submitted together (one call). @internal */
export interface GroupSpec {
  sequences: SequenceSpec[];
  sampling: NativeSamplingParams;
  seed: number;
  eosTokenIds: readonly number[];
  /** Vision features the sequences' `visualRows` point into; the scheduler disposes them (or calls `releaseFeatures`). */
  features?: NativeVisionFeatures;
  /** Called instead of disposing `features` once every prompt of the group is in the cache (a shared, cached handle). */
  releaseFeatures?(): void;
  /** Called when the group's sequences join the running batch (their KV slots are taken). */
  onAdmit?(): void;
}

/** Why a sequence ended: an end-of-sequence token, maxTokens, its client's stop, or cancel. @internal */
export type SequenceEnd = 'eos' | 'length' | 'stop' | 'cancel';

/** @internal */
export interface SchedulerOptions {
  /** The native model. */
  model: NativeHandle;
  /** The KV pool's storage (default f32, exact). */
  kvDtype?: 'f32' | 'bf16';
  /**
   * Most tokens one step computes (decode tokens + prefill chunks). Default: unlimited, so a
   * prompt is prefilled in one step. Decode tokens always run; a group's last prefill tokens
   * (one per prompt) may pass the budget when nothing else would move.
   */
  tokenBudget?: number;
  /**
   * Every forward carries it: setting it stops the step in flight within one layer (a client that
   * runs one request's scheduler passes the request's token). Without it each step gets a token
   * of its own, set when every sequence of the step has been cancelled (or on dispose), so an
   * abort stops a forward that works for nobody else within one layer.
   */
  cancel?: NativeCancelToken;
  /** Most sequences in the running batch (default unlimited). */
  maxRunning?: number;
  /** KV bytes one token of a sequence takes (every layer's keys and values); with kvBytes. */
  kvBytesPerToken?: number;
  /** Most KV bytes of the running sequences' slots and the prefix cache together (default unlimited). */
  kvBytes?: number;
  /** Most KV bytes the prefix cache keeps (default 0: no prefix cache); needs kvBytesPerToken. */
  prefixCacheBytes?: number;
}

/** A submitted group: its sequences and the features it still holds. @internal */
export interface Group {
  spec: GroupSpec;
  sequences: Sequence[];
  features: NativeVisionFeatures | null;
}

/** A sequence in a scheduler. @internal */
export class Sequence {
  /** Its slot in the session's KV pool (-1 until admitted). */
  slot = -1;
  /** KV bytes its slot reserves while it runs. */
  reserved = 0;
  state: 'queued' | 'prefill' | 'decode' | 'done' = 'queued';
  /** Prompt tokens already in the cache. */
  prefilled = 0;
  /** Tokens chosen so far. */
  readonly tokens: number[] = [];
  end: SequenceEnd | null = null;
  /** Settles when the sequence ends: with its end, or the error that failed its step. */
  readonly done: Promise<SequenceEnd>;
  private settle!: { resolve(e: SequenceEnd): void; reject(e: unknown): void };

  /** @internal */
  constructor(
    private readonly scheduler: Scheduler,
    readonly spec: SequenceSpec,
    readonly group: Group,
  ) {
    this.done = new Promise<SequenceEnd>((resolve, reject) => (this.settle = { resolve, reject }));
    // A client that only drives steps need not await `done`.
    this.done.catch(() => undefined);
  }

  /** Ends the sequence after the tokens it has (a stop string); its KV slot is freed. */
  stop(): void {
    this.scheduler.finish(this, 'stop');
  }

  /** Abandons the sequence; its KV slot is freed at once (or right after the step in flight). */
  cancel(): void {
    this.scheduler.finish(this, 'cancel');
  }

  /** @internal */
  resolve(end: SequenceEnd): void {
    this.settle.resolve(end);
  }

  /** @internal */
  reject(e: unknown): void {
    this.settle.reject(e);
  }
}

/** One row of a step: `count` tokens of a sequence, starting at its `from`-th prompt token (decode: from = -1). */
interface Chunk {
  seq: Sequence;
  from: number;
  count: number;
  /** The row samples its next token: a decode token, or a prefill chunk that ends its prompt. */
  sample: boolean;
}

/** @internal */
export class Scheduler {
  private session: NativeHandle | null;
  private readonly budget: number;
  private readonly cancelToken?: NativeCancelToken;
  /** The step in flight: its chunks and the token its forward polls. */
  private inFlight: { plan: Chunk[]; token: NativeCancelToken } | null = null;
  /** Submitted, not yet in the pool. */
  private readonly queue: Group[] = [];
  /** In the pool, in admission order. */
  private readonly groups: Group[] = [];
  /** Ended sequences' slots to free (or keep in the prefix cache), once no step is in flight. */
  private readonly toFree: { slot: number; key: PrefixKey | null }[] = [];
  private stepping = false;
  private loop: Promise<void> | null = null;
  private readonly maxRunning: number;
  private readonly kvBytesPerToken: number;
  private readonly kvBytes: number;
  /** KV bytes the running sequences' slots reserve. */
  private reservedBytes = 0;
  private readonly prefix: PrefixCache | null;
  /** Steps run, tokens they computed (prefill and decode), and tokens chosen. */
  readonly stats = { steps: 0, tokens: 0, promptTokens: 0, generated: 0 };

  constructor(o: SchedulerOptions) {
    const budget = o.tokenBudget ?? Infinity;
    if (!(budget >= 1)) throw new QwenVLError('E_INPUT', `tokenBudget must be >= 1 (got ${budget})`);
    this.budget = budget;
    this.cancelToken = o.cancel;
    this.maxRunning = o.maxRunning ?? Infinity;
    if (!(this.maxRunning >= 1)) throw new QwenVLError('E_INPUT', `maxRunning must be >= 1 (got ${this.maxRunning})`);
    this.kvBytesPerToken = o.kvBytesPerToken ?? 0;
    this.kvBytes = o.kvBytes ?? Infinity;
    const prefixBytes = o.prefixCacheBytes ?? 0;
    this.session = native.modelNewSession(o.model, 0, 1, o.kvDtype ? { kvDtype: o.kvDtype } : undefined);
    this.prefix =
      prefixBytes > 0 && this.kvBytesPerToken > 0
        ? new PrefixCache(prefixBytes, (slot) => this.session !== null && native.sessionFreeSequence(this.session, slot))
        : null;
  }

  /** Groups waiting for admission. */
  get queued(): number {
    return this.queue.length;
  }

  /** Sequences in the running batch. */
  get running(): number {
    let n = 0;
    for (const g of this.groups) for (const s of g.sequences) if (s.state === 'prefill' || s.state === 'decode') n++;
    return n;
  }

  /** KV bytes in use: the running sequences' reservations and the prefix cache's entries. */
  get kvUsedBytes(): number {
    return this.reservedBytes + (this.prefix?.bytes ?? 0);
  }

  /** The prefix cache's counters (zeros without one). */
  prefixStats(): PrefixCacheStats {
    return this.prefix?.stats() ?? { hits: 0, misses: 0, entries: 0, bytes: 0, capacityBytes: 0, savedTokens: 0 };
  }

  /** KV bytes a group's slots reserve. */
  groupBytes(spec: GroupSpec): number {
    return spec.sequences.reduce((n, s) => n + (s.ids.length + s.maxTokens) * this.kvBytesPerToken, 0);
  }

  /** E_INPUT when the group could never run: more sequences than maxRunning, or more KV than kvBytes. */
  checkFits(spec: GroupSpec): void {
    const n = spec.sequences.length;
    if (n > this.maxRunning) {
      throw new QwenVLError('E_INPUT', `the request has ${n} sequences but at most ${this.maxRunning} run at once (engine.maxRunning)`);
    }
    const need = this.groupBytes(spec);
    if (need > this.kvBytes) {
      const mib = (b: number) => `${Math.ceil(b / 2 ** 20)} MiB`;
      throw new QwenVLError(
        'E_INPUT',
        `the request's KV cache (prompt + maxTokens) needs ${mib(need)}, more than the engine's ${mib(this.kvBytes)}; ` +
          'lower maxTokens or raise engine.kvMemoryBytes',
      );
    }
  }

  /** The native session (its KV pool), for inspection. */
  get nativeSession(): NativeHandle {
    if (this.session === null) throw new QwenVLError('E_DISPOSED', 'the scheduler has been disposed');
    return this.session;
  }

  /** True when no sequence is queued or running. */
  get idle(): boolean {
    return this.queue.length === 0 && this.groups.length === 0;
  }

  /** Queues a group; its sequences join the next step. */
  submit(spec: GroupSpec): Sequence[] {
    if (this.session === null) throw new QwenVLError('E_DISPOSED', 'the scheduler has been disposed');
    const n = spec.sequences.length;
    if (n < 1) throw new QwenVLError('E_INPUT', 'a group needs at least one sequence');
    const histLen = spec.sequences[0].history.length;
    for (const s of spec.sequences) {
      if (s.tags && s.tags.length !== s.ids.length) throw new QwenVLError('E_INPUT', 'tags must hold one per prompt token');
      if (s.ids.length < 1) throw new QwenVLError('E_INPUT', 'a sequence needs at least one prompt token');
      if (s.positions.length !== 3 * s.ids.length) throw new QwenVLError('E_INPUT', 'positions must hold 3 per prompt token');
      if (s.visualRows && s.visualRows.length !== s.ids.length) throw new QwenVLError('E_INPUT', 'visualRows must hold one per prompt token');
      if (s.visualRows && !spec.features) throw new QwenVLError('E_INPUT', 'visualRows need the group\'s vision features');
      if (!(Number.isInteger(s.maxTokens) && s.maxTokens >= 1)) throw new QwenVLError('E_INPUT', 'maxTokens must be an integer >= 1');
      if (s.history.length !== histLen) throw new QwenVLError('E_INPUT', 'every sequence of a group gives the same number of history ids');
    }
    this.checkFits(spec);
    const group: Group = { spec, sequences: [], features: spec.features ?? null };
    group.sequences.push(...spec.sequences.map((s) => new Sequence(this, s, group)));
    this.queue.push(group);
    return group.sequences;
  }

  /**
   * Runs steps until no sequence is left; sequences submitted meanwhile join it. Resolves then
   * (one call at a time: a second call while it runs gets the same promise). A failed step fails
   * its sequences (their `done` rejects) and the loop goes on with the others.
   */
  run(): Promise<void> {
    this.loop ??= (async () => {
      try {
        while (!this.idle && this.session !== null) {
          // A failed step has failed its sequences already; the others go on.
          if (!(await this.step().catch(() => true))) break;
        }
      } finally {
        this.loop = null;
      }
    })();
    return this.loop;
  }

  /**
   * Runs one step: admits queued groups, runs one forward over the planned chunks and hands out
   * the tokens chosen. Resolves false when there was nothing to run. A failed forward fails every
   * sequence of the step (their slots are freed) and rejects with its error.
   */
  async step(): Promise<boolean> {
    const session = this.nativeSession;
    if (this.stepping) throw new QwenVLError('E_INPUT', 'a scheduler step is already running');
    this.admit(session);
    const plan = this.plan();
    if (plan.length === 0) return false;
    const token = this.cancelToken ?? native.newCancelToken();
    const args = { ...this.forwardArgs(plan), cancel: token };
    this.inFlight = { plan, token };
    this.stepping = true;
    let tokens: Int32Array | undefined;
    try {
      tokens = (await native.sessionForward(session, args)).tokens;
    } catch (e) {
      this.stepping = false;
      this.inFlight = null;
      for (const c of plan) this.fail(c.seq, e);
      this.flush();
      throw e;
    }
    this.stepping = false;
    this.inFlight = null;
    this.stats.steps += 1;
    this.stats.tokens += args.ids.length;
    plan.forEach((c, i) => {
      if (c.from >= 0) this.stats.promptTokens += c.count;
      if (c.seq.state === 'done') return; // stopped or cancelled during the step
      if (c.from >= 0) c.seq.prefilled += c.count;
      if (!c.sample) return;
      c.seq.state = 'decode';
      this.stats.generated += 1;
      this.deliver(c.seq, tokens![i]);
    });
    this.flush();
    return true;
  }

  /** Ends a sequence: its slot is freed now, or after the step in flight. */
  finish(seq: Sequence, end: SequenceEnd): void {
    if (seq.state === 'done') return;
    seq.state = 'done';
    seq.end = end;
    this.release(seq);
    seq.resolve(end);
    // A step whose every sequence has ended works for nobody: stop it within a layer.
    const f = this.inFlight;
    if (f && !this.cancelToken && end === 'cancel' && f.plan.every((c) => c.seq.state === 'done')) native.cancelToken(f.token, 'abort');
  }

  /** Frees the session and every sequence's slot; sequences not ended are cancelled. */
  dispose(): void {
    if (this.session === null) return;
    if (this.inFlight && !this.cancelToken) native.cancelToken(this.inFlight.token, 'dispose');
    for (const g of [...this.queue, ...this.groups]) for (const s of g.sequences) this.finish(s, 'cancel');
    this.flush();
    // The prefix cache's slots go with the session.
    native.disposeHandle(this.session);
    this.session = null;
  }

  private fail(seq: Sequence, e: unknown): void {
    if (seq.state === 'done') return;
    seq.state = 'done';
    this.release(seq);
    seq.reject(e);
  }

  private release(seq: Sequence): void {
    if (seq.slot >= 0) {
      // Between steps the slot holds exactly the tokens fed so far: the prefix cache may keep it.
      // One ending during a step may hold a chunk more: freed.
      this.toFree.push({ slot: seq.slot, key: this.prefix && !this.stepping && seq.end !== null ? fedKey(seq) : null });
      seq.slot = -1;
      this.reservedBytes -= seq.reserved;
      seq.reserved = 0;
    }
    if (!this.stepping) this.flush();
  }

  /** Frees the slots of ended sequences, drops finished groups and vision features no prompt still needs. */
  private flush(): void {
    if (this.stepping) return;
    for (const { slot, key } of this.toFree.splice(0)) {
      if (this.session === null) continue;
      if (key && this.prefix) {
        // Trimmed to the tokens it holds, so the entry's bytes are what it keeps.
        const bytes = key.ids.length * this.kvBytesPerToken;
        if (this.reservedBytes + this.prefix.bytes + bytes <= this.kvBytes && this.prefix.offer(slot, key, bytes)) {
          native.sessionGrowSequence(this.session, slot, key.ids.length);
          continue;
        }
      }
      native.sessionFreeSequence(this.session, slot);
    }
    for (const list of [this.queue, this.groups]) {
      for (let i = list.length - 1; i >= 0; i--) {
        const g = list[i];
        if (g.features && g.sequences.every((s) => s.state === 'done' || s.state === 'decode')) {
          this.releaseFeatures(g);
        }
        if (g.sequences.every((s) => s.state === 'done')) list.splice(i, 1);
      }
    }
  }

  private releaseFeatures(g: Group): void {
    if (!g.features) return;
    if (g.spec.releaseFeatures) g.spec.releaseFeatures();
    else native.disposeHandle(g.features);
    g.features = null;
  }

  private deliver(seq: Sequence, token: number): void {
    seq.tokens.push(token);
    const eos = seq.group.spec.eosTokenIds.includes(token);
    const stop = seq.spec.onToken?.(token, eos) === true;
    if (seq.state === 'done') return; // the callback stopped or cancelled it
    if (eos) this.finish(seq, 'eos');
    else if (stop) this.finish(seq, 'stop');
    else if (seq.tokens.length >= seq.spec.maxTokens) this.finish(seq, 'length');
  }

  /**
   * Queued groups get their KV slots and samplers (between steps: the pool is idle), first come
   * first served while they fit: under maxRunning, and within kvBytes once prefix-cache entries
   * are evicted. A sequence whose prompt starts with a cached prefix copies its KV.
   */
  private admit(session: NativeHandle): void {
    while (this.queue.length > 0) {
      const g = this.queue[0];
      const live = g.sequences.filter((s) => s.state !== 'done');
      if (live.length === 0) {
        this.queue.shift();
        this.releaseFeatures(g);
        continue;
      }
      if (this.running + live.length > this.maxRunning) return;
      const need = live.reduce((n, s) => n + (s.spec.ids.length + s.spec.maxTokens) * this.kvBytesPerToken, 0);
      while (this.kvUsedBytes + need > this.kvBytes && this.prefix?.evictOne()) {
        // Cached prefixes give way to sequences that run.
      }
      if (this.kvUsedBytes + need > this.kvBytes) return;
      this.queue.shift();
      this.groups.push(g);
      try {
        for (const s of live) {
          s.slot = native.sessionAddSequence(session, s.spec.ids.length + s.spec.maxTokens);
          s.reserved = (s.spec.ids.length + s.spec.maxTokens) * this.kvBytesPerToken;
          this.reservedBytes += s.reserved;
          s.state = 'prefill';
          const hit = this.prefix?.lookup(promptKey(s.spec));
          if (hit) {
            native.sessionCopyPrefix(session, hit.entry.slot, s.slot, hit.count);
            s.prefilled = hit.count;
          }
        }
        g.spec.onAdmit?.();
        const history = new Int32Array(live.reduce((n, s) => n + s.spec.history.length, 0));
        let at = 0;
        for (const s of live) {
          history.set(s.spec.history, at);
          at += s.spec.history.length;
        }
        native.sessionSampling(session, {
          rows: Int32Array.from(live, (s) => s.slot),
          params: live.map(() => g.spec.sampling),
          seed: g.spec.seed,
          history,
          ...(live.some((s) => s.spec.constraint) ? { constraints: live.map((s) => s.spec.constraint) } : {}),
        });
      } catch (e) {
        for (const s of live) this.fail(s, e);
        this.flush();
        throw e;
      }
    }
  }

  /**
   * This step's chunks: every running sequence's decode token, then prefill chunks in admission
   * order under what is left of the budget. A group's prompts end their prefill in one step (its
   * RNG draws stay in row order), so a chunk that would end a prompt waits until the group's last
   * chunks all fit. Only one group's vision features per step.
   */
  private plan(): Chunk[] {
    const plan: Chunk[] = [];
    for (const g of this.groups) for (const s of g.sequences) if (s.state === 'decode') plan.push({ seq: s, from: -1, count: 1, sample: true });
    let left = this.budget - plan.length;
    let features: NativeVisionFeatures | null = null;
    for (const g of this.groups) {
      const pending = g.sequences.filter((s) => s.state === 'prefill');
      if (pending.length === 0) continue;
      if (g.features) {
        if (features !== null && features !== g.features) break;
        features = g.features;
      }
      const rest = pending.map((s) => s.spec.ids.length - s.prefilled);
      const total = rest.reduce((a, b) => a + b, 0);
      const prefillSoFar = plan.some((c) => c.from >= 0);
      if (total <= left || (!prefillSoFar && plan.length === 0 && rest.every((r) => r === 1))) {
        // The group's prompts all end here (over the budget only when nothing else would run).
        pending.forEach((s, i) => plan.push({ seq: s, from: s.prefilled, count: rest[i], sample: true }));
        left -= total;
      } else {
        // Chunks that keep at least one token of each prompt for the group's final step.
        pending.forEach((s, i) => {
          const take = Math.min(rest[i] - 1, left);
          if (take <= 0) return;
          plan.push({ seq: s, from: s.prefilled, count: take, sample: false });
          left -= take;
        });
      }
      if (left <= 0) break;
    }
    return plan;
  }

  private forwardArgs(plan: Chunk[]): NativeForwardArgs {
    const counts = Int32Array.from(plan, (c) => c.count);
    const n = counts.reduce((a, b) => a + b, 0);
    const ids = new Int32Array(n);
    const positions = new Int32Array(3 * n);
    const features = plan.find((c) => c.from >= 0 && c.seq.group.features)?.seq.group.features ?? null;
    const visualRows = features ? new Int32Array(n).fill(-1) : null;
    let at = 0;
    for (const c of plan) {
      const s = c.seq.spec;
      if (c.from < 0) {
        ids[at] = c.seq.tokens[c.seq.tokens.length - 1];
        const pos = s.nextPosition + c.seq.tokens.length - 1;
        positions[at] = positions[n + at] = positions[2 * n + at] = pos;
      } else {
        const L = s.ids.length;
        ids.set(s.ids.subarray(c.from, c.from + c.count), at);
        for (let a = 0; a < 3; a++) positions.set(s.positions.subarray(a * L + c.from, a * L + c.from + c.count), a * n + at);
        if (visualRows && s.visualRows) visualRows.set(s.visualRows.subarray(c.from, c.from + c.count), at);
      }
      at += c.count;
    }
    const sampling = plan.some((c) => c.sample);
    const allSample = plan.every((c) => c.sample);
    return {
      ids,
      counts,
      positions,
      rows: Int32Array.from(plan, (c) => c.seq.slot),
      ...(features && visualRows ? { features, visualRows } : {}),
      logits: sampling ? 'sample' : 'none',
      ...(sampling && !allSample ? { sample: Uint8Array.from(plan, (c) => (c.sample ? 1 : 0)) } : {}),
    };
  }
}

/** A prompt's prefix-cache key. */
function promptKey(s: SequenceSpec): PrefixKey {
  return { ids: s.ids, tags: s.tags ?? null, positions: s.positions };
}

/**
 * The tokens an ended sequence's slot holds, between steps: its prefilled prompt tokens, then (once
 * it decodes) every chosen token but the last, which was never fed.
 */
function fedKey(seq: Sequence): PrefixKey | null {
  const s = seq.spec, L = s.ids.length;
  const fed = seq.prefilled === L ? Math.max(0, seq.tokens.length - 1) : 0;
  const n = seq.prefilled + fed;
  if (n < 2) return null;
  const ids = new Int32Array(n);
  ids.set(s.ids.subarray(0, seq.prefilled));
  const positions = new Int32Array(3 * n);
  for (let a = 0; a < 3; a++) positions.set(s.positions.subarray(a * L, a * L + seq.prefilled), a * n);
  for (let i = 0; i < fed; i++) {
    ids[seq.prefilled + i] = seq.tokens[i];
    for (let a = 0; a < 3; a++) positions[a * n + seq.prefilled + i] = s.nextPosition + i;
  }
  let tags: Float64Array | null = null;
  if (s.tags) {
    tags = new Float64Array(n);
    tags.set(s.tags.subarray(0, seq.prefilled));
  }
  return { ids, tags, positions };
}
