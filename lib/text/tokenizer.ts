/**
 * Qwen's byte-level BPE tokenizer, read from a checkpoint's `tokenizer.json` (+ `tokenizer_config.json`).
 *
 * Behaviour follows transformers' `Qwen2Tokenizer` (the reference fixtures were made with it; the Rust
 * `Qwen2TokenizerFast` agrees on every input we know of):
 * - the whole text is NFC-normalized first, then split on added tokens (special or not, longest match at
 *   the earliest position), and the pieces between them go through the Qwen2 pre-tokenizer regex and BPE;
 * - the regex's `\s` is Unicode White_Space as in Python's `regex` module (JavaScript's `\s` differs on
 *   U+0085 and U+FEFF), and its `(?i:'s|...)` also accepts U+017F (long s), as simple case folding does;
 * - decoding joins token bytes and replaces ill-formed UTF-8 with U+FFFD (`errors="replace"`).
 * @module
 */
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { QwenVLError, formatError, inputError } from '../errors.js';
import { BYTE_TO_CHAR, vocabStringToBytes } from './bytelevel.js';
import { MergeTable, bpeMerge, bpeMergeHeapSteps } from './bpe.js';
import { decodeUtf8, incompleteUtf8Tail } from './utf8.js';
import { identity, mapPosition, normalizeNfc, normalizeWhole, type Normalized } from './nfc.js';
import { PAUSE, WINDOW, pieceEnds, qwen2SplitSource } from './pretokenize.js';
import { runSliced, runToEnd, type Steps } from './slices.js';
import { decodeUtf8Steps, ownKeysSteps, parseJsonSliced } from './json-slices.js';
import { checkArray, expected, guard, optBoolean, optInteger, readOptions } from '../validate.js';

/** One entry of the added vocabulary (the `<|...|>` control tokens and friends). */
export interface AddedToken {
  id: number;
  content: string;
  /** Counted as special: dropped by `skipSpecialTokens`. */
  special: boolean;
  lstrip: boolean;
  rstrip: boolean;
}

/** Ids of the tokens the Qwen-VL pipeline refers to by role; a field is undefined when the vocabulary lacks it. */
export interface QwenSpecialIds {
  /** `eos_token` of tokenizer_config.json (`<|im_end|>` for the instruct checkpoints). */
  eos?: number;
  /** `pad_token` of tokenizer_config.json (`<|endoftext|>`). */
  pad?: number;
  bos?: number;
  unk?: number;
  endOfText?: number;
  imStart?: number;
  imEnd?: number;
  visionStart?: number;
  visionEnd?: number;
  visionPad?: number;
  imagePad?: number;
  videoPad?: number;
  thinkStart?: number;
  thinkEnd?: number;
  toolCallStart?: number;
  toolCallEnd?: number;
}

/** Options of {@link QwenTokenizer.encode}. */
export interface TokenEncodeOptions {
  /**
   * Treat added-token strings in the text as plain text (transformers' `split_special_tokens=True`), e.g. for
   * untrusted user text that must not inject `<|im_end|>`. Default: the checkpoint's `split_special_tokens`
   * (false for Qwen), i.e. `<|image_pad|>` in the text becomes that one token.
   */
  splitSpecialTokens?: boolean;
  /**
   * `[start, end)` ranges of `text` (UTF-16 offsets) inside which added-token strings are plain text while
   * the rest of the text is split on them as usual: how {@link Model} keeps `<|im_end|>` typed by a user
   * from ending the turn. The text is still pre-tokenized as one string, so without added-token strings in
   * the ranges the ids are those of a plain `encode`.
   */
  plainTextRanges?: readonly (readonly [number, number])[];
}

/** Options of {@link QwenTokenizer.encodeAsync}. */
export interface TokenEncodeAsyncOptions extends TokenEncodeOptions {
  /**
   * Refuse, with E_CONTEXT_OVERFLOW, a text that needs more tokens than this. A text too long to possibly
   * fit (more characters than `maxTokens` × {@link QwenTokenizer.maxTokenBytes}) is refused before any work.
   */
  maxTokens?: number;
}

/** Options of {@link QwenTokenizer.decode}. */
export interface TokenDecodeOptions {
  /** Drop special tokens (the `special` added tokens and those tokenizer_config.json names). Default false. */
  skipSpecialTokens?: boolean;
  /**
   * Apply transformers' `clean_up_tokenization` (" ." -> "." etc.). Default: the checkpoint's
   * `clean_up_tokenization_spaces` (false for Qwen). Not applied by the stream decoder.
   */
  cleanUpTokenizationSpaces?: boolean;
}

/**
 * Incremental detokenizer for streaming generation. `push(id)` returns the text that became final with that
 * token: a character whose UTF-8 bytes are spread over several tokens is emitted whole once its last byte
 * arrives. Concatenating every `push` result and `flush()` gives exactly `decode(allIds)`.
 */
export interface StreamDecoder {
  /** Adds one token id; returns the newly completed text (possibly ""). */
  push(id: number): string;
  /** Ends the stream: bytes of an unfinished character come out as U+FFFD. Resets the decoder. */
  flush(): string;
}

/** Where the tokenizer came from, for error messages. */
export interface Sources {
  tokenizerFile: string;
  configFile: string;
}

// The Qwen2 pre-tokenizer pattern as written in tokenizer.json (Python `regex` syntax).
const QWEN2_SPLIT_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** The same pattern in JavaScript syntax (see pretokenize.ts). */
function qwen2SplitRegex(): RegExp {
  return new RegExp(qwen2SplitSource(), 'gu');
}

