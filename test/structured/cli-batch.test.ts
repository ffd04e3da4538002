// Structured output through the command line: `qwenvl chat --json-schema FILE` / `--json`, and a
// `qwenvl batch` line with response_format (it shares the server's request mapping), on the
// random-weight fixture checkpoint. Bounded schemas, so the random model must finish.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResultLine } from '../../lib/batch/output.js';
import { runCliCaptured } from '../helpers/cli-in-process.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { validatorFor } from '../helpers/json-schema-validator.js';

const CKPT = checkpointDir('qwen2-vl');
const SCHEMA = {
  type: 'object',
  properties: { city: { type: 'string', maxLength: 5 }, rooms: { type: 'array', items: { type: 'integer', minimum: 1, maximum: 9 }, minItems: 1, maxItems: 2 } },
  required: ['city', 'rooms'],
  additionalProperties: false,
};
const valid = validatorFor(SCHEMA);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'qwenvl-structured-'));
  writeFileSync(join(dir, 'schema.json'), JSON.stringify(SCHEMA));
  writeFileSync(join(dir, 'unsupported.json'), JSON.stringify({ type: 'string', not: { const: 'x' } }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = runCliCaptured;

describe('structured output from the command line', () => {
  it('qwenvl chat --json-schema FILE prints JSON valid against the schema', async () => {
    const r = await run(['chat', '--model', CKPT, '--json-schema', join(dir, 'schema.json'), '--max-tokens', '300', '--temperature', '0', 'Where?']);
    expect(r.status, r.stderr).toBe(0);
    expect(valid(JSON.parse(r.stdout))).toBe(true);
  });

  it('qwenvl chat --json starts an object; bad flags and schemas are refused before generating', async () => {
    const r = await run(['chat', '--model', CKPT, '--json', '--max-tokens', '5', '--temperature', '0', 'Anything']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.startsWith('{')).toBe(true);
    const both = await run(['chat', '--model', CKPT, '--json', '--json-schema', join(dir, 'schema.json'), 'x']);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/not both/);
    const missing = await run(['chat', '--model', CKPT, '--json-schema', join(dir, 'nope.json'), 'x']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/--json-schema: cannot read/);
    const unsupported = await run(['chat', '--model', CKPT, '--json-schema', join(dir, 'unsupported.json'), 'x']);
    expect(unsupported.status).not.toBe(0);
    expect(unsupported.stderr).toMatch(/responseFormat.schema.*not/);
    expect(unsupported.stdout).toBe('');
  });

  it('qwenvl batch: a line with response_format answers valid JSON; an unsupported schema is that line\'s error', async () => {
    const input = join(dir, 'requests.jsonl'), output = join(dir, 'results.jsonl');
    const format = (schema: unknown) => ({ type: 'json_schema', json_schema: { name: 'place', schema } });
    writeFileSync(
      input,
      [
        JSON.stringify({ custom_id: 'json', messages: [{ role: 'user', content: 'Where?' }], max_tokens: 300, temperature: 0, response_format: format(SCHEMA) }),
        JSON.stringify({ custom_id: 'free', messages: [{ role: 'user', content: 'Where?' }], max_tokens: 4, temperature: 0 }),
        JSON.stringify({ custom_id: 'bad', messages: [{ role: 'user', content: 'x' }], response_format: format({ type: 'string', not: {} }) }),
      ].join('\n'),
    );
    await run(['batch', input, '--out', output, '--model', CKPT, '--quiet']);
    const lines = new Map(
      readFileSync(output, 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l) as ResultLine).map((l) => [l.custom_id, l]),
    );
    const body = (id: string) => lines.get(id)?.response?.body as { choices: { message: { content: string }; finish_reason: string }[] };
    expect(body('json').choices[0].finish_reason).toBe('stop');
    expect(valid(JSON.parse(body('json').choices[0].message.content))).toBe(true);
    expect(body('free').choices[0].message.content.length).toBeGreaterThan(0);
    expect(lines.get('bad')?.error).toMatchObject({ code: 'E_UNSUPPORTED', param: 'response_format.json_schema.schema' });
  });
});
