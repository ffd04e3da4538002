/**
 * The vision-feature cache: a prompt's processed pixels (the patches the processor made, so its
 * settings are part of them), grids and patch width → the native features handle the vision
 * tower gave for them, so a repeated image or video skips the tower. Keyed by a SHA-256 of the
 * pixel data and those settings; bounded by the features' bytes, least recently used first out.
 * Entries are pinned while a request uses them: an evicted entry's handle is disposed once its
 * last user releases it.
 * @internal
 * @module
 */
import { createHash } from 'node:crypto';
import { native, type NativeEncodedFeatures } from '../native/binding.js';
import type { PreparedInputs } from '../model/inputs.js';

/** @internal */
export interface VisionEntry {
  key: string;
  enc: NativeEncodedFeatures;
  bytes: number;
  /** Seconds the vision tower took for it: what each hit saves. */
  seconds: number;
  refs: number;
  used: number;
  evicted: boolean;
}

/** Hit and size counters (see EngineStats.visionCache). @internal */
export interface VisionCacheStats {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
  capacityBytes: number;
  /** Vision tower seconds the hits skipped (each hit counts its entry's encode time). */
  savedSeconds: number;
}

const hashFloats = (h: ReturnType<typeof createHash>, a: Float32Array) => h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));

/**
 * Each image's and video's identity (a hash of its patches, grid and patch width), in the order
 * their rows sit in the features: images first, then videos. @internal
 */
export function visionItemHashes(p: PreparedInputs): string[] {
  const out: string[] = [];
  const items = (pixels: Float32Array | null, patchDim: number, grids: readonly (readonly number[])[], kind: string) => {
    if (!pixels) return;
    let at = 0;
    for (const [t, h, w] of grids) {
      const n = t * h * w * patchDim;
      const hash = createHash('sha256').update(`${kind}:${t}x${h}x${w}:${patchDim}:`);
      hashFloats(hash, pixels.subarray(at, at + n));
      out.push(hash.digest('hex'));
      at += n;
    }
  };
  items(p.pixelValues, p.patchDim, p.imageGridThw, 'image');
  items(p.pixelValuesVideos, p.videoPatchDim, p.videoGridThw, 'video');
  return out;
}

/** The cache key of a prompt's whole vision input (its items in order, images apart from videos). @internal */
export function visionKey(p: PreparedInputs, items: readonly string[]): string {
  return createHash('sha256').update(`${p.imageGridThw.length}|${items.join('|')}`).digest('hex');
}

/** @internal */
export class VisionCache {
  private readonly entries = new Map<string, VisionEntry>();
  private clock = 0;
  private held = 0;
  private readonly counters = { hits: 0, misses: 0, savedSeconds: 0 };

  constructor(readonly capacityBytes: number) {}

  /** The cached entry for `key`, pinned (release it); counts a hit or a miss. */
  acquire(key: string): VisionEntry | null {
    const e = this.entries.get(key);
    if (!e) {
      this.counters.misses += 1;
      return null;
    }
    this.counters.hits += 1;
    this.counters.savedSeconds += e.seconds;
    e.refs += 1;
    e.used = ++this.clock;
    return e;
  }

  /** Wraps fresh features as an unpinned entry (pin it with `refs`), cached when they fit the capacity. */
  add(key: string, enc: NativeEncodedFeatures, seconds: number): VisionEntry {
    const bytes = enc.tokens * enc.hidden * 4 * (1 + enc.levels);
    const e: VisionEntry = { key, enc, bytes, seconds, refs: 0, used: ++this.clock, evicted: true };
    if (bytes > this.capacityBytes || this.entries.has(key)) return e;
    while (this.held + bytes > this.capacityBytes && this.evictOne()) {
      // Oldest first until it fits.
    }
    e.evicted = false;
    this.entries.set(key, e);
    this.held += bytes;
    return e;
  }

  /** Unpins an entry; an evicted one's handle goes with its last user. */
  release(e: VisionEntry): void {
    e.refs -= 1;
    if (e.refs === 0 && e.evicted) native.disposeHandle(e.enc.features);
  }

  /** Evicts every entry (their handles go once unused). */
  clear(): void {
    while (this.evictOne()) {
      // Until empty.
    }
  }

  stats(): VisionCacheStats {
    return { ...this.counters, entries: this.entries.size, bytes: this.held, capacityBytes: this.capacityBytes };
  }

  private evictOne(): boolean {
    let oldest: VisionEntry | null = null;
    for (const e of this.entries.values()) if (oldest === null || e.used < oldest.used) oldest = e;
    if (oldest === null) return false;
    this.entries.delete(oldest.key);
    this.held -= oldest.bytes;
    oldest.evicted = true;
    if (oldest.refs === 0) native.disposeHandle(oldest.enc.features);
    return true;
  }
}