const NAMED_SPECIALS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;

const PIECE_CACHE_LIMIT = 100_000;
/** Longer pieces are not cached (a cache key of megabytes helps no one). */
const PIECE_CACHE_MAX_LENGTH = 256;
/** Pieces at least this long run their BPE as pausable work in {@link QwenTokenizer.encodeAsync}. */
const LONG_PIECE = 1024;

/** A piece boundary or added-token match found while encoding. */
interface AddedMatch {
  index: number;
  length: number;
  token: AddedToken;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A token given in tokenizer_config.json as a string or as an AddedToken dict. */
function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\\/-]/g, '\\$&');
}

/** Python's `clean_up_tokenization` of transformers. */
function cleanUpTokenization(s: string): string {
  return s
    .replaceAll(' .', '.')
    .replaceAll(' ?', '?')
    .replaceAll(' !', '!')
    .replaceAll(' ,', ',')
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}

/** Growable byte buffer used by decode. */
class ByteSink {
  buf = new Uint8Array(256);
  len = 0;
  append(bytes: Uint8Array): void {
    if (this.len + bytes.length > this.buf.length) {
      const grown = new Uint8Array(Math.max(this.buf.length * 2, this.len + bytes.length));
      grown.set(this.buf.subarray(0, this.len));
      this.buf = grown;
    }
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }
}

/**
 * The tokenizer of a Qwen2-VL / Qwen2.5-VL / Qwen3-VL checkpoint. Load with {@link QwenTokenizer.load}
 * (a checkpoint folder) or {@link QwenTokenizer.fromJSON} (already parsed files).
 */
export class QwenTokenizer {
  /** Number of distinct token ids (base vocabulary + added tokens), like `len(tokenizer)` in transformers. */
  readonly vocabSize: number;
  /** Size of the BPE vocabulary without added tokens (`tokenizer.vocab_size` in transformers). */
  readonly baseVocabSize: number;
  /** Ids of the tokens with a role in the Qwen-VL pipeline. */
  readonly specialIds: QwenSpecialIds;
  /**
   * transformers' `special_tokens_map`: `eos_token`, `pad_token`, ... (only those set) and
   * `additional_special_tokens`. Chat templates receive these as variables.
   */
  readonly specialTokensMap: Readonly<Record<string, string | string[]>>;
  /** The added vocabulary, in id order. */
  readonly addedTokens: readonly AddedToken[];
  /** `model_max_length` of tokenizer_config.json, when given. */
  readonly modelMaxLength?: number;
  /** `padding_side` of tokenizer_config.json (transformers' default "right" when absent). */
  readonly paddingSide: 'left' | 'right';
  /**
   * UTF-8 length of the longest token: a text of more bytes than n × this needs more than n tokens, which
   * lets a text too long for a context be refused before it is tokenized.
   */
  readonly maxTokenBytes: number;

  private readonly vocab: Map<string, number>;
  private readonly idToTokenTable: (string | undefined)[];
  private readonly addedById = new Map<number, AddedToken>();
  private readonly addedByContent = new Map<string, AddedToken>();
  private readonly specialIdSet = new Set<number>();
  private readonly merges: MergeTable;
  private readonly byteIds: Int32Array;
  private readonly nfc: boolean;
  private readonly ignoreMerges: boolean;
  private readonly splitRegex = qwen2SplitRegex();
  private readonly addedRegex?: RegExp;
  private readonly longestAdded: number = 0;
  private readonly defaultSplitSpecial: boolean;
  private readonly defaultCleanUp: boolean;
  private readonly pieceCache = new Map<string, number[]>();
  /** Lazily filled: the UTF-8 bytes each id decodes to. */
  private readonly bytesCache: (Uint8Array | undefined)[] = [];
  private readonly encoder = new TextEncoder();

