/**
 * Child-process probe for the memory tests after load (run through placement-rss-run.ts). Prints the
 * resident set size outside the JS heap at three points: after a warm-up load of the small
 * fixture (freed again: the thread pool, the placement probe and the code are warm), after a second and a third load
 * of the fixture (kept: what a load costs besides its weights, the tokenizer above all), and after
 * the load of the checkpoint DIR with the placement given; and where DIR's weights went.
 * Run as `tsx --expose-gc test/helpers/placement-rss.ts DIR PLACEMENT`.
 */
import { loadModel, type LoadOptions } from '../../lib/index.js';
import { checkpointDir } from './fixtures.js';

const [dir, placement] = process.argv.slice(2) as [string, NonNullable<LoadOptions['placement']>];
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
// Outside the JS heap: the tokenizer's tables and other garbage live in the heap, whose size moves
// with when the collector last ran (a busy machine made the fixture's load look free and the
// checkpoint's 70 MB dearer); the weights are native memory.
const rss = () => {
  gc();
  const m = process.memoryUsage();
  return m.rss - m.heapTotal;
};
(await loadModel(checkpointDir('qwen2-vl'), { placement })).dispose();
const start = rss();
const small = await loadModel(checkpointDir('qwen2-vl'), { placement });
const withSmall = rss();
// A second kept load of the fixture: the first may reuse what the warm-up freed to the allocator
// and look free (then the checkpoint's load pays the tokenizer's tables in full); by the second
// that memory is taken.
const small2 = await loadModel(checkpointDir('qwen2-vl'), { placement });
const withSmall2 = rss();
const m = await loadModel(dir, { placement });
const withBoth = rss();
process.stdout.write(JSON.stringify({ start, withSmall, withSmall2, withBoth, used: m.placement.used, thp: m.placement.probe.transparentHugePages, mappedFrom: m.placement.probe.mappedFrom }) + '\n');
m.dispose();
small2.dispose();
small.dispose();
