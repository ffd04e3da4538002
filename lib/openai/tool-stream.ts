/**
 * Tool calls in a streamed reply. Qwen writes them as Hermes blocks,
 * `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`, after any prose. While a request
 * has tools, the text from the first `<tool_call>` on (and a trailing piece that may be its start)
 * is held back from the content deltas; at the end the held text is parsed into `tool_calls`, and
 * whatever does not parse goes out as content, so nothing the model wrote is lost.
 * @internal
 * @module
 */
import { toolCallId, type ToolCallOut } from './response.js';

/** What a tool-call parser makes of a reply: its prose, and the calls it found. @internal */
export interface ParsedToolCalls {
  content: string;
  calls: { name: string; arguments: unknown }[];
}

const OPEN = '<tool_call>';

/** The length of the longest suffix of `text` that is a proper prefix of `tag`. */
function partialTagAtEnd(text: string, tag: string): number {
  for (let n = Math.min(tag.length - 1, text.length); n > 0; n--) {
    if (text.endsWith(tag.slice(0, n))) return n;
  }
  return 0;
}

/** Splits a streamed reply into content deltas and, at its end, tool calls. @internal */
export class ToolCallStream {
  private held = '';
  private calling = false;

  /**
   * `parse` reads the held text (from the first `<tool_call>` on) into prose and calls; without it
   * (no parser, or a request without tools) every chunk passes through as content.
   */
  constructor(private readonly parse: ((text: string) => ParsedToolCalls) | undefined) {}

  /** The part of `text` that can go out as content now. */
  push(text: string): string {
    if (!this.parse) return text;
    if (this.calling) {
      this.held += text;
      return '';
    }
    const all = this.held + text;
    const at = all.indexOf(OPEN);
    if (at >= 0) {
      this.calling = true;
      this.held = all.slice(at);
      return all.slice(0, at);
    }
    const keep = partialTagAtEnd(all, OPEN);
    this.held = all.slice(all.length - keep);
    return all.slice(0, all.length - keep);
  }

  /** The end of the reply: the content still held back, and the tool calls. */
  finish(): { content: string; toolCalls: ToolCallOut[] } {
    const held = this.held;
    this.held = '';
    if (!this.parse || !this.calling) return { content: held, toolCalls: [] };
    const parsed = this.parse(held);
    return {
      content: parsed.content,
      toolCalls: parsed.calls.map((c) => ({
        id: toolCallId(),
        type: 'function',
        function: { name: c.name, arguments: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments ?? {}) },
      })),
    };
  }
}