  private constructor(tokenizerJson: Record<string, unknown>, tokenizerConfig: unknown, src: Sources, base: BaseTables) {
    const fail = (msg: string) => formatError(src.tokenizerFile, msg);
    this.nfc = base.nfc;
    this.ignoreMerges = base.ignoreMerges;
    this.vocab = base.vocab;
    this.merges = base.merges;
    this.byteIds = base.byteIds;
    this.baseVocabSize = this.vocab.size;
    let maxId = base.maxId;

    // Added vocabulary: tokenizer.json's list, completed by tokenizer_config.json's added_tokens_decoder.
    const cfg = isObject(tokenizerConfig) ? tokenizerConfig : {};
    const added = new Map<number, AddedToken>();
    const addOne = (id: number, v: Record<string, unknown>, where: string) => {
      const content = v.content;
      if (!Number.isInteger(id) || id < 0 || id >= MergeTable.ID_LIMIT || typeof content !== 'string' || content === '') {
        throw formatError(where, `invalid added token ${JSON.stringify(v)}`);
      }
      if (v.single_word === true) {
        throw new QwenVLError('E_UNSUPPORTED', `${where}: added token ${JSON.stringify(content)} uses single_word, which is not supported`);
      }
      const prev = added.get(id);
      if (prev && prev.content !== content) {
        throw formatError(where, `added token id ${id} is ${JSON.stringify(content)} here but ${JSON.stringify(prev.content)} elsewhere`);
      }
      const baseId = this.vocab.get(content);
      if (baseId !== undefined && baseId !== id) {
        throw formatError(where, `added token ${JSON.stringify(content)} has id ${id} but the vocabulary gives ${baseId}`);
      }
      added.set(id, {
        id,
        content,
        special: v.special === true || prev?.special === true,
        lstrip: v.lstrip === true,
        rstrip: v.rstrip === true,
      });
    };
    const list = tokenizerJson.added_tokens ?? [];
    if (!Array.isArray(list)) throw fail('"added_tokens" must be an array');
    for (const v of list) {
      if (!isObject(v)) throw fail('"added_tokens" holds a non-object');
      addOne(v.id as number, v, src.tokenizerFile);
    }
    if (cfg.added_tokens_decoder !== undefined) {
      if (!isObject(cfg.added_tokens_decoder)) throw formatError(src.configFile, '"added_tokens_decoder" must be an object');
      for (const [k, v] of Object.entries(cfg.added_tokens_decoder)) {
        if (!isObject(v)) throw formatError(src.configFile, `added_tokens_decoder[${k}] must be an object`);
        addOne(Number(k), v, src.configFile);
      }
    }
    this.addedTokens = [...added.values()].sort((x, y) => x.id - y.id);
    for (const t of this.addedTokens) {
      this.addedById.set(t.id, t);
      this.addedByContent.set(t.content, t);
      if (t.id > maxId) maxId = t.id;
      if (t.special) this.specialIdSet.add(t.id);
    }
    this.idToTokenTable = base.idToToken;
    // Added ids past the base vocabulary extend the table; ids between stay holes, as before.
    if (maxId + 1 > this.idToTokenTable.length) this.idToTokenTable.length = maxId + 1;
    for (const t of this.addedTokens) this.idToTokenTable[t.id] = t.content;
    let count = 0;
    for (let i = 0; i <= maxId; i++) if (this.idToTokenTable[i] !== undefined) count++;
    this.vocabSize = count;

    let longest = base.longest;
    for (const t of this.addedTokens) {
      const bytes = Buffer.byteLength(t.content, 'utf8');
      if (bytes > longest) longest = bytes;
      if (t.content.length > this.longestAdded) this.longestAdded = t.content.length;
    }
    this.maxTokenBytes = longest;

    if (this.addedTokens.length > 0) {
      const alts = this.addedTokens.map((t) => t.content).sort((x, y) => y.length - x.length || (x < y ? -1 : 1));
      this.addedRegex = new RegExp(alts.map(escapeRegex).join('|'), 'g');
    }

    // Named special tokens of tokenizer_config.json (transformers' special_tokens_map).
    const map: Record<string, string | string[]> = {};
    for (const key of NAMED_SPECIALS) {
      const c = tokenContent(cfg[key]);
      if (c === undefined) continue;
      map[key] = c;
      const id = this.tokenToId(c);
      if (id !== undefined) this.specialIdSet.add(id);
    }
    if (Array.isArray(cfg.additional_special_tokens)) {
      const extra: string[] = [];
      for (const v of cfg.additional_special_tokens) {
        const c = tokenContent(v);
        if (c === undefined) continue;
        extra.push(c);
        const id = this.tokenToId(c);
        if (id !== undefined) this.specialIdSet.add(id);
      }
      map.additional_special_tokens = extra;
    }
    this.specialTokensMap = Object.freeze(map);
    this.defaultSplitSpecial = cfg.split_special_tokens === true;
    this.defaultCleanUp = cfg.clean_up_tokenization_spaces === true;
    this.paddingSide = cfg.padding_side === 'left' ? 'left' : 'right';
    if (typeof cfg.model_max_length === 'number') this.modelMaxLength = cfg.model_max_length;

    const idOf = (s: unknown) => (typeof s === 'string' ? this.tokenToId(s) : undefined);
    this.specialIds = Object.freeze({
      eos: idOf(map.eos_token),
      pad: idOf(map.pad_token),
      bos: idOf(map.bos_token),
      unk: idOf(map.unk_token),
      endOfText: idOf('<|endoftext|>'),
      imStart: idOf('<|im_start|>'),
      imEnd: idOf('<|im_end|>'),
      visionStart: idOf('<|vision_start|>'),
      visionEnd: idOf('<|vision_end|>'),
      visionPad: idOf('<|vision_pad|>'),
      imagePad: idOf(typeof cfg.image_token === 'string' ? cfg.image_token : '<|image_pad|>'),
      videoPad: idOf(typeof cfg.video_token === 'string' ? cfg.video_token : '<|video_pad|>'),
      thinkStart: idOf('<think>'),
      thinkEnd: idOf('</think>'),
      toolCallStart: idOf('<tool_call>'),
      toolCallEnd: idOf('</tool_call>'),
    });
  }

  /**
   * Builds a tokenizer from parsed `tokenizer.json` and (optionally) `tokenizer_config.json` contents.
   * `names` only label error messages.
   */
  static fromJSON(
    tokenizerJson: unknown,
    tokenizerConfig?: unknown,
    names?: Partial<Sources>,
  ): QwenTokenizer {
    const n = readOptions('QwenTokenizer.fromJSON: names', names, ['tokenizerFile', 'configFile']);
    const label = (v: unknown, fallback: string) => (typeof v === 'string' ? v : fallback);
    const src = { tokenizerFile: label(n.tokenizerFile, 'tokenizer.json'), configFile: label(n.configFile, 'tokenizer_config.json') };
    try {
      const base = runToEnd(baseTables(tokenizerJson, src));
      return new QwenTokenizer(tokenizerJson as Record<string, unknown>, tokenizerConfig ?? {}, src, base);
    } catch (e) {
      throw unreadable(e, src);
    }
  }

