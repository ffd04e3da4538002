// The metrics registry: Prometheus text format, histograms, collectors (the model's own numbers),
// the sliding decode-throughput window, and the admission queue.
import { describe, expect, it } from 'vitest';
import { Admission } from '../../lib/server/admission.js';
import { MetricsRegistry, ThroughputWindow } from '../../lib/server/metrics.js';
import { modelSamples } from '../../lib/server/server-metrics.js';

describe('MetricsRegistry', () => {
  it('renders counters with labels, gauges, histograms and collected samples', () => {
    const r = new MetricsRegistry();
    const c = r.counter('x_total', 'things');
    c.inc({ code: '200' });
    c.inc({ code: '200' }, 2);
    c.inc({ code: 'a"b\\' });
    let level = 5;
    r.gauge('x_level', 'a level', () => level);
    const h = r.histogram('x_seconds', 'time', [0.1, 1]);
    h.observe(0.05);
    h.observe(0.5);
    h.observe(3);
    r.collector(() => [{ name: 'x_model_hits', help: 'hits', type: 'counter', value: 7 }]);
    r.collector(() => {
      throw new Error('broken collector');
    });
    level = 6;
    expect(r.render()).toBe(
      [
        '# HELP x_total things', '# TYPE x_total counter', 'x_total{code="200"} 3', 'x_total{code="a\\"b\\\\"} 1',
        '# HELP x_level a level', '# TYPE x_level gauge', 'x_level 6',
        '# HELP x_seconds time', '# TYPE x_seconds histogram',
        'x_seconds_bucket{le="0.1"} 1', 'x_seconds_bucket{le="1"} 2', 'x_seconds_bucket{le="+Inf"} 3', 'x_seconds_sum 3.55', 'x_seconds_count 3',
        '# HELP x_model_hits hits', '# TYPE x_model_hits counter', 'x_model_hits 7',
      ].join('\n') + '\n',
    );
    expect(() => r.counter('x_total', 'again')).toThrow(/twice/);
    expect(() => r.counter('bad name', 'x')).toThrow(/name/);
    expect(() => c.inc({}, -1)).toThrow(/only goes up/);
  });

  it("flattens a model's stats() into gauges, and reports nothing without it", () => {
    const model = { stats: () => ({ visionCache: { hits: 3, misses: 1, bytes: 100 }, prefixCache: { hitTokens: 42 }, label: 'x' }) };
    expect(modelSamples(model).map((s) => [s.name, s.value])).toEqual([
      ['qwenvl_model_vision_cache_hits', 3],
      ['qwenvl_model_vision_cache_misses', 1],
      ['qwenvl_model_vision_cache_bytes', 100],
      ['qwenvl_model_prefix_cache_hit_tokens', 42],
    ]);
    expect(modelSamples({})).toEqual([]);
  });
});

describe('ThroughputWindow', () => {
  it('spreads each request over its decode time and counts what falls in the window', () => {
    let now = 20_000;
    const w = new ThroughputWindow(10_000, () => now);
    w.record(5_000, 15_000, 100); // half of it in the window [10 s, 20 s]
    w.record(12_000, 14_000, 40); // all of it
    expect(w.rate()).toBeCloseTo((50 + 40) / 10);
    now = 30_000;
    expect(w.rate()).toBe(0);
  });
});

describe('Admission', () => {
  it('runs up to maxRunning, queues up to maxQueue in order, refuses beyond, and closes', async () => {
    const a = new Admission(1, 2);
    const first = await a.acquire();
    const order: number[] = [];
    const second = a.acquire().then((s) => (order.push(2), s));
    const third = a.acquire().then((s) => (order.push(3), s));
    expect([a.running, a.queued]).toEqual([1, 2]);
    await expect(a.acquire()).rejects.toMatchObject({ status: 429 });
    const leaving = new AbortController();
    const fourth = a.acquire(leaving.signal);
    void fourth.catch(() => undefined);
    first.release();
    first.release(); // twice is once
    (await second).release();
    (await third).release();
    expect(order).toEqual([2, 3]);
    expect([a.running, a.queued]).toEqual([0, 0]);
    const held = await a.acquire();
    const waiting = a.acquire(leaving.signal);
    leaving.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    const queued = a.acquire();
    a.close();
    await expect(queued).rejects.toMatchObject({ status: 503 });
    await expect(a.acquire()).rejects.toMatchObject({ status: 503 });
    held.release();
  });
});
