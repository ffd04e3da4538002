/**
 * The benchmarks' synthetic checkpoint (lib/bench/synthetic.ts) with the qwen2-vl fixture's
 * tokenizer and processor files.
 * @module
 */
import { writeSyntheticCheckpoint as write, type SyntheticCheckpoint } from '../lib/bench/synthetic.js';
import { checkpointDir, materializeTokenizers } from '../test/helpers/fixtures.js';

export { TEXT, time, VISION } from '../lib/bench/synthetic.js';

/** Writes a checkpoint of `layers` decoder layers and `depth` vision blocks into a temporary folder. */
export function writeSyntheticCheckpoint(layers: number, depth: number): Promise<SyntheticCheckpoint> {
  materializeTokenizers(); // the fixture's tokenizer.json is stored split in the repository
  return write(layers, depth, checkpointDir('qwen2-vl'));
}
