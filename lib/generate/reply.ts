/**
 * A reply as chat() returns it and streamEvents() streams it: its thinking block
 * (lib/generate/reasoning.ts) taken out as reasoning, then, when the request gave tools, its tool
 * calls (lib/generate/tool-calls.ts) taken out of the answer. Tool calls are looked for in the answer
 * only: a thinking model drafting a call in its reasoning has not made it.
 * @module
 */
import { ReasoningStream } from './reasoning.js';
import { ToolCallStream, type ToolCall, type ToolCallError, type ToolCallPiece } from './tool-calls.js';

/** One typed piece of a streamed reply (see `Model.streamEvents`). */
export type ChatStreamEvent =
  /** Answer text. */
  | { type: 'text'; text: string }
  /** Text of the thinking block. */
  | { type: 'reasoning'; text: string }
  /** A complete, well-formed tool call; `index` is its place in `ChatResult.toolCalls`. */
  | { type: 'tool_call'; index: number; toolCall: ToolCall }
  /** A malformed `<tool_call>` block; it is also in `ChatResult.toolCallErrors`. */
  | { type: 'tool_call_error'; error: ToolCallError };

/** What a reply adds to its ChatResult. @internal */
export interface ReplyFields {
  text: string;
  reasoning?: string;
  toolCalls?: ToolCall[];
  toolCallErrors?: ToolCallError[];
}

/** How a reply is read. @internal */
export interface ReplyOptions {
  /** The prompt ended inside an open thinking block. */
  thinking: boolean;
  /** The request gave tools: tool calls are parsed out of the answer. */
  tools: boolean;
  /** Ids of the well-formed calls (see ToolCallParseOptions.makeId). */
  makeId?: (index: number, raw: string) => string;
}

/** Splits one reply as it streams and collects its result fields. @internal */
export class ReplyParser {
  private readonly reasoning: ReasoningStream;
  private readonly calls: ToolCallStream | null;
  private text = '';
  private thought = '';
  private readonly toolCalls: ToolCall[] = [];
  private readonly errors: ToolCallError[] = [];

  constructor(options: ReplyOptions) {
    this.reasoning = new ReasoningStream({ open: options.thinking });
    this.calls = options.tools ? new ToolCallStream(options.makeId ? { makeId: options.makeId } : {}) : null;
  }

  /** Adds a chunk of decoded reply text; returns the events it completes. */
  push(chunk: string): ChatStreamEvent[] {
    return this.route(this.reasoning.push(chunk), false);
  }

  /** Ends the reply; returns the last events. */
  end(): ChatStreamEvent[] {
    return this.route(this.reasoning.end(), true);
  }

  /** Whether the answer ends with a well-formed tool call. */
  get endsWithToolCall(): boolean {
    return this.calls?.endsWithToolCall ?? false;
  }

  /** The result fields of the reply so far (all of it once {@link end} has run). */
  fields(): ReplyFields {
    return {
      text: this.text,
      ...(this.reasoning.found ? { reasoning: this.thought } : {}),
      ...(this.toolCalls.length > 0 ? { toolCalls: [...this.toolCalls] } : {}),
      ...(this.errors.length > 0 ? { toolCallErrors: [...this.errors] } : {}),
    };
  }

  private route(pieces: readonly { type: 'reasoning' | 'text'; text: string }[], last: boolean): ChatStreamEvent[] {
    const out: ChatStreamEvent[] = [];
    const take = (e: ChatStreamEvent | ToolCallPiece) => {
      if (e.type === 'text') this.text += e.text;
      else if (e.type === 'reasoning') this.thought += e.text;
      else if (e.type === 'tool_call') this.toolCalls.push(e.toolCall);
      else this.errors.push(e.error);
      out.push(e);
    };
    for (const p of pieces) {
      if (p.type === 'reasoning' || this.calls === null) take(p);
      else this.calls.push(p.text).forEach(take);
    }
    if (last && this.calls !== null) this.calls.end().forEach(take);
    return out;
  }
}