  /** {@link QwenTokenizer.fromJSON} with the vocabulary-sized work cut into slices between event-loop turns. */
  private static async fromJSONSliced(tokenizerJson: unknown, tokenizerConfig: unknown, src: Sources): Promise<QwenTokenizer> {
    try {
      const base = await runSliced(baseTables(tokenizerJson, src));
      return new QwenTokenizer(tokenizerJson as Record<string, unknown>, tokenizerConfig, src, base);
    } catch (e) {
      throw unreadable(e, src);
    }
  }

  /**
   * Loads `tokenizer.json` (required) and `tokenizer_config.json` (optional) from a checkpoint folder.
   * The megabytes of JSON are parsed and the vocabulary and merge table built in slices of a few
   * milliseconds, letting the event loop run in between; the result equals {@link QwenTokenizer.loadSync}.
   */
  static async load(dir: string): Promise<QwenTokenizer> {
    if (typeof dir !== 'string' || dir.length === 0) throw expected('QwenTokenizer.load: dir', 'a folder path', dir);
    const tokFile = join(dir, 'tokenizer.json');
    const cfgFile = join(dir, 'tokenizer_config.json');
    let tokBytes: Buffer;
    try {
      tokBytes = await readFile(tokFile);
    } catch (e) {
      throw new QwenVLError('E_MODEL_FORMAT', `${tokFile}: cannot read the tokenizer (${(e as Error).message})`, { cause: e });
    }
    let cfgText: string | undefined;
    try {
      cfgText = await readFile(cfgFile, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new QwenVLError('E_MODEL_FORMAT', `${cfgFile}: cannot read (${(e as Error).message})`, { cause: e });
      }
    }
    // tokenizer.json is megabytes: parsed and built in slices, so loading never stalls the event loop for long.
    const tokJson = await parseJsonInSlices(await runSliced(decodeUtf8Steps(tokBytes)), tokFile);
    const cfgJson = cfgText === undefined ? {} : parseJson(cfgText, cfgFile);
    return QwenTokenizer.fromJSONSliced(tokJson, cfgJson, { tokenizerFile: tokFile, configFile: cfgFile });
  }

  /** Synchronous {@link QwenTokenizer.load}. */
  static loadSync(dir: string): QwenTokenizer {
    if (typeof dir !== 'string' || dir.length === 0) throw expected('QwenTokenizer.loadSync: dir', 'a folder path', dir);
    const tokFile = join(dir, 'tokenizer.json');
    const cfgFile = join(dir, 'tokenizer_config.json');
    let tokText: string;
    try {
      tokText = readFileSync(tokFile, 'utf8');
    } catch (e) {
      throw new QwenVLError('E_MODEL_FORMAT', `${tokFile}: cannot read the tokenizer (${(e as Error).message})`, { cause: e });
    }
    let cfgText: string | undefined;
    try {
      cfgText = readFileSync(cfgFile, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new QwenVLError('E_MODEL_FORMAT', `${cfgFile}: cannot read (${(e as Error).message})`, { cause: e });
      }
    }
    return QwenTokenizer.fromJSON(parseJson(tokText, tokFile), cfgText === undefined ? {} : parseJson(cfgText, cfgFile), {
      tokenizerFile: tokFile,
      configFile: cfgFile,
    });
  }

  /**
   * Text -> token ids. Added-token strings in the text (`<|im_start|>`, `<|image_pad|>`, ...) become their ids
   * (outside `plainTextRanges`, unless `splitSpecialTokens`). Runs in one go: for long texts on a server use
   * {@link QwenTokenizer.encodeAsync}, which gives the same ids without holding up the event loop.
   */
  encode(text: string, options?: TokenEncodeOptions): number[] {
    const o = this.encodeArgs('encode', text, options, false);
    return runToEnd(this.encodeSteps(text, o, false));
  }

  /**
   * {@link QwenTokenizer.encode} as slices of at most a few milliseconds with the event loop running in
   * between, with the same ids; `maxTokens` refuses a text that needs more tokens (E_CONTEXT_OVERFLOW),
   * before any work when its length alone shows it.
   */
  async encodeAsync(text: string, options?: TokenEncodeAsyncOptions): Promise<number[]> {
    const o = this.encodeArgs('encodeAsync', text, options, true);
    return runSliced(this.encodeSteps(text, o, true));
  }

  /** Checked copy of the arguments of encode / encodeAsync. */
  private encodeArgs(where: string, text: unknown, options: unknown, withLimit: boolean): ResolvedEncode {
    if (typeof text !== 'string') throw expected(`${where}: text`, 'a string', text);
    const o = readOptions(`${where}: options`, options, ['splitSpecialTokens', 'plainTextRanges', ...(withLimit ? (['maxTokens'] as const) : [])]);
    const split = optBoolean(`${where}: options.splitSpecialTokens`, o.splitSpecialTokens) ?? this.defaultSplitSpecial;
    const maxTokens = optInteger(`${where}: options.maxTokens`, o.maxTokens, 0);
    let ranges: [number, number][] = [];
    if (o.plainTextRanges !== undefined) {
      const list = checkArray(`${where}: options.plainTextRanges`, o.plainTextRanges, 'an array of [start, end] pairs');
      ranges = guard(`${where}: options.plainTextRanges`, () =>
        list.map((r, i) => {
          const w = `${where}: options.plainTextRanges[${i}]`;
          if (!Array.isArray(r) || r.length !== 2) throw expected(w, 'a [start, end] pair', r);
          const [a, b] = r as unknown[];
          if (typeof a !== 'number' || typeof b !== 'number' || !Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b < a || b > text.length) {
            throw expected(w, `integers 0 <= start <= end <= ${text.length}`, r);
          }
          return [a, b] as [number, number];
        }),
      );
    }
    return { split, maxTokens, ranges };
  }

