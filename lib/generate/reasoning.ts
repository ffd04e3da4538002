/**
 * The thinking block of a reply: `<think>…</think>` that thinking checkpoints (Qwen3-VL "Thinking")
 * write before their answer. Its content becomes `reasoning`, the rest the answer's text.
 *
 * A block is recognised where thinking checkpoints put it: at the very start of the reply (after
 * whitespace), or already open when the reply begins, because the chat template ended the prompt
 * with `<think>` (the Qwen3-VL Thinking templates do; {@link promptOpensThinking}). The reply then
 * holds only `</think>` (a `<think>` the model writes again at its start is dropped). A reply that ends inside the block (maxTokens, abort) keeps what it has as
 * reasoning and has no text. Whitespace around the reasoning, and between `</think>` and the
 * answer, is dropped, as Qwen's model cards strip it. Tags split across chunks are handled: the end
 * of a chunk that could still become a tag is held back until the next one.
 * @module
 */
import { expected, optBoolean, publicCall, readOptions } from '../validate.js';
import { partialTagLength, trailingSpaceLength } from './tags.js';

/** The tag that opens a thinking block. */
export const THINK_OPEN = '<think>';
/** The tag that closes a thinking block. */
export const THINK_CLOSE = '</think>';

/** One piece of a reply split by {@link ReasoningStream}. */
export interface ReasoningPiece {
  type: 'reasoning' | 'text';
  text: string;
}

/** Options of {@link splitReasoning} and {@link ReasoningStream}. */
export interface ReasoningParseOptions {
  /** The prompt already opened the block (it ends with `<think>`): the reply starts inside it. Default false. */
  open?: boolean;
}

/** A finished reply split into reasoning and answer. */
export interface SplitReasoning {
  /** The thinking block's content; absent when the reply has no block. */
  reasoning?: string;
  /** The answer: the reply without its thinking block. */
  text: string;
  /** Whether the block was closed (`</think>` seen); false also when there is no block. */
  closed: boolean;
}

/** Whether a rendered prompt ends inside an open thinking block (it ends with `<think>` and whitespace). */
export function promptOpensThinking(prompt: string): boolean {
  return prompt.trimEnd().endsWith(THINK_OPEN);
}

/** Splits a reply into reasoning and text as it streams: {@link push} each chunk, then {@link end} once. */
export class ReasoningStream {
  private state: 'start' | 'reasoning' | 'answer';
  private buffer = '';
  /** Leading whitespace of the reasoning, and of the answer after `</think>`, is dropped. */
  private trimLead = true;
  /** Trailing whitespace of the reasoning so far, emitted only if more reasoning follows. */
  private held = '';
  private opened: boolean;
  private isClosed = false;
  private ended = false;

  constructor(options: ReasoningParseOptions = {}) {
    const o = readOptions('ReasoningStream: options', options, ['open']);
    this.opened = optBoolean('ReasoningStream: options.open', o.open) === true;
    this.state = 'start';
  }

  /** Whether the reply has a thinking block (opened by the prompt or by the reply). */
  get found(): boolean {
    return this.opened;
  }

  /** Whether the block has been closed. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** Adds a chunk of the reply; returns the pieces it completes. */
  push(chunk: string): ReasoningPiece[] {
    if (typeof chunk !== 'string') throw expected('ReasoningStream.push', 'a string', chunk);
    if (this.ended) throw expected('ReasoningStream.push', 'a call before end()', chunk);
    this.buffer += chunk;
    const out: ReasoningPiece[] = [];
    for (;;) {
      if (this.state === 'start') {
        const t = this.buffer.trimStart();
        if (t.startsWith(THINK_OPEN)) {
          this.state = 'reasoning';
          this.opened = true;
          this.buffer = t.slice(THINK_OPEN.length);
          continue;
        }
        if (t.length === 0 || THINK_OPEN.startsWith(t)) break;
        if (this.opened) {
          // The prompt opened the block (a `<think>` the model wrote again was dropped above).
          this.state = 'reasoning';
          continue;
        }
        // No block: the reply is all answer, as it came.
        this.state = 'answer';
        this.trimLead = false;
        continue;
      }
      if (this.state === 'reasoning') {
        const close = this.buffer.indexOf(THINK_CLOSE);
        if (close >= 0) {
          this.reasoning(this.buffer.slice(0, close), out);
          this.held = '';
          this.isClosed = true;
          this.state = 'answer';
          this.trimLead = true;
          this.buffer = this.buffer.slice(close + THINK_CLOSE.length);
          continue;
        }
        const keep = partialTagLength(this.buffer, THINK_CLOSE);
        this.reasoning(this.buffer.slice(0, this.buffer.length - keep), out);
        this.buffer = this.buffer.slice(this.buffer.length - keep);
        break;
      }
      let text = this.buffer;
      this.buffer = '';
      if (this.trimLead) text = text.trimStart();
      if (text.length > 0) {
        this.trimLead = false;
        out.push({ type: 'text', text });
      }
      break;
    }
    return out;
  }

  /** Ends the reply: held text is released (an unclosed block's rest is reasoning). */
  end(): ReasoningPiece[] {
    if (this.ended) return [];
    this.ended = true;
    const out: ReasoningPiece[] = [];
    if (this.state === 'reasoning' || (this.state === 'start' && this.opened)) this.reasoning(this.buffer, out);
    else if (this.buffer.length > 0) out.push({ type: 'text', text: this.buffer });
    this.buffer = '';
    this.held = '';
    return out;
  }

  private reasoning(s: string, out: ReasoningPiece[]): void {
    if (this.trimLead) s = s.trimStart();
    if (s.length === 0) return;
    this.trimLead = false;
    const tail = trailingSpaceLength(s);
    if (tail === s.length) {
      this.held += s;
      return;
    }
    out.push({ type: 'reasoning', text: this.held + s.slice(0, s.length - tail) });
    this.held = s.slice(s.length - tail);
  }
}

/**
 * Splits a finished reply into its thinking block and its answer (see the module comment).
 * `open: true` when the prompt already opened the block.
 */
export function splitReasoning(text: string, options?: ReasoningParseOptions): SplitReasoning {
  return publicCall('splitReasoning', arguments, () => {
    if (typeof text !== 'string') throw expected('splitReasoning: text', 'a string', text);
    const s = new ReasoningStream(options);
    let reasoning = '', answer = '';
    for (const p of [...s.push(text), ...s.end()]) {
      if (p.type === 'reasoning') reasoning += p.text;
      else answer += p.text;
    }
    return { ...(s.found ? { reasoning } : {}), text: answer, closed: s.closed };
  });
}
