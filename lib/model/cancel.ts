/**
 * Cancellation of one request. Each request owns a native cancel token (native/core/cancel.h)
 * that every native call it makes polls between layers and vision blocks; the caller's
 * AbortSignal and {@link Model.dispose} set it, so a running vision encode, prefill or decode
 * step stops within one layer. The JS-side stages (image decoding, tokenization) are raced
 * against the same cancellation so the request settles at once there too.
 * @internal
 * @module
 */
import { QwenVLError } from '../errors.js';
import { native, type NativeCancelToken } from '../native/binding.js';

/** Why a request was cancelled: its signal, or the model being disposed. @internal */
export type CancelReason = 'abort' | 'dispose';

/** @internal */
export class RequestCancel {
  /** Handed to every native call of the request. */
  readonly token: NativeCancelToken = native.newCancelToken();
  private why: CancelReason | null = null;
  private readonly waiters = new Set<() => void>();
  private readonly onAbort = () => this.cancel('abort');
  private markSettled!: () => void;
  /** Resolves when the request has settled ({@link close} ran), however it ended. */
  readonly settled = new Promise<void>((resolve) => (this.markSettled = resolve));

  constructor(
    private readonly what: string,
    private readonly signal?: AbortSignal,
  ) {
    if (signal?.aborted) this.cancel('abort');
    else signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** The first reason given, or null while the request may run. */
  get reason(): CancelReason | null {
    return this.why;
  }

  /** Stops the request: native work within one layer, a pending {@link race} at once. Idempotent. */
  cancel(why: CancelReason): void {
    if (this.why !== null) return;
    this.why = why;
    native.cancelToken(this.token, why);
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }

  /** The error a cancelled request rejects with: E_ABORTED for its signal, E_DISPOSED for dispose(). */
  error(): QwenVLError {
    return this.why === 'dispose'
      ? new QwenVLError('E_DISPOSED', `${this.what}: the model was disposed while the request ran`)
      : new QwenVLError('E_ABORTED', `${this.what}: aborted`);
  }

  /**
   * Calls `cb` when the request is cancelled (at once if it already is); returns the function that
   * unsubscribes it.
   */
  onCancel(cb: () => void): () => void {
    if (this.why !== null) {
      cb();
      return () => undefined;
    }
    this.waiters.add(cb);
    return () => this.waiters.delete(cb);
  }

  /** Throws {@link error} once cancelled. */
  throwIfCancelled(): void {
    if (this.why !== null) throw this.error();
  }

  /**
   * Settles with `p`, or rejects with {@link error} as soon as the request is cancelled. A late
   * rejection of `p` is then ignored (its work finishes in the background and is dropped).
   */
  race<T>(p: Promise<T>): Promise<T> {
    if (this.why !== null) {
      p.catch(() => {});
      return Promise.reject(this.error());
    }
    return new Promise<T>((resolve, reject) => {
      const wake = () => reject(this.error());
      this.waiters.add(wake);
      p.then(
        (v) => {
          this.waiters.delete(wake);
          resolve(v);
        },
        (e) => {
          this.waiters.delete(wake);
          reject(e);
        },
      );
    });
  }

  /** True when `e` is this request's own cancellation (native or JS), not some other failure. */
  isCancellation(e: unknown): boolean {
    return this.why !== null && e instanceof QwenVLError && (e.code === 'E_ABORTED' || e.code === 'E_DISPOSED');
  }

  /** Detaches from the signal; call when the request settles. */
  close(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
    this.waiters.clear();
    this.markSettled();
  }
}
