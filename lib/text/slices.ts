/**
 * Long synchronous work cut into slices: the work is written once as a generator that `yield`s at
 * points where it may pause; {@link runToEnd} runs it in one go (the synchronous API), {@link runSliced}
 * gives the event loop a turn whenever a slice has run for {@link SLICE_MS}, so no single stall of the
 * event loop grows with the input.
 * @internal
 * @module
 */
import { performance } from 'node:perf_hooks';

/** Work that pauses at its `yield`s and returns a T. */
export type Steps<T> = Generator<void, T, void>;

/** Longest run of one slice before the event loop gets a turn. */
export const SLICE_MS = 8;

/** Runs the work to its end without pausing. */
export function runToEnd<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Runs the work, letting the event loop run (timers, I/O) between slices of about {@link SLICE_MS}. */
export async function runSliced<T>(steps: Steps<T>, sliceMs = SLICE_MS): Promise<T> {
  let start = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() - start >= sliceMs) {
      await turn();
      start = performance.now();
    }
  }
}
