/**
 * The time and frame number a grounding item on a video carries. Qwen3-VL's video grounding
 * cookbook asks for `{"time": 1.0, "bbox_2d": [...]}` (seconds, a number); models also write
 * `"1.0"`, `"1.0s"`, `"1.0 seconds"`, `"<1.0 seconds>"` or a clock `"00:01.0"` / `"0:00:01"`, and
 * some prompts ask for `"frame": n` instead.
 * @internal
 * @module
 */

export const TIME_KEYS = ['time', 'timestamp', 'time_s', 'seconds', 'second', 'sec'];
export const FRAME_KEYS = ['frame', 'frame_index', 'frame_id', 'frame_idx'];

/** Seconds from a number or a written time; undefined when `v` is none (NaN never comes out). */
export function secondsOf(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const s = v.trim().replace(/^<(.*)>$/, '$1').trim();
  const plain = /^(\d+(?:\.\d+)?)\s*(?:s|secs?|seconds?)?$/i.exec(s);
  if (plain) return Number(plain[1]);
  // [hh:]mm:ss[.ff]: minutes and seconds under 60 after the first field.
  const clock = /^(\d+):(\d{1,2})(?::(\d{1,2}))?(\.\d+)?$/.exec(s);
  if (!clock) return undefined;
  const parts = [clock[1], clock[2], clock[3]].filter((x): x is string => x !== undefined).map(Number);
  if (parts.slice(1).some((x) => x >= 60)) return undefined;
  const whole = parts.reduce((acc, x) => acc * 60 + x, 0);
  return whole + (clock[4] ? Number(clock[4]) : 0);
}

/** A frame number: a non-negative integer, or such a string. */
export function frameOf(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** The first of `keys` that `o` has, or undefined. */
export function firstKey(o: Record<string, unknown>, keys: readonly string[]): string | undefined {
  return keys.find((k) => Object.hasOwn(o, k));
}