  /** The encoding, as pausable work; `sliced` bounds every step, otherwise whole-text passes are used. */
  private *encodeSteps(text: string, o: ResolvedEncode, sliced: boolean): Steps<number[]> {
    const limit = o.maxTokens;
    // NFC can shorten a text at most 4 times (a character and three marks composing into one).
    if (limit !== undefined && text.length > 4 * limit * this.maxTokenBytes) throw this.overflow(limit, text.length);
    const norm: Normalized = !this.nfc ? identity(text) : sliced ? yield* normalizeNfc(text, 'text') : normalizeWhole(text, 'text');
    const n = norm.text;
    // Each token covers at most maxTokenBytes bytes, and a text has at least as many bytes as UTF-16 units.
    if (limit !== undefined && n.length > limit * this.maxTokenBytes) throw this.overflow(limit, text.length);
    const ids: number[] = [];
    const plain = (from: number, to: number): Steps<void> => this.encodeSegment(n.slice(from, to), ids, sliced, limit);
    if (o.split || !this.addedRegex) {
      yield* plain(0, n.length);
      return ids;
    }
    // Regions where added tokens are recognised: the complement of the plain-text ranges (mapped through NFC).
    const regions: [number, number][] = [];
    let at = 0;
    for (const [a, b] of [...o.ranges].sort((x, y) => x[0] - y[0])) {
      const na = mapPosition(text, norm, a);
      const nb = Math.max(na, mapPosition(text, norm, b));
      if (na > at) regions.push([at, na]);
      at = Math.max(at, nb);
    }
    if (at < n.length) regions.push([at, n.length]);
    let last = 0;
    let stripNextLeft = false;
    for (const m of this.addedMatches(n, regions)) {
      if (m === PAUSE) {
        yield;
        continue;
      }
      let from = last;
      let to = m.index;
      if (stripNextLeft) while (from < to && /\s/u.test(n[from])) from++;
      if (m.token.lstrip) while (to > from && /\s/u.test(n[to - 1])) to--;
      if (to > from) yield* plain(from, to);
      yield;
      ids.push(m.token.id);
      if (limit !== undefined && ids.length > limit) throw this.overflow(limit, text.length);
      stripNextLeft = m.token.rstrip;
      last = m.index + m.length;
    }
    let from = last;
    if (stripNextLeft) while (from < n.length && /\s/u.test(n[from])) from++;
    if (from < n.length) yield* plain(from, n.length);
    return ids;
  }

  private overflow(limit: number, chars: number): QwenVLError {
    return new QwenVLError('E_CONTEXT_OVERFLOW', `the text (${chars} characters) needs more than ${limit} tokens`);
  }

  /**
   * Added-token matches inside the regions (longest at the earliest position, as one regex over each
   * region), searched a window at a time; {@link PAUSE} between windows.
   */
  private *addedMatches(text: string, regions: readonly [number, number][]): Generator<AddedMatch | typeof PAUSE> {
    const re = this.addedRegex!;
    for (const [a, b] of regions) {
      let p = a;
      while (p < b) {
        const e = Math.min(b, p + WINDOW);
        // Matches starting before e are whole in the window: it reaches longestAdded - 1 characters further.
        const sub = text.slice(p, Math.min(b, e + this.longestAdded - 1));
        let next = e;
        re.lastIndex = 0;
        for (let m = re.exec(sub); m !== null && p + m.index < e; m = re.exec(sub)) {
          yield { index: p + m.index, length: m[0].length, token: this.addedByContent.get(m[0])! };
          next = Math.max(next, p + m.index + m[0].length);
        }
        p = next;
        yield PAUSE;
      }
    }
  }

  /** Pre-tokenizer + BPE for text without added tokens: whole-text regex, or windows and pausable BPE. */
  private *encodeSegment(text: string, out: number[], sliced: boolean, limit: number | undefined): Steps<void> {
    if (!sliced) {
      this.encodePlain(text, out);
      if (limit !== undefined && out.length > limit) throw this.overflow(limit, text.length);
      return;
    }
    let last = 0;
    for (const end of pieceEnds(text)) {
      if (end === PAUSE) {
        yield;
        continue;
      }
      const piece = text.slice(last, end);
      last = end;
      if (piece.length < LONG_PIECE) this.encodePiece(piece, out);
      else {
        const bytes = this.encoder.encode(piece);
        const whole = this.ignoreMerges ? this.vocab.get(byteLevelString(bytes)) : undefined;
        if (whole !== undefined) out.push(whole);
        else {
          const symbols = new Array<number>(bytes.length);
          for (let i = 0; i < bytes.length; i++) symbols[i] = this.byteIds[bytes[i]];
          for (const id of yield* bpeMergeHeapSteps(symbols, this.merges)) out.push(id);
        }
      }
      if (limit !== undefined && out.length > limit) throw this.overflow(limit, text.length);
    }
  }

