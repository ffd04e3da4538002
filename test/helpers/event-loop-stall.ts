/**
 * The longest time the event loop went without a turn while some async work ran: what a slow
 * synchronous span inside the work (a parse, an index build) costs every other request.
 * @module
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

/** Runs `work` while measuring the longest gap between two turns of the event loop, in ms (and node's own delay histogram's max). */
export async function longestStall<T>(work: () => Promise<T>): Promise<{ value: T; stallMs: number; histMs: number }> {
  const hist = monitorEventLoopDelay({ resolution: 1 });
  let longest = 0;
  let last = performance.now();
  let running = true;
  const tick = () => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    if (running) setImmediate(tick);
  };
  hist.enable();
  setImmediate(tick);
  try {
    const value = await work();
    // One more turn: the tick pending since the last one records the gap (all of it, when `work` never yielded).
    await new Promise<void>((resolve) => setImmediate(resolve));
    return { value, stallMs: longest, histMs: hist.max / 1e6 };
  } finally {
    running = false;
    hist.disable();
  }
}
