// Checkpoint files that would have killed the process (a config sizing a JS array by 2**31, a chat
// template rendering 10^8 characters) give typed errors through loadModel and chat, quickly.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { QwenVLError } from '../../lib/errors.js';
import { loadModel } from '../../lib/model/load.js';
import { REPO_FIXTURES } from '../helpers/fixtures.js';

const FIXTURES = REPO_FIXTURES;
const work = mkdtempSync(join(tmpdir(), 'qwenvl-hostile-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A copy of a fixture checkpoint (files linked) with some files replaced. */
function checkpoint(family: string, name: string, replace: Record<string, string>): string {
  const src = join(FIXTURES, family, 'checkpoint');
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(src)) {
    if (replace[f] === undefined) symlinkSync(join(src, f), join(dir, f));
  }
  for (const [f, body] of Object.entries(replace)) writeFileSync(join(dir, f), body);
  return dir;
}

async function rejection(p: Promise<unknown>): Promise<QwenVLError> {
  const err = await p.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(QwenVLError);
  return err as QwenVLError;
}

describe('hostile checkpoints', () => {
  it.each(['qwen2-vl', 'qwen3-vl', 'qwen3-vl-moe'])('%s: num_hidden_layers 2**31 is E_MODEL_FORMAT at load, at once', async (family) => {
    const config = JSON.parse(readFileSync(join(FIXTURES, family, 'checkpoint', 'config.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    (config.text_config ?? config).num_hidden_layers = 2 ** 31;
    const dir = checkpoint(family, `${family}-layers`, { 'config.json': JSON.stringify(config) });
    const start = performance.now();
    const err = await rejection(loadModel(dir));
    expect(err.code).toBe('E_MODEL_FORMAT');
    expect(err.message).toMatch(/config\.json: field "(text_config\.)?num_hidden_layers": 2147483648 is over the limit of 1024/);
    expect(performance.now() - start).toBeLessThan(1000);
  });

  it('a chat template that renders 10^8 characters is E_MODEL_FORMAT on the first request, within seconds', async () => {
    const template = '{% for i in range(100000) %}{% for j in range(1000) %}xxxxxxxx{% endfor %}{% endfor %}';
    const dir = checkpoint('qwen2-vl', 'qwen2-vl-template', { 'chat_template.json': JSON.stringify({ chat_template: template }) });
    const model = await loadModel(dir);
    try {
      const start = performance.now();
      const err = await rejection(model.chat([{ role: 'user', content: 'hi' }], { maxTokens: 1 }));
      expect(err.code).toBe('E_MODEL_FORMAT');
      expect(err.message).toMatch(/chat_template\.json: rendering stopped: /);
      expect(performance.now() - start).toBeLessThan(2500);
    } finally {
      model.dispose();
    }
  });
});
