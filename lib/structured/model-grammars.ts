/**
 * A model's structured output, natively: the vocabulary's bytes indexed once (on the first
 * constrained request, off the event loop: other requests run meanwhile, and concurrent first
 * constrained requests wait on the same build), and compiled grammars by response format, each with the mask caches every
 * sequence using it shares (so a schema's second request starts warm). Per row, a constraint:
 * the grammar, the end ids, and, where the prompt opened a thinking block, `</think>` as the token
 * after which the grammar starts.
 * @internal
 * @module
 */
import { QwenVLError } from '../errors.js';
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
  private building: Promise<NativeHandle> | null = null;
  private disposed = false;
  private readonly grammars = new Map<string, NativeHandle>();

  constructor(
    private readonly tokenizer: QwenTokenizer,
    private readonly vocabSize: number,
  ) {}

  /** The vocabulary index, built once: its bytes in slices between event loop turns, its trie on a worker thread. */
  private vocabularyIndex(): Promise<NativeHandle> {
    if (this.vocabulary) return Promise.resolve(this.vocabulary);
    this.building ??= (async () => {
      try {
        const { bytes, offsets } = await this.tokenizer.textTokenBytesAsync(this.vocabSize);
        const vocabulary = await native.grammarVocabularyAsync(bytes, offsets);
        if (this.disposed) {
          native.disposeHandle(vocabulary);
          throw new QwenVLError('E_DISPOSED', 'structured output: the model was disposed while its vocabulary was indexed');
        }
        this.vocabulary = vocabulary;
        return vocabulary;
      } finally {
        this.building = null;  // built (kept above) or failed (the next request tries again)
      }
    })();
    return this.building;
  }

  /** The grammar's shared masks handle, compiled on first use. */
  async masks(format: ResolvedResponseFormat): Promise<NativeHandle> {
    const vocabulary = await this.vocabularyIndex();
    const hit = this.grammars.get(format.key);
    if (hit) {
      this.grammars.delete(format.key);
      this.grammars.set(format.key, hit);
      return hit;
    }
    const grammar = native.grammarCompile(flattenGrammar(format.grammar));
    try {
      const masks = native.grammarMasks(grammar, vocabulary);
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
  async constraints(format: ResolvedResponseFormat, endIds: readonly number[], thinking: readonly boolean[]): Promise<NativeTokenConstraint[]> {
    const masks = await this.masks(format);
    const close = this.tokenizer.tokenToId(THINK_CLOSE);
    return thinking.map((open) => ({
      masks,
      endIds: Int32Array.from(endIds),
      ...(open && close !== undefined ? { startAfter: close } : {}),
    }));
  }

  dispose(): void {
    this.disposed = true;
    for (const h of this.grammars.values()) native.disposeHandle(h);
    this.grammars.clear();
    if (this.vocabulary) native.disposeHandle(this.vocabulary);
    this.vocabulary = null;
  }
}
