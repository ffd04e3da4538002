/**
 * Byte-level BPE merge loop over token ids.
 *
 * The result equals the classic GPT-2 procedure (repeatedly take the adjacent pair with the lowest merge
 * rank, merge every occurrence left to right), which is what both the Python `Qwen2Tokenizer` and the Rust
 * `tokenizers` BPE produce. Short words use that procedure directly; long ones (runs of thousands of spaces
 * or digits-free letters) use a heap so the cost stays O(n log n).
 * @internal
 * @module
 */
import { runToEnd, type Steps } from './slices.js';

/** Merge table: pair (left id, right id) -> rank and merged id. */
export class MergeTable {
  private readonly table = new Map<number, number>();

  /** Keys pack two ids below 2^20 and values pack rank * 2^20 + merged id: both stay exact in a double. */
  static readonly ID_LIMIT = 1 << 20;

  add(left: number, right: number, rank: number, merged: number): void {
    const key = left * MergeTable.ID_LIMIT + right;
    if (!this.table.has(key)) this.table.set(key, rank * MergeTable.ID_LIMIT + merged);
  }

  /** Packed rank/merged id, or -1 when the pair never merges. */
  lookup(left: number, right: number): number {
    const v = this.table.get(left * MergeTable.ID_LIMIT + right);
    return v === undefined ? -1 : v;
  }

  get size(): number {
    return this.table.size;
  }
}

const LIMIT = MergeTable.ID_LIMIT;

/** Below this many symbols the quadratic GPT-2 loop is faster than the heap. */
const HEAP_THRESHOLD = 48;

/** Merges `symbols` (initial ids, one per byte) in place semantics; returns the final ids. */
export function bpeMerge(symbols: number[], merges: MergeTable): number[] {
  if (symbols.length < 2) return symbols.slice();
  return symbols.length < HEAP_THRESHOLD ? bpeMergeSimple(symbols, merges) : bpeMergeHeap(symbols, merges);
}

/** The textbook procedure; also the reference the heap version is tested against. */
export function bpeMergeSimple(input: number[], merges: MergeTable): number[] {
  let word = input.slice();
  for (;;) {
    let bestRank = Infinity;
    let bestLeft = -1;
    let bestRight = -1;
    let bestMerged = -1;
    for (let i = 0; i + 1 < word.length; i++) {
      const v = merges.lookup(word[i], word[i + 1]);
      if (v < 0) continue;
      const rank = Math.floor(v / LIMIT);
      if (rank < bestRank) {
        bestRank = rank;
        bestLeft = word[i];
        bestRight = word[i + 1];
        bestMerged = v % LIMIT;
      }
    }
    if (bestLeft < 0) return word;
    const next: number[] = [];
    for (let i = 0; i < word.length; ) {
      if (i + 1 < word.length && word[i] === bestLeft && word[i + 1] === bestRight) {
        next.push(bestMerged);
        i += 2;
      } else {
        next.push(word[i]);
        i += 1;
      }
    }
    word = next;
    if (word.length === 1) return word;
  }
}

/**
 * Heap version: a doubly linked list of symbols and a min-heap of candidate pairs ordered by (rank, position).
 * Stale entries (a side already merged away or changed) are skipped when popped. Taking equal ranks in
 * position order reproduces the left-to-right sweep of the textbook loop, because a merge can never create
 * another occurrence of the same pair (the merged symbol is longer than either part).
 */
export function bpeMergeHeap(input: number[], merges: MergeTable): number[] {
  return runToEnd(bpeMergeHeapSteps(input, merges));
}

/** How many heap operations run between two pause points of {@link bpeMergeHeapSteps}. */
const OPS_PER_STEP = 4096;

/** {@link bpeMergeHeap} as pausable work (a word of millions of bytes takes seconds). @internal */
export function* bpeMergeHeapSteps(input: number[], merges: MergeTable): Steps<number[]> {
  const n = input.length;
  const sym = Int32Array.from(input);
  const prev = new Int32Array(n);
  const next = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  // Heap entries: rank, left position, left symbol, right symbol (to detect staleness), merged id.
  const hRank: number[] = [];
  const hPos: number[] = [];
  const hL: number[] = [];
  const hR: number[] = [];
  const hM: number[] = [];
  const less = (a: number, b: number) => hRank[a] < hRank[b] || (hRank[a] === hRank[b] && hPos[a] < hPos[b]);
  const swap = (a: number, b: number) => {
    let t = hRank[a]; hRank[a] = hRank[b]; hRank[b] = t;
    t = hPos[a]; hPos[a] = hPos[b]; hPos[b] = t;
    t = hL[a]; hL[a] = hL[b]; hL[b] = t;
    t = hR[a]; hR[a] = hR[b]; hR[b] = t;
    t = hM[a]; hM[a] = hM[b]; hM[b] = t;
  };
  const push = (pos: number) => {
    const right = next[pos];
    if (right < 0) return;
    const v = merges.lookup(sym[pos], sym[right]);
    if (v < 0) return;
    let i = hRank.length;
    hRank.push(Math.floor(v / LIMIT));
    hPos.push(pos);
    hL.push(sym[pos]);
    hR.push(sym[right]);
    hM.push(v % LIMIT);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(i, p)) break;
      swap(i, p);
      i = p;
    }
  };
  const pop = () => {
    const last = hRank.length - 1;
    swap(0, last);
    const out = { rank: hRank.pop()!, pos: hPos.pop()!, l: hL.pop()!, r: hR.pop()!, m: hM.pop()! };
    let i = 0;
    const len = hRank.length;
    for (;;) {
      const a = 2 * i + 1;
      const b = a + 1;
      let m = i;
      if (a < len && less(a, m)) m = a;
      if (b < len && less(b, m)) m = b;
      if (m === i) break;
      swap(i, m);
      i = m;
    }
    return out;
  };
  const alive = new Uint8Array(n).fill(1);
  for (let i = 0; i + 1 < n; i++) {
    push(i);
    if (i % OPS_PER_STEP === OPS_PER_STEP - 1) yield;
  }
  let ops = 0;
  while (hRank.length > 0) {
    if (++ops === OPS_PER_STEP) {
      ops = 0;
      yield;
    }
    const e = pop();
    if (!alive[e.pos] || sym[e.pos] !== e.l) continue;
    const right = next[e.pos];
    if (right < 0 || sym[right] !== e.r) continue;
    sym[e.pos] = e.m;
    alive[right] = 0;
    next[e.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = e.pos;
    if (prev[e.pos] >= 0) push(prev[e.pos]);
    push(e.pos);
  }
  const out: number[] = [];
  for (let i = 0; i >= 0; i = next[i]) out.push(sym[i]);
  return out;
}
