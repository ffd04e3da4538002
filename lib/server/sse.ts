/**
 * Server-sent events on a raw Node response, with back-pressure: a client that reads slower than the
 * model writes makes `send` wait for the socket to drain (the model keeps generating meanwhile, at
 * most the request's `max_tokens` of text piling up); one that stops reading for `stallMs` is
 * disconnected, which aborts its generation.
 * @internal
 * @module
 */
import type { ServerResponse } from 'node:http';

/** Writes `data:` events to one response. @internal */
export class SseWriter {
  constructor(
    private readonly res: ServerResponse,
    private readonly stallMs: number,
  ) {}

  /** Whether the client is still there to write to. */
  get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded;
  }

  /** Sends the status line and headers of an event stream. */
  start(): void {
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
    });
    // Headers go out now: a client sees the stream start before the first token.
    this.res.flushHeaders();
  }

  /** One `data:` event; resolves false when the client is gone (or was cut off for stalling). */
  async send(data: unknown): Promise<boolean> {
    return this.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  }

  private write(text: string): Promise<boolean> {
    if (!this.open) return Promise.resolve(false);
    if (this.res.write(text)) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.res.off('drain', onDrain);
        this.res.off('close', onClose);
        resolve(ok);
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      const timer = setTimeout(() => {
        // A client that stopped reading holds a running slot: cut it off (its generation aborts).
        this.res.destroy();
        done(false);
      }, this.stallMs);
      this.res.on('drain', onDrain);
      this.res.on('close', onClose);
    });
  }

  /** Ends the stream. */
  end(): void {
    if (this.open) this.res.end();
  }
}