  /** Text -> token strings (byte-level vocabulary strings such as "Ġworld", or added-token contents). */
  tokenize(text: string, options: TokenEncodeOptions = {}): string[] {
    return this.encode(text, options).map((id) => this.idToTokenTable[id]!);
  }

  /** Token ids -> text. Ids without a token (beyond the vocabulary) decode to nothing, as in `tokenizers`. */
  decode(ids: ArrayLike<number>, options?: TokenDecodeOptions): string {
    const o = readOptions('decode: options', options, ['skipSpecialTokens', 'cleanUpTokenizationSpaces']);
    const skip = optBoolean('decode: options.skipSpecialTokens', o.skipSpecialTokens) === true;
    const cleanUp = optBoolean('decode: options.cleanUpTokenizationSpaces', o.cleanUpTokenizationSpaces) ?? this.defaultCleanUp;
    const list = tokenIdList('decode: ids', ids);
    const sink = new ByteSink();
    guard('decode: ids', () => {
      for (let i = 0; i < list.length; i++) {
        const id = list[i];
        if (typeof id !== 'number' || Number.isNaN(id)) throw expected(`decode: ids[${i}]`, 'a token id (a number)', id);
        const bytes = this.tokenBytes(id, skip);
        if (bytes) sink.append(bytes);
      }
    });
    const text = decodeUtf8(sink.buf.subarray(0, sink.len));
    return cleanUp ? cleanUpTokenization(text) : text;
  }

  /** A fresh {@link StreamDecoder}; `skipSpecialTokens` as in {@link QwenTokenizer.decode}. */
  createStreamDecoder(options?: { skipSpecialTokens?: boolean }): StreamDecoder {
    const o = readOptions('createStreamDecoder: options', options, ['skipSpecialTokens']);
    const skip = optBoolean('createStreamDecoder: options.skipSpecialTokens', o.skipSpecialTokens) === true;
    let pending = new Uint8Array(16);
    let len = 0;
    return {
      push: (id: number): string => {
        if (typeof id !== 'number' || Number.isNaN(id)) throw expected('StreamDecoder.push: id', 'a token id (a number)', id);
        const bytes = this.tokenBytes(id, skip);
        if (!bytes || bytes.length === 0) return '';
        if (len + bytes.length > pending.length) {
          const grown = new Uint8Array(Math.max(pending.length * 2, len + bytes.length));
          grown.set(pending.subarray(0, len));
          pending = grown;
        }
        pending.set(bytes, len);
        len += bytes.length;
        const keep = incompleteUtf8Tail(pending, len);
        const ready = len - keep;
        if (ready === 0) return '';
        const text = decodeUtf8(pending.subarray(0, ready));
        pending.copyWithin(0, ready, len);
        len = keep;
        return text;
      },
      flush: (): string => {
        const text = len > 0 ? decodeUtf8(pending.subarray(0, len)) : '';
        len = 0;
        return text;
      },
    };
  }

  /** Token string (vocabulary string or added-token content) -> id. */
  tokenToId(token: string): number | undefined {
    if (typeof token !== 'string') throw expected('tokenToId: token', 'a string', token);
    return this.addedByContent.get(token)?.id ?? this.vocab.get(token);
  }

  /** Id -> token string (byte-level vocabulary string, e.g. "Ġseconds", or added-token content). */
  idToToken(id: number): string | undefined {
    return Number.isInteger(id) && id >= 0 ? this.idToTokenTable[id] : undefined;
  }

  /** Whether `decode(..., {skipSpecialTokens: true})` drops this id. */
  isSpecial(id: number): boolean {
    return this.specialIdSet.has(id);
  }

  /** The added token with this id, if any. */
  addedToken(id: number): AddedToken | undefined {
    return this.addedById.get(id);
  }

  /**
   * Every id's text bytes for structured output's vocabulary index: id t's are
   * `bytes[offsets[t] .. offsets[t + 1])`, for ids 0 .. size - 1 (the model's logits row). Added tokens
   * (special or not: `<|im_end|>`, `<think>`) and ids without a token have none: they are never text.
   * @internal
   */
  textTokenBytes(size: number): { bytes: Uint8Array; offsets: Int32Array } {
    const steps = this.textTokenBytesSteps(size, size);
    for (let s = steps.next(); ; s = steps.next()) if (s.done) return s.value;
  }

  /**
   * textTokenBytes in slices of `chunk` ids with the event loop let run between them (0.1-0.3 s at
   * 152k ids in all: a model's first constrained request builds it while other requests go on).
   * @internal
   */
  async textTokenBytesAsync(size: number, chunk = 8192): Promise<{ bytes: Uint8Array; offsets: Int32Array }> {
    const steps = this.textTokenBytesSteps(size, chunk);
    for (let s = steps.next(); ; s = steps.next()) {
      if (s.done) return s.value;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** textTokenBytes's work, pausing (a yield) after every `chunk` ids. */
  private *textTokenBytesSteps(size: number, chunk: number): Generator<void, { bytes: Uint8Array; offsets: Int32Array }> {
    const offsets = new Int32Array(size + 1);
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let id = 0; id < size; id++) {
      if (id > 0 && id % chunk === 0) yield;
      const tok = this.addedById.has(id) ? undefined : this.idToToken(id);
      const b = tok === undefined ? undefined : vocabStringToBytes(tok);
      if (b) {
        parts.push(b);
        total += b.length;
      }
      offsets[id + 1] = total;
    }
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    return { bytes, offsets };
  }

  /** Bytes a token contributes to decoded text; undefined when skipped or unknown. */
  private tokenBytes(id: number, skipSpecial: boolean): Uint8Array | undefined {
    if (skipSpecial && this.specialIdSet.has(id)) return undefined;
    const cached = this.bytesCache[id];
    if (cached) return cached;
    const tok = this.idToToken(id);
    if (tok === undefined) return undefined;
    const bytes = this.addedById.has(id) ? this.encoder.encode(tok) : (vocabStringToBytes(tok) ?? this.encoder.encode(tok));
    this.bytesCache[id] = bytes;
    return bytes;
  }

  /** Pre-tokenizer regex + byte-level BPE for text without added tokens. */
  private encodePlain(text: string, out: number[]): void {
    const re = this.splitRegex;
    re.lastIndex = 0;
    let last = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      // The pattern covers every character; a gap could only come from a future pattern change.
      if (m.index > last) this.encodePiece(text.slice(last, m.index), out);
      this.encodePiece(m[0], out);
      last = m.index + m[0].length;
    }
    if (last < text.length) this.encodePiece(text.slice(last), out);
  }

