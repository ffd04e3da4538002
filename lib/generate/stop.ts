/**
 * Stop strings over streamed text: text is released only once it can no longer be the start
 * of a stop string, so a stop string split across tokens is never emitted.
 * @internal
 * @module
 */

/** @internal */
export class StopMatcher {
  private pending = '';
  private readonly longest: number;

  constructor(private readonly stops: readonly string[]) {
    this.longest = stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /**
   * Adds text; returns what is safe to emit and whether a stop string was found (everything from
   * the stop string on is dropped).
   */
  push(text: string): { emit: string; stopped: boolean } {
    this.pending += text;
    if (this.stops.length === 0) {
      const emit = this.pending;
      this.pending = '';
      return { emit, stopped: false };
    }
    let cut = -1;
    for (const s of this.stops) {
      const i = this.pending.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      const emit = this.pending.slice(0, cut);
      this.pending = '';
      return { emit, stopped: true };
    }
    // Hold back the longest tail that is a proper prefix of some stop string.
    let hold = 0;
    const maxHold = Math.min(this.longest - 1, this.pending.length);
    for (let k = maxHold; k > 0; k--) {
      const tail = this.pending.slice(this.pending.length - k);
      if (this.stops.some((s) => s.startsWith(tail))) {
        hold = k;
        break;
      }
    }
    const emit = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return { emit, stopped: false };
  }

  /** The held-back text at the end of generation (no stop string completed). */
  flush(): string {
    const rest = this.pending;
    this.pending = '';
    return rest;
  }
}
