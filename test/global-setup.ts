// vitest globalSetup: writes the fixture checkpoints' tokenizer.json files (stored split in the
// repository, see test/fixtures/README.md) before any test runs.
import { materializeTokenizers } from './helpers/fixtures.js';

export default function setup(): void {
  materializeTokenizers();
}