  private encodePiece(piece: string, out: number[]): void {
    const cached = this.pieceCache.get(piece);
    if (cached) {
      for (const id of cached) out.push(id);
      return;
    }
    const bytes = this.encoder.encode(piece);
    let ids: number[];
    const whole = this.ignoreMerges ? this.vocab.get(byteLevelString(bytes)) : undefined;
    if (whole !== undefined) {
      ids = [whole];
    } else {
      const symbols = new Array<number>(bytes.length);
      for (let i = 0; i < bytes.length; i++) symbols[i] = this.byteIds[bytes[i]];
      ids = bpeMerge(symbols, this.merges);
    }
    if (piece.length <= PIECE_CACHE_MAX_LENGTH) {
      if (this.pieceCache.size >= PIECE_CACHE_LIMIT) this.pieceCache.clear();
      this.pieceCache.set(piece, ids);
    }
    for (const id of ids) out.push(id);
  }
}

/** Ids given to decode: an array or a typed array (not a DataView), of a bounded length. */
function tokenIdList(where: string, ids: unknown): ArrayLike<unknown> {
  if (ArrayBuffer.isView(ids) && !(ids instanceof DataView)) return ids as unknown as ArrayLike<unknown>;
  return checkArray(where, ids, 'an array of token ids');
}

/** Checked arguments of an encode call. */
interface ResolvedEncode {
  split: boolean;
  maxTokens: number | undefined;
  ranges: [number, number][];
}

/** What {@link baseTables} builds from tokenizer.json's model: the part whose cost grows with the vocabulary. */
interface BaseTables {
  vocab: Map<string, number>;
  merges: MergeTable;
  byteIds: Int32Array;
  maxId: number;
  /** Base vocabulary only; added tokens are placed by the constructor. */
  idToToken: (string | undefined)[];
  /** Longest base token, in UTF-8 bytes (byte-level: a char per byte). */
  longest: number;
  nfc: boolean;
  ignoreMerges: boolean;
}

/** Tokenizer entries handled between two pause points of {@link baseTables}. */
const ENTRIES_PER_STEP = 4096;

/**
 * Checks tokenizer.json's model and pre-/post-processing and builds the vocabulary map and merge table
 * (150k entries each for Qwen) as pausable work: {@link QwenTokenizer.fromJSON} runs it in one go,
 * {@link QwenTokenizer.load} in slices.
 */
