// A chat template is code from the checkpoint: one that explodes must end in a typed error within
// a second or two (not abort V8 after 40 s), and normal templates must render as before, however
// long the request.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { QwenVLError } from '../../lib/errors.js';
import { ChatTemplate, type ChatMessage } from '../../lib/text/chat-template.js';
import { MAX_OUTPUT_CHARS, MAX_RANGE, templateLimits } from '../../lib/text/template-limits.js';
import { QwenTokenizer } from '../../lib/text/tokenizer.js';
import { fixtureFamilies } from './fixture-data.js';
import { REPO_FIXTURES as FIXTURES } from '../helpers/fixtures.js';

const messages: ChatMessage[] = [{ role: 'user', content: 'hi' }];
/** A string of 2**20 characters made in 20 doublings, inside the template. */
const MEGA = "{% set ns = namespace(s='x', a=[]) %}{% for i in range(20) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}";
const LIST_OF_MEGAS = `${MEGA}{% for i in range(1000) %}{% set ns.a = ns.a + [ns.s] %}{% endfor %}`;

const explosions: [string, string][] = [
  ['a range of 10^8 items', '{% for i in range(100000000) %}xxxxxxxx{% endfor %}'],
  ['nested loops printing', '{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxx{% endfor %}{% endfor %}'],
  ['nested loops printing nothing', '{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}'],
  ['a string doubled 64 times', "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}"],
  ['a join of a thousand 1 MiB strings', `${LIST_OF_MEGAS}{{ ns.a|join(',') }}`],
  ['printing a list of a thousand 1 MiB strings', `${LIST_OF_MEGAS}{{ ns.a }}`],
  ['tojson of a thousand 1 MiB strings', `${LIST_OF_MEGAS}{{ ns.a|tojson(indent=2) }}`],
  ['a string method replace that squares a string', "{% set ns = namespace(s='x') %}{% for i in range(18) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s.replace('x', ns.s) }}"],
  ['a replace filter that squares a string', "{% set ns = namespace(s='x') %}{% for i in range(18) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|replace('x', ns.s) }}"],
  ['a join of a 1 MiB string\'s characters with a 1 MiB separator', `${MEGA}{{ ns.s|join(ns.s) }}`],
  ['an indent of a billion spaces', "{{ 'a\\nb\\nc'|indent(1000000000) }}"],
  ['a list doubled 40 times', '{% set ns = namespace(a=[1]) %}{% for i in range(40) %}{% set ns.a = ns.a + ns.a %}{% endfor %}{{ ns.a|length }}'],
  ['a macro calling itself twice, 40 deep', '{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}'],
];

describe('exploding templates give E_MODEL_FORMAT quickly', () => {
  it.each(explosions)('%s', (_name, source) => {
    const tpl = new ChatTemplate(source, {}, '/ckpt/chat_template.jinja');
    const start = performance.now();
    let err: unknown;
    try {
      tpl.render(messages);
    } catch (e) {
      err = e;
    }
    const ms = performance.now() - start;
    expect(err).toBeInstanceOf(QwenVLError);
    expect((err as QwenVLError).code, (err as Error).message).toBe('E_MODEL_FORMAT');
    expect((err as Error).message).toMatch(/^\/ckpt\/chat_template\.jinja: rendering stopped: /);
    expect(ms).toBeLessThan(2500);
  });
});

describe('limits that keep normal templates working', () => {
  it('range() allows the sandbox maximum and no more, as transformers does', () => {
    expect(new ChatTemplate(`{{ range(${MAX_RANGE})|length }}`).render(messages)).toBe(String(MAX_RANGE));
    expect(new ChatTemplate('{{ range(10, 0, -3)|join(",") }}').render(messages)).toBe('10,7,4,1');
    expect(() => new ChatTemplate(`{{ range(${MAX_RANGE + 1})|length }}`).render(messages)).toThrow(/range\(\) of 100001 items is over the limit of 100000/);
  });

  it('the output allowed grows with the request, up to a cap no context reaches', () => {
    const small = templateLimits(0);
    expect(small.maxChars).toBeGreaterThanOrEqual(2 ** 20);
    expect(templateLimits(10e6).maxChars).toBeGreaterThanOrEqual(4 * 10e6);
    expect(templateLimits(1e9).maxChars).toBe(MAX_OUTPUT_CHARS);
    expect(templateLimits(10e6).timeoutMs).toBeGreaterThan(small.timeoutMs);
  });

  it('a request too large for any context is E_CONTEXT_OVERFLOW, not the template\'s fault', () => {
    const fiveTimes = new ChatTemplate('{% for m in messages %}{% for i in range(5) %}{{ m.content }}{% endfor %}{% endfor %}');
    expect(fiveTimes.render([{ role: 'user', content: 'ab' }])).toBe('ababababab');
    let err: unknown;
    try {
      fiveTimes.render([{ role: 'user', content: 'x'.repeat(34_000_000) }]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(QwenVLError);
    expect((err as QwenVLError).code).toBe('E_CONTEXT_OVERFLOW');
    expect((err as Error).message).toContain(`over ${MAX_OUTPUT_CHARS} characters`);
  });

  it.each(fixtureFamilies())('%s: the checkpoint template renders a 6 MB message as it renders a short one', async (family) => {
    const dir = join(FIXTURES, family, 'checkpoint');
    const tpl = await ChatTemplate.fromDirectory(dir, (await QwenTokenizer.load(dir)).specialTokensMap);
    const big = 'lorem ipsum '.repeat(500_000);
    const conversation = (text: string): ChatMessage[] => [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: [{ type: 'image', image: 'x.png' }, { type: 'text', text }] },
    ];
    const short = tpl.render(conversation('PLACEHOLDER'), { addGenerationPrompt: true });
    const long = tpl.render(conversation(big), { addGenerationPrompt: true });
    expect(long).toBe(short.replace('PLACEHOLDER', big));
  });
});
