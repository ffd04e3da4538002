/**
 * Tool calls in a reply, in the Hermes format the Qwen chat templates ask for:
 * `<tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>`, any number per reply, with text
 * around them. Each block becomes an OpenAI-shaped {@link ToolCall} (arguments as a JSON string), or,
 * when its body is not such a call, a {@link ToolCallError} that keeps the raw body: a malformed call
 * is reported, never dropped and never thrown.
 *
 * The same parser runs on a finished reply ({@link parseToolCalls}) and on a stream
 * ({@link ToolCallStream}), so a streamed reply splits exactly as the finished one. Tags may arrive
 * split across chunks; blocks are found by their tags, not by counting braces, so braces inside JSON
 * strings need no care. Whitespace that only separates the text from a block at the reply's start or
 * end is dropped (`"Checking.\n<tool_call>…</tool_call>"` has the text `"Checking."`); text between
 * blocks keeps its spacing.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { expected, publicCall, readOptions } from '../validate.js';
import { partialTagLength, trailingSpaceLength } from './tags.js';

/** The tag that opens a tool call. */
export const TOOL_CALL_OPEN = '<tool_call>';
/** The tag that closes a tool call. */
export const TOOL_CALL_CLOSE = '</tool_call>';

/** A function call the model asked for, as OpenAI's chat completions API returns it. */
export interface ToolCall {
  /** Unique within the reply; send it back as the tool message's `tool_call_id`. */
  id: string;
  type: 'function';
  function: {
    name: string;
    /** The arguments object as a JSON string (as OpenAI gives it). */
    arguments: string;
  };
}

/** A `<tool_call>` block whose body is not a call: what it held, and why it was refused. */
export interface ToolCallError {
  /** The block's place among all the reply's `<tool_call>` blocks (well-formed ones included), from 0. */
  index: number;
  /** The text between the tags (the whole rest of the reply for a block never closed). */
  raw: string;
  /** What is wrong with it. */
  message: string;
}

/** One piece of a reply split by {@link ToolCallStream}. */
export type ToolCallPiece =
  | { type: 'text'; text: string }
  /** `index`: the call's place in the reply's list of well-formed calls. */
  | { type: 'tool_call'; index: number; toolCall: ToolCall }
  | { type: 'tool_call_error'; error: ToolCallError };

/** Options of {@link parseToolCalls} and {@link ToolCallStream}. */
export interface ToolCallParseOptions {
  /**
   * Makes the id of the `index`-th well-formed call from its block's raw body. Default: `call_`
   * and 24 random hex digits.
   */
  makeId?: (index: number, raw: string) => string;
}

/** A finished reply split into its text and its tool calls. */
export interface ParsedToolCalls {
  /** The reply without its `<tool_call>` blocks. */
  text: string;
  /** The well-formed calls, in order. */
  toolCalls: ToolCall[];
  /** The malformed blocks, in order. */
  errors: ToolCallError[];
  /** Whether the reply ends with a well-formed call (only whitespace after it): OpenAI's `finish_reason: 'tool_calls'`. */
  endsWithToolCall: boolean;
}

const randomId = (): string => `call_${randomBytes(12).toString('hex')}`;

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

/** The call in a block's body, or why there is none. */
export function readToolCallBody(raw: string): { name: string; arguments: string } | { error: string } {
  const src = raw.trim();
  if (src.length === 0) return { error: 'the tool call is empty' };
  let v: unknown;
  try {
    v = JSON.parse(src);
  } catch (e) {
    return { error: `the tool call is not valid JSON (${(e as Error).message})` };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    return { error: `the tool call must be a JSON object {"name": ..., "arguments": {...}}, got ${kindOf(v)}` };
  }
  const call = v as Record<string, unknown>;
  if (typeof call.name !== 'string' || call.name.length === 0) return { error: 'the tool call has no "name" (a non-empty string)' };
  let args = call.arguments ?? {};
  if (typeof args === 'string') {
    // Some models write the arguments as a JSON string, as OpenAI's API carries them.
    try {
      args = JSON.parse(args);
    } catch {
      return { error: `the "arguments" of ${call.name} are a string that is not JSON` };
    }
  }
  if (typeof args !== 'object' || args === null || Array.isArray(args)) {
    return { error: `the "arguments" of ${call.name} must be a JSON object, got ${kindOf(args)}` };
  }
  return { name: call.name, arguments: JSON.stringify(args) };
}

/**
 * Splits a reply into text and tool calls as it streams: {@link push} each decoded chunk, then
 * {@link end} once. Each piece is final when returned.
 */
export class ToolCallStream {
  private buffer = '';
  private inCall = false;
  /** Trailing whitespace of the text so far: emitted once more text follows, dropped if the reply ends with a block. */
  private held = '';
  private emitted = false;
  private blocks = 0;
  private calls = 0;
  private lastWasCall = false;
  private lastWasBlock = false;
  private ended = false;
  private readonly makeId: (index: number, raw: string) => string;

