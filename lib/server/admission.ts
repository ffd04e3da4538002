/**
 * Server-level admission: at most `maxRunning` requests hand work to the model at once (the model
 * batches them), at most `maxQueue` wait for a turn, first come first served; one more is refused
 * at once (429) instead of piling up. Closing refuses everything new and every waiter (503).
 * @internal
 * @module
 */
import { OpenAIError } from '../openai/errors.js';

/** A running slot; `release()` frees it (once; later calls do nothing). @internal */
export interface Slot {
  release(): void;
}

interface Waiter {
  grant: (slot: Slot) => void;
  refuse: (err: unknown) => void;
}

/** 429: the queue is full. @internal */
export function queueFull(maxQueue: number): OpenAIError {
  return new OpenAIError(429, `the server is busy (${maxQueue} requests already waiting); retry later`, 'rate_limit_error', null, 'queue_full');
}

/** 503: the server is shutting down. @internal */
export function shuttingDown(): OpenAIError {
  return new OpenAIError(503, 'the server is shutting down', 'server_error', null, 'shutting_down');
}

/** Running and waiting requests under two caps. @internal */
export class Admission {
  private active = 0;
  private readonly waiting: Waiter[] = [];
  private closed = false;

  constructor(readonly maxRunning: number, readonly maxQueue: number) {
    if (!(Number.isSafeInteger(maxRunning) && maxRunning >= 1)) throw new RangeError('maxRunning must be an integer >= 1');
    if (!(Number.isSafeInteger(maxQueue) && maxQueue >= 0)) throw new RangeError('maxQueue must be an integer >= 0');
  }

  /** Requests holding a slot. */
  get running(): number {
    return this.active;
  }

  /** Requests waiting for one. */
  get queued(): number {
    return this.waiting.length;
  }

  private slot(): Slot {
    this.active++;
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.active--;
        const next = this.waiting.shift();
        if (next) next.grant(this.slot());
      },
    };
  }

  /**
   * A slot now, or after the requests ahead; rejects with 429 when the queue is full, 503 once
   * closed, and `signal`'s reason when it aborts while waiting (the place in line is given up).
   */
  acquire(signal?: AbortSignal): Promise<Slot> {
    if (this.closed) return Promise.reject(shuttingDown());
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.active < this.maxRunning && this.waiting.length === 0) return Promise.resolve(this.slot());
    if (this.waiting.length >= this.maxQueue) return Promise.reject(queueFull(this.maxQueue));
    return new Promise<Slot>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        grant: (slot) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(slot);
        },
        refuse: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  /** Refuses new requests and every waiting one (503); running ones keep their slots. */
  close(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.refuse(shuttingDown());
  }
}
