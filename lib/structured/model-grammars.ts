/**
 * A model's structured output, natively: the vocabulary's bytes indexed once (on the first
 * constrained request), and compiled grammars by response format, each with the mask caches every
 * sequence using it shares (so a schema's second request starts warm). Per row, a constraint:
 * the grammar, the end ids, and, where the prompt opened a thinking block, `</think>` as the token
 * after which the grammar starts.
 * @internal
 * @module
 */
import { native, type NativeHandle, type NativeTokenConstraint } from '../native/binding.js';
import { THINK_CLOSE } from '../generate/reasoning.js';
import type { QwenTokenizer } from '../text/tokenizer.js';
import { flattenGrammar } from './flatten-grammar.js';
import type { ResolvedResponseFormat } from './response-format.js';

/** Compiled grammars kept per model (least recently used dropped first). */
const MAX_GRAMMARS = 16;

/** @internal */
export class ModelGrammars {
  private vocabulary: NativeHandle | null = null;
  private readonly grammars = new Map<string, NativeHandle>();

  constructor(
    private readonly tokenizer: QwenTokenizer,
    private readonly vocabSize: number,
  ) {}

  /** The grammar's shared masks handle, compiled on first use. */
  masks(format: ResolvedResponseFormat): NativeHandle {
    const hit = this.grammars.get(format.key);
    if (hit) {
      this.grammars.delete(format.key);
      this.grammars.set(format.key, hit);
      return hit;
    }
    if (!this.vocabulary) {
      const { bytes, offsets } = this.tokenizer.textTokenBytes(this.vocabSize);
      this.vocabulary = native.grammarVocabulary(bytes, offsets);
    }
    const grammar = native.grammarCompile(flattenGrammar(format.grammar));
    try {
      const masks = native.grammarMasks(grammar, this.vocabulary);
      this.grammars.set(format.key, masks);
      if (this.grammars.size > MAX_GRAMMARS) {
        // A running sequence keeps its grammar alive natively; only the cache entry goes.
        const [oldest, handle] = this.grammars.entries().next().value!;
        this.grammars.delete(oldest);
        native.disposeHandle(handle);
      }
      return masks;
    } finally {
      native.disposeHandle(grammar);
    }
  }

  /** Each row's constraint: `thinking[b]` says the row's prompt opened a thinking block. */
  constraints(format: ResolvedResponseFormat, endIds: readonly number[], thinking: readonly boolean[]): NativeTokenConstraint[] {
    const masks = this.masks(format);
    const close = this.tokenizer.tokenToId(THINK_CLOSE);
    return thinking.map((open) => ({
      masks,
      endIds: Int32Array.from(endIds),
      ...(open && close !== undefined ? { startAfter: close } : {}),
    }));
  }

  dispose(): void {
    for (const h of this.grammars.values()) native.disposeHandle(h);
    this.grammars.clear();
    if (this.vocabulary) native.disposeHandle(this.vocabulary);
    this.vocabulary = null;
  }
}