  constructor(options: ToolCallParseOptions = {}) {
    const o = readOptions('ToolCallStream: options', options, ['makeId']);
    if (o.makeId !== undefined && typeof o.makeId !== 'function') throw expected('ToolCallStream: options.makeId', 'a function', o.makeId);
    this.makeId = (o.makeId as ToolCallParseOptions['makeId']) ?? randomId;
  }

  /** Whether the reply so far ends with a well-formed call (only whitespace after it). */
  get endsWithToolCall(): boolean {
    return this.lastWasCall && !this.inCall && this.buffer.trim().length === 0;
  }

  /** Adds a chunk of the reply; returns the pieces it completes. */
  push(chunk: string): ToolCallPiece[] {
    if (typeof chunk !== 'string') throw expected('ToolCallStream.push', 'a string', chunk);
    if (this.ended) throw expected('ToolCallStream.push', 'a call before end()', chunk);
    this.buffer += chunk;
    const out: ToolCallPiece[] = [];
    for (;;) {
      if (this.inCall) {
        // A long call arrives over many chunks: look for the close tag only where it could now end.
        const close = this.buffer.indexOf(TOOL_CALL_CLOSE, Math.max(0, this.buffer.length - chunk.length - TOOL_CALL_CLOSE.length + 1));
        if (close < 0) break;
        out.push(this.block(this.buffer.slice(0, close), false));
        this.buffer = this.buffer.slice(close + TOOL_CALL_CLOSE.length);
        this.inCall = false;
        continue;
      }
      const open = this.buffer.indexOf(TOOL_CALL_OPEN);
      if (open >= 0) {
        this.text(this.buffer.slice(0, open), out);
        this.buffer = this.buffer.slice(open + TOOL_CALL_OPEN.length);
        this.inCall = true;
        continue;
      }
      const keep = partialTagLength(this.buffer, TOOL_CALL_OPEN);
      this.text(this.buffer.slice(0, this.buffer.length - keep), out);
      this.buffer = this.buffer.slice(this.buffer.length - keep);
      break;
    }
    return out;
  }

  /** Ends the reply: a block never closed is parsed as it is; held text is released. */
  end(): ToolCallPiece[] {
    if (this.ended) return [];
    this.ended = true;
    const out: ToolCallPiece[] = [];
    if (this.inCall) {
      out.push(this.block(this.buffer, true));
      this.inCall = false;
    } else {
      this.text(this.buffer, out);
    }
    this.buffer = '';
    // Whitespace between the last block and the end separates nothing.
    if (!this.lastWasBlock && this.held) out.push({ type: 'text', text: this.held });
    this.held = '';
    return out;
  }

  private text(s: string, out: ToolCallPiece[]): void {
    if (s.length === 0) return;
    const tail = trailingSpaceLength(s);
    if (tail === s.length) {
      this.held += s;
      return;
    }
    // Whitespace before the reply's first block, when the reply starts with it, separates nothing.
    const lead = !this.emitted && this.blocks > 0 ? '' : this.held;
    const body = this.emitted || this.blocks === 0 ? s.slice(0, s.length - tail) : s.slice(0, s.length - tail).trimStart();
    out.push({ type: 'text', text: lead + body });
    this.emitted = true;
    this.held = s.slice(s.length - tail);
    this.lastWasCall = false;
    this.lastWasBlock = false;
  }

  private block(raw: string, unclosed: boolean): ToolCallPiece {
    const index = this.blocks++;
    this.lastWasBlock = true;
    const call = readToolCallBody(raw);
    if ('error' in call) {
      this.lastWasCall = false;
      const message = unclosed ? `the reply ended inside a tool call (no ${TOOL_CALL_CLOSE}): ${call.error}` : call.error;
      return { type: 'tool_call_error', error: { index, raw, message } };
    }
    this.lastWasCall = true;
    const n = this.calls++;
    return { type: 'tool_call', index: n, toolCall: { id: this.makeId(n, raw), type: 'function', function: call } };
  }
}

/** Collects stream pieces into a {@link ParsedToolCalls}. @internal */
export function collectToolCallPieces(pieces: readonly ToolCallPiece[], endsWithToolCall: boolean): ParsedToolCalls {
  let text = '';
  const toolCalls: ToolCall[] = [];
  const errors: ToolCallError[] = [];
  for (const p of pieces) {
    if (p.type === 'text') text += p.text;
    else if (p.type === 'tool_call') toolCalls.push(p.toolCall);
    else errors.push(p.error);
  }
  return { text, toolCalls, errors, endsWithToolCall };
}

/**
 * Splits a finished reply into its text and its Hermes `<tool_call>` blocks (see the module
 * comment): well-formed calls in the OpenAI shape, malformed ones as errors with their raw text.
 */
export function parseToolCalls(text: string, options?: ToolCallParseOptions): ParsedToolCalls {
  return publicCall('parseToolCalls', arguments, () => {
    if (typeof text !== 'string') throw expected('parseToolCalls: text', 'a string', text);
    const s = new ToolCallStream(options);
    const pieces = [...s.push(text), ...s.end()];
    return collectToolCallPieces(pieces, s.endsWithToolCall);
  });
}
