/**
 * How `qwenvl chat` prints a streamed reply: the answer on stdout as it comes; the thinking block
 * on stderr, dimmed on a terminal, so that `qwenvl chat … > answer.txt` keeps the answer alone
 * (`--hide-reasoning` drops it); each tool call on stdout as one JSON line (OpenAI's shape), and a
 * malformed one on stderr with its raw text.
 * @internal
 * @module
 */
import type { ChatStreamEvent } from '../generate/reply.js';

/** Where and how the printer writes. @internal */
export interface ChatPrinterOptions {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Dim the reasoning (stderr is a terminal). */
  dim: boolean;
  /** Print the reasoning at all. */
  showReasoning: boolean;
}

const DIM = '\x1b[2m';
const UNDIM = '\x1b[22m';

/** Prints the events of one reply. @internal */
export class ChatPrinter {
  private inReasoning = false;
  private lastOut = '';

  constructor(private readonly o: ChatPrinterOptions) {}

  event(e: ChatStreamEvent): void {
    if (e.type === 'reasoning') {
      if (!this.o.showReasoning) return;
      this.inReasoning = true;
      this.o.stderr(this.o.dim ? `${DIM}${e.text}${UNDIM}` : e.text);
      return;
    }
    this.closeReasoning();
    if (e.type === 'text') {
      this.out(e.text);
    } else if (e.type === 'tool_call') {
      if (this.lastOut !== '' && this.lastOut !== '\n') this.out('\n');
      this.out(`${JSON.stringify(e.toolCall)}\n`);
    } else {
      this.o.stderr(`qwenvl chat: malformed tool call ${e.error.index}: ${e.error.message}\n  raw: ${JSON.stringify(e.error.raw)}\n`);
    }
  }

  /** Ends the reply: the answer's line is ended. */
  end(): void {
    this.closeReasoning();
    if (this.lastOut !== '\n') this.out('\n');
  }

  private closeReasoning(): void {
    if (!this.inReasoning) return;
    this.inReasoning = false;
    this.o.stderr('\n');
  }

  private out(text: string): void {
    if (text.length === 0) return;
    this.o.stdout(text);
    this.lastOut = text[text.length - 1];
  }
}
