/**
 * The prefix cache: KV slots of finished sequences kept in the session's pool, keyed by the tokens
 * they hold, so a new prompt that starts with one of them (a system prompt, earlier turns of the
 * conversation, the same image) copies those keys and values (KvPool::copy_prefix) instead of
 * prefilling them again. A token matches when its id, its visual identity (which image and which of
 * its rows, see {@link SequenceSpec.tags}) and its three M-RoPE positions all match: then its keys
 * and values are the ones a prefill would compute, bit for bit. Bounded by bytes, least recently
 * used first out; the scheduler also evicts entries when a new sequence needs their memory.
 * @internal
 * @module
 */

/** What a cache entry holds, or what a new prompt looks for: per token its id, visual tag and positions. @internal */
export interface PrefixKey {
  ids: Int32Array;
  /** Per token: 0 for text, else the visual identity (see SequenceSpec.tags). */
  tags: Float64Array | null;
  /** [3][ids.length] M-RoPE positions. */
  positions: Int32Array;
}

/** @internal */
export interface PrefixEntry {
  /** Its KV slot in the session's pool (holding exactly `key.ids.length` entries). */
  slot: number;
  key: PrefixKey;
  bytes: number;
  /** Last use, for LRU order. */
  used: number;
}

/** Hit and size counters (see EngineStats.prefixCache). @internal */
export interface PrefixCacheStats {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
  capacityBytes: number;
  /** Prompt tokens whose prefill a hit skipped. */
  savedTokens: number;
}

/** Length of the common prefix of a and b (every token's id, tag and positions equal). */
export function commonPrefix(a: PrefixKey, b: PrefixKey): number {
  const n = Math.min(a.ids.length, b.ids.length), La = a.ids.length, Lb = b.ids.length;
  let i = 0;
  for (; i < n; i++) {
    if (a.ids[i] !== b.ids[i]) break;
    if ((a.tags ? a.tags[i] : 0) !== (b.tags ? b.tags[i] : 0)) break;
    if (a.positions[i] !== b.positions[i] || a.positions[La + i] !== b.positions[Lb + i] || a.positions[2 * La + i] !== b.positions[2 * Lb + i]) break;
  }
  return i;
}

/** @internal */
export class PrefixCache {
  private readonly entries: PrefixEntry[] = [];
  private clock = 0;
  private held = 0;
  private readonly counters = { hits: 0, misses: 0, savedTokens: 0 };

  /**
   * @param capacityBytes most bytes of KV the entries may hold (0: nothing is kept)
   * @param free frees an entry's slot in the pool
   */
  constructor(
    readonly capacityBytes: number,
    private readonly free: (slot: number) => void,
  ) {}

  get bytes(): number {
    return this.held;
  }

  get size(): number {
    return this.entries.length;
  }

  /**
   * The entry sharing the longest prefix with `key`, and how many of its tokens to take: at most
   * all but the prompt's last token (whose logits the prefill must still compute). Counts a hit or
   * a miss.
   */
  lookup(key: PrefixKey): { entry: PrefixEntry; count: number } | null {
    let best: PrefixEntry | null = null, count = 0;
    for (const e of this.entries) {
      const n = Math.min(commonPrefix(e.key, key), key.ids.length - 1);
      if (n > count) {
        best = e;
        count = n;
      }
    }
    if (best === null) {
      this.counters.misses += 1;
      return null;
    }
    best.used = ++this.clock;
    this.counters.hits += 1;
    this.counters.savedTokens += count;
    return { entry: best, count };
  }

  /**
   * Keeps `slot` (holding `key`'s tokens, `bytes` of KV) as an entry, evicting older ones to stay
   * within the capacity. Returns false, keeping nothing, when it is larger than the capacity or
   * adds nothing (an entry already holds the same tokens): the caller frees the slot then.
   */
  offer(slot: number, key: PrefixKey, bytes: number): boolean {
    if (bytes > this.capacityBytes || key.ids.length < 2) return false;
    for (const e of this.entries) {
      if (e.key.ids.length >= key.ids.length && commonPrefix(e.key, key) === key.ids.length) {
        e.used = ++this.clock;
        return false;
      }
    }
    // An entry that is a prefix of the new one holds nothing the new one lacks.
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i];
      if (commonPrefix(e.key, key) === e.key.ids.length) this.drop(i);
    }
    while (this.held + bytes > this.capacityBytes && this.evictOne()) {
      // Oldest first until it fits.
    }
    this.entries.push({ slot, key, bytes, used: ++this.clock });
    this.held += bytes;
    return true;
  }

  /** Frees the least recently used entry; false when there is none. */
  evictOne(): boolean {
    if (this.entries.length === 0) return false;
    let oldest = 0;
    for (let i = 1; i < this.entries.length; i++) if (this.entries[i].used < this.entries[oldest].used) oldest = i;
    this.drop(oldest);
    return true;
  }

  /** Frees every entry. */
  clear(): void {
    while (this.entries.length > 0) this.drop(this.entries.length - 1);
  }

  stats(): PrefixCacheStats {
    return { ...this.counters, entries: this.entries.length, bytes: this.held, capacityBytes: this.capacityBytes };
  }

  private drop(i: number): void {
    const [e] = this.entries.splice(i, 1);
    this.held -= e.bytes;
    this.free(e.slot);
  }
}
