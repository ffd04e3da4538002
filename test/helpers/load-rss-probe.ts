/**
 * Child-process probe for the MoE memory test (test/model/moe-quant-rss.test.ts): loads the
 * checkpoint DIR once per WEIGHTS value given (placement 'mmap'), each time reporting the
 * anonymous resident memory outside the JS heap before the load, at its peak during the load
 * (sampled every millisecond while the load runs on the native threads) and after it, and the
 * checkpoint pages mapped in before and after (RssFile), then disposes the model. Anonymous
 * memory is what a load commits; mapped checkpoint pages are page cache the kernel can drop, but
 * count in the resident set while mapped in. A warm-up load of the small fixture first makes the thread pool and
 * code resident. A WEIGHTS value given twice reports its last load: the first load after the
 * warm-up reads noisier (memory the warm-up left behind is returned during it).
 * Run as `tsx --expose-gc test/helpers/load-rss-probe.ts DIR WEIGHTS...`.
 */
import { readFileSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import { loadModel, type LoadOptions } from '../../lib/index.js';
import { checkpointDir } from './fixtures.js';

const [dir, ...weights] = process.argv.slice(2) as [string, ...NonNullable<LoadOptions['weights']>[]];
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const status = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
const anon = () => status('RssAnon');
// The JS heap's resident pages (not heapTotal, which counts committed pages never touched).
const heap = () => getHeapStatistics().total_physical_size;
const outsideHeap = () => {
  gc();
  return anon() - heap();
};

(await loadModel(checkpointDir('qwen2-vl'), { placement: 'mmap' })).dispose();
const out: Record<string, { before: number; peak: number; loaded: number; fileBefore: number; fileLoaded: number }> = {};
for (const w of weights) {
  const before = outsideHeap();
  const fileBefore = status('RssFile');
  let peak = 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, anon() - heap());
  }, 1);
  const m = await loadModel(dir, { placement: 'mmap', weights: w });
  clearInterval(timer);
  const loaded = outsideHeap();
  out[w] = { before, peak: Math.max(peak, loaded), loaded, fileBefore, fileLoaded: status('RssFile') };
  m.dispose();
}
process.stdout.write(JSON.stringify(out) + '\n');
