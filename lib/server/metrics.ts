/**
 * A small Prometheus registry: counters, gauges and histograms with labels, and collectors read at
 * scrape time, rendered in the text exposition format (version 0.0.4).
 * @internal
 * @module
 */

type Labels = Record<string, string>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${escapeLabel(labels[k])}"`).join(',')}}`;
}

function num(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return Number.isNaN(v) ? 'NaN' : String(v);
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

interface Metric {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  lines(): string[];
}

/** A value per label set. */
class Series {
  private readonly values = new Map<string, { labels: Labels; value: number }>();

  add(labels: Labels, by: number): void {
    const key = labelText(labels);
    const cur = this.values.get(key);
    if (cur) cur.value += by;
    else this.values.set(key, { labels: { ...labels }, value: by });
  }

  set(labels: Labels, value: number): void {
    this.values.set(labelText(labels), { labels: { ...labels }, value });
  }

  get(labels: Labels): number {
    return this.values.get(labelText(labels))?.value ?? 0;
  }

  lines(name: string): string[] {
    return [...this.values.values()].map(({ labels, value }) => `${name}${labelText(labels)} ${num(value)}`);
  }
}

/** A monotonic count. @internal */
export class Counter implements Metric {
  readonly type = 'counter' as const;
  private readonly series = new Series();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new RangeError(`${this.name}: a counter only goes up`);
    this.series.add(labels, by);
  }
  get(labels: Labels = {}): number {
    return this.series.get(labels);
  }
  lines(): string[] {
    return this.series.lines(this.name);
  }
}

/** A value that goes up and down, set directly or read from `collect` at scrape time. @internal */
export class Gauge implements Metric {
  readonly type = 'gauge' as const;
  private readonly series = new Series();
  constructor(readonly name: string, readonly help: string, private readonly collect?: () => number) {}
  set(value: number, labels: Labels = {}): void {
    this.series.set(labels, value);
  }
  get(labels: Labels = {}): number {
    return this.collect ? this.collect() : this.series.get(labels);
  }
  lines(): string[] {
    return this.collect ? [`${this.name} ${num(this.collect())}`] : this.series.lines(this.name);
  }
}

/** Observations counted into cumulative buckets, with their sum and count. @internal */
export class Histogram implements Metric {
  readonly type = 'histogram' as const;
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {
    if (buckets.some((b, i) => i > 0 && b <= buckets[i - 1])) throw new RangeError(`${name}: buckets must increase`);
    this.counts = new Array<number>(buckets.length).fill(0);
  }
  observe(v: number): void {
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]) this.counts[i]++;
    this.sum += v;
    this.count++;
  }
  /** Count of observations. */
  get total(): number {
    return this.count;
  }
  lines(): string[] {
    return [
      ...this.buckets.map((b, i) => `${this.name}_bucket{le="${num(b)}"} ${this.counts[i]}`),
      `${this.name}_bucket{le="+Inf"} ${this.count}`,
      `${this.name}_sum ${num(this.sum)}`,
      `${this.name}_count ${this.count}`,
    ];
  }
}

/** A sample a collector reports at scrape time. @internal */
export interface CollectedSample {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  value: number;
  labels?: Labels;
}

/** The metrics of one server, rendered for `/metrics`. @internal */
export class MetricsRegistry {
  private readonly metrics: Metric[] = [];
  private readonly collectors: (() => CollectedSample[])[] = [];

  private add<M extends Metric>(m: M): M {
    if (!NAME.test(m.name)) throw new RangeError(`bad metric name '${m.name}'`);
    if (this.metrics.some((x) => x.name === m.name)) throw new RangeError(`metric '${m.name}' registered twice`);
    this.metrics.push(m);
    return m;
  }

  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help));
  }
  gauge(name: string, help: string, collect?: () => number): Gauge {
    return this.add(new Gauge(name, help, collect));
  }
  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, buckets));
  }
  /** Samples computed at each scrape (e.g. what the model reports); a throwing collector is skipped. */
  collector(fn: () => CollectedSample[]): void {
    this.collectors.push(fn);
  }

  /** The text exposition format. */
  render(): string {
    const out: string[] = [];
    for (const m of this.metrics) {
      out.push(`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`, ...m.lines());
    }
    const seen = new Set(this.metrics.map((m) => m.name));
    for (const fn of this.collectors) {
      let samples: CollectedSample[];
      try {
        samples = fn();
      } catch {
        continue;
      }
      for (const s of samples) {
        if (!NAME.test(s.name) || !Number.isFinite(s.value)) continue;
        if (!seen.has(s.name)) {
          seen.add(s.name);
          out.push(`# HELP ${s.name} ${s.help}`, `# TYPE ${s.name} ${s.type}`);
        }
        out.push(`${s.name}${labelText(s.labels ?? {})} ${num(s.value)}`);
      }
    }
    return `${out.join('\n')}\n`;
  }
}

/**
 * Decode throughput over a sliding window: each finished request's tokens are spread evenly over
 * the time from its first token to its end, and the part falling inside the window is counted.
 * @internal
 */
export class ThroughputWindow {
  private spans: { from: number; to: number; tokens: number }[] = [];
  constructor(private readonly windowMs = 10_000, private readonly now: () => number = () => performance.now()) {}

  record(from: number, to: number, tokens: number): void {
    if (tokens > 0) this.spans.push({ from, to: Math.max(to, from), tokens });
  }

  /** Tokens per second over the last window. */
  rate(): number {
    const end = this.now();
    const start = end - this.windowMs;
    this.spans = this.spans.filter((s) => s.to > start);
    let tokens = 0;
    for (const s of this.spans) {
      const len = s.to - s.from;
      if (len === 0) tokens += s.tokens;
      else tokens += (s.tokens * (Math.min(end, s.to) - Math.max(start, s.from))) / len;
    }
    return tokens / (this.windowMs / 1000);
  }
}