function* baseTables(tokenizerJson: unknown, src: Sources): Steps<BaseTables> {
  const fail = (msg: string) => formatError(src.tokenizerFile, msg);
  if (!isObject(tokenizerJson)) throw fail('expected a JSON object');
  const model = tokenizerJson.model;
  if (!isObject(model)) throw fail('missing "model"');
  if (model.type !== undefined && model.type !== 'BPE') {
    throw new QwenVLError('E_UNSUPPORTED', `${src.tokenizerFile}: model.type ${JSON.stringify(model.type)} is not BPE`);
  }
  if (!isObject(model.vocab)) throw fail('model.vocab must be an object of token -> id');
  if (!Array.isArray(model.merges)) throw fail('model.merges must be an array');
  if (model.dropout !== undefined && model.dropout !== null) {
    throw new QwenVLError('E_UNSUPPORTED', `${src.tokenizerFile}: BPE dropout is not supported`);
  }
  checkPreTokenizer(tokenizerJson.pre_tokenizer, src.tokenizerFile);
  const nfc = checkNormalizer(tokenizerJson.normalizer, src.tokenizerFile);
  checkDecoder(tokenizerJson.decoder, src.tokenizerFile);
  const ignoreMerges = model.ignore_merges === true;

  // Base vocabulary.
  const vocab = new Map<string, number>();
  const merges = new MergeTable();
  const byteIds = new Int32Array(256);
  let maxId = -1;
  let done = 0;
  // Keys + indexing is several times faster than Object.entries on a 150k-key object; the keys come in
  // steps too, since Object.keys of the vocabulary alone is a ~30 ms call.
  const vocabObj = model.vocab as Record<string, unknown>;
  for (const tok of yield* ownKeysSteps(vocabObj)) {
    const id = vocabObj[tok];
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= MergeTable.ID_LIMIT) {
      throw fail(`model.vocab[${JSON.stringify(tok)}] has an invalid id ${JSON.stringify(id)}`);
    }
    vocab.set(tok, id);
    if (id > maxId) maxId = id;
    if (++done % ENTRIES_PER_STEP === 0) yield;
  }
  for (let b = 0; b < 256; b++) {
    const id = vocab.get(BYTE_TO_CHAR[b]);
    if (id === undefined) throw fail(`byte-level vocabulary lacks the token for byte 0x${b.toString(16)}`);
    byteIds[b] = id;
  }

  // Merges: "a b" strings (classic) or [a, b] pairs (tokenizers >= 0.20).
  const mergeList = model.merges as unknown[];
  for (let rank = 0; rank < mergeList.length; rank++) {
    const m = mergeList[rank];
    let a: unknown;
    let b: unknown;
    if (typeof m === 'string') {
      const sp = m.indexOf(' ');
      if (sp <= 0 || m.indexOf(' ', sp + 1) !== -1) throw fail(`model.merges[${rank}] is not "left right": ${JSON.stringify(m)}`);
      a = m.slice(0, sp);
      b = m.slice(sp + 1);
    } else if (Array.isArray(m) && m.length === 2) {
      [a, b] = m;
    }
    if (typeof a !== 'string' || typeof b !== 'string') throw fail(`model.merges[${rank}] is malformed`);
    const ia = vocab.get(a);
    const ib = vocab.get(b);
    const im = vocab.get(a + b);
    if (ia === undefined || ib === undefined || im === undefined) {
      throw fail(`model.merges[${rank}] (${JSON.stringify(a)}, ${JSON.stringify(b)}) refers to tokens missing from model.vocab`);
    }
    merges.add(ia, ib, rank, im);
    if (rank % ENTRIES_PER_STEP === ENTRIES_PER_STEP - 1) yield;
  }

  const idToToken: (string | undefined)[] = new Array(maxId + 1);
  let longest = 1;
  for (const [tok, id] of vocab) {
    idToToken[id] = tok;
    if (tok.length > longest) longest = tok.length; // byte-level: a char per byte
    if (++done % ENTRIES_PER_STEP === 0) yield;
  }
  return { vocab, merges, byteIds, maxId, idToToken, longest, nfc, ignoreMerges };
}


function byteLevelString(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += BYTE_TO_CHAR[b];
  return s;
}

async function parseJsonInSlices(text: string, file: string): Promise<unknown> {
  try {
    return await parseJsonSliced(text);
  } catch (e) {
    throw new QwenVLError('E_MODEL_FORMAT', `${file}: invalid JSON (${(e as Error).message})`, { cause: e });
  }
}

/** Parsed JSON is plain data; anything else that throws while being read (a getter, a proxy) is E_MODEL_FORMAT. */
function unreadable(e: unknown, src: Sources): QwenVLError {
  if (e instanceof QwenVLError) return e;
  return new QwenVLError('E_MODEL_FORMAT', `${src.tokenizerFile}: cannot be read (${e instanceof Error ? e.message : String(e)})`, { cause: e });
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new QwenVLError('E_MODEL_FORMAT', `${file}: invalid JSON (${(e as Error).message})`, { cause: e });
  }
}

/** Accepts exactly the Qwen2 pre-tokenizer (Split with the Qwen2 regex, then ByteLevel without its own regex). */
function checkPreTokenizer(pre: unknown, file: string): void {
  const unsupported = (why: string) =>
    new QwenVLError('E_UNSUPPORTED', `${file}: pre_tokenizer ${why}; only the Qwen2 byte-level pre-tokenizer is supported`);
  if (!isObject(pre)) throw unsupported('is missing');
  const steps = pre.type === 'Sequence' ? pre.pretokenizers : [pre];
  if (!Array.isArray(steps) || steps.length !== 2) throw unsupported('has an unexpected shape');
  const [split, byteLevel] = steps as unknown[];
  if (!isObject(split) || split.type !== 'Split') throw unsupported('does not start with a Split');
  const pattern = isObject(split.pattern) ? split.pattern.Regex : undefined;
  if (pattern !== QWEN2_SPLIT_PATTERN) throw unsupported(`uses a different split pattern ${JSON.stringify(pattern)}`);
  if (split.behavior !== 'Isolated' || split.invert === true) throw unsupported('Split is not "Isolated"');
  if (!isObject(byteLevel) || byteLevel.type !== 'ByteLevel') throw unsupported('does not end with ByteLevel');
  if (byteLevel.add_prefix_space === true) throw unsupported('ByteLevel adds a prefix space');
  if (byteLevel.use_regex === true) throw unsupported('ByteLevel applies a second regex');
}

/** NFC (Qwen) or no normalizer. */
function checkNormalizer(norm: unknown, file: string): boolean {
  if (norm === null || norm === undefined) return false;
  if (isObject(norm) && norm.type === 'NFC') return true;
  if (isObject(norm) && norm.type === 'Sequence' && Array.isArray(norm.normalizers)) {
    const list = norm.normalizers as unknown[];
    if (list.length === 0) return false;
    if (list.length === 1 && isObject(list[0]) && list[0].type === 'NFC') return true;
  }
  throw new QwenVLError('E_UNSUPPORTED', `${file}: normalizer ${JSON.stringify(norm)} is not supported (only NFC or none)`);
}

function checkDecoder(dec: unknown, file: string): void {
  if (dec === null || dec === undefined) return;
  if (isObject(dec) && dec.type === 'ByteLevel') return;
  throw new QwenVLError('E_UNSUPPORTED', `${file}: decoder ${JSON.stringify(dec)} is not supported (only ByteLevel)`);
}
