/**
 * Runs a pull's file downloads a few at a time. The first failure stops the others (their
 * transfers are aborted, their partial files kept for the next pull) and, once every one has
 * settled, is what the pull throws: no download keeps writing after the pull has returned.
 * @internal
 * @module
 */

/**
 * Calls `fn(item, signal)` for each item, at most `limit` at once, in order of the list. `signal`
 * is aborted when `outer` is or when another call failed.
 */
export async function eachBounded<T>(
  items: readonly T[],
  limit: number,
  outer: AbortSignal | undefined,
  fn: (item: T, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const stop = new AbortController();
  const signal = outer ? AbortSignal.any([outer, stop.signal]) : stop.signal;
  let next = 0;
  let failed: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item, signal);
      } catch (e) {
        // The first error is the cause; the others are mostly the abort it triggered.
        failed ??= { error: e };
        stop.abort();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed.error;
}
