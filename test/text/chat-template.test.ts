import { mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { QwenVLError } from '../../lib/errors.js';
import { ChatTemplate, applyChatTemplate, findChatTemplate, strftime, type ChatMessage } from '../../lib/text/chat-template.js';
import { QwenTokenizer } from '../../lib/text/tokenizer.js';
import { checkpointOf, fixtureCases, fixtureFamilies } from './fixture-data.js';

const families = fixtureFamilies();
const specials = new Map<string, Readonly<Record<string, string | string[]>>>();

beforeAll(async () => {
  for (const f of families) specials.set(f, (await QwenTokenizer.load(checkpointOf(f))).specialTokensMap);
});

describe('fixtures: rendered prompts equal transformers apply_chat_template', () => {
  it('has fixtures', () => expect(families.length).toBeGreaterThan(0));
  for (const family of families) {
    describe(family, () => {
      for (const c of fixtureCases(family)) {
        it(c.name, async () => {
          const tpl = await ChatTemplate.fromDirectory(checkpointOf(family), specials.get(family));
          const rendered = tpl.renderBatch(c.meta.conversations as unknown as ChatMessage[][], { addGenerationPrompt: true });
          expect(rendered).toEqual(c.meta.prompt_texts);
        });
      }
    });
  }
});

function qwen2Template(): string {
  return JSON.parse(readFileSync(join(checkpointOf('qwen2-vl'), 'chat_template.json'), 'utf8')).chat_template;
}
function qwen3Template(): string {
  return JSON.parse(readFileSync(join(checkpointOf('qwen3-vl'), 'chat_template.json'), 'utf8')).chat_template;
}

describe('rendering', () => {
  it('renders image/video parts in every accepted shape, and add_vision_id', () => {
    const msgs: ChatMessage[] = [
      {
        role: 'user',
        content: [
          { type: 'image', image: new Uint8Array(1 << 20) }, // binary payloads are not copied into the template
          { type: 'image_url', image_url: { url: 'http://x/y.png' } },
          { type: 'video', video: ['a.png', 'b.png'] },
          { type: 'text', text: 'Compare.' },
        ],
      },
    ];
    const out = applyChatTemplate(qwen2Template(), msgs, { addGenerationPrompt: true, variables: { add_vision_id: true } });
    expect(out).toBe(
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n' +
        'Picture 1: <|vision_start|><|image_pad|><|vision_end|>Picture 2: <|vision_start|><|image_pad|><|vision_end|>' +
        'Video 1: <|vision_start|><|video_pad|><|vision_end|>Compare.<|im_end|>\n<|im_start|>assistant\n',
    );
    const q3 = applyChatTemplate(qwen3Template(), msgs, { addGenerationPrompt: false });
    expect(q3).toBe(
      '<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|><|vision_start|><|image_pad|><|vision_end|>' +
        '<|vision_start|><|video_pad|><|vision_end|>Compare.<|im_end|>\n',
    );
  });

  it('renders tools and tool calls with json.dumps formatting (Qwen3-VL template)', () => {
    const out = applyChatTemplate(
      qwen3Template(),
      [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Weather in Zürich?' },
        { role: 'assistant', content: '', tool_calls: [{ type: 'function', function: { name: 'weather', arguments: { city: 'Zürich', days: [1, 2] } } }] },
        { role: 'tool', content: '{"t": 21}' },
      ],
      {
        addGenerationPrompt: true,
        tools: [{ type: 'function', function: { name: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
      },
    );
    expect(out).toContain(
      '<tools>\n{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}\n</tools>',
    );
    expect(out).toContain('<tool_call>\n{"name": "weather", "arguments": {"city": "Zürich", "days": [1, 2]}}\n</tool_call><|im_end|>\n');
    expect(out).toContain('<|im_start|>user\n<tool_response>\n{"t": 21}\n</tool_response><|im_end|>\n<|im_start|>assistant\n');
    expect(out.startsWith('<|im_start|>system\nBe brief.\n\n# Tools')).toBe(true);
  });

  it('continueFinalMessage ends the prompt inside the last message', () => {
    const msgs: ChatMessage[] = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: [{ type: 'text', text: 'The answer is' }] },
    ];
    expect(applyChatTemplate(qwen3Template(), msgs, { continueFinalMessage: true })).toBe(
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nThe answer is',
    );
    expect(() => applyChatTemplate(qwen3Template(), msgs, { continueFinalMessage: true, addGenerationPrompt: true })).toThrow(QwenVLError);
    // the caller's messages are not modified
    expect((msgs[1].content as { text: string }[])[0].text).toBe('The answer is');
  });

  it('passes the special tokens map and extra variables; protects reserved names', () => {
    const t = new ChatTemplate('{{ eos_token }}|{{ pad_token }}|{{ additional_special_tokens[0] }}|{{ foo }}|{% if tools is none and documents is none %}no tools{% endif %}', {
      eos_token: '<|im_end|>',
      pad_token: '<|endoftext|>',
      additional_special_tokens: ['<|im_start|>'],
    });
    expect(t.render([], { variables: { foo: 'bar' } })).toBe('<|im_end|>|<|endoftext|>|<|im_start|>|bar|no tools');
    expect(() => t.render([], { variables: { messages: [] } })).toThrow(/set by the renderer/);
  });

  it('raise_exception becomes E_INPUT; parse errors are E_MODEL_FORMAT', () => {
    const t = new ChatTemplate("{% if messages[0]['role'] != 'user' %}{{ raise_exception('first must be user') }}{% endif %}ok");
    expect(t.render([{ role: 'user', content: 'x' }])).toBe('ok');
    try {
      t.render([{ role: 'assistant', content: 'x' }]);
      expect.unreachable();
    } catch (e) {
      expect((e as QwenVLError).code).toBe('E_INPUT');
      expect((e as QwenVLError).message).toContain('first must be user');
    }
    expect(() => new ChatTemplate('{% if %}', {}, 'x/chat_template.jinja')).toThrow(/x\/chat_template\.jinja/);
    expect(() => t.render('nope' as unknown as ChatMessage[])).toThrow(QwenVLError);
  });

  it('strftime follows Python for the common directives', () => {
    const d = new Date(2024, 6, 4, 9, 5, 3);
    expect(strftime(d, '%d %b %Y')).toBe('04 Jul 2024');
    expect(strftime(d, '%A, %B %-d %H:%M:%S %p %j %%')).toBe('Thursday, July 4 09:05:03 AM 186 %');
  });
});

describe('finding the template', () => {
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'qwenvl-tpl-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('uses chat_template.json for every fixture checkpoint', async () => {
    for (const f of families) {
      const found = await findChatTemplate(checkpointOf(f));
      expect(found?.file).toBe(join(checkpointOf(f), 'chat_template.json'));
    }
  });

  it('order: chat_template.json > chat_template.jinja > processor_config.json > tokenizer_config.json', async () => {
    const d = tmp();
    expect(await findChatTemplate(d)).toBeUndefined();
    await expect(ChatTemplate.fromDirectory(d)).rejects.toMatchObject({ code: 'E_MODEL_FORMAT' });
    writeFileSync(join(d, 'tokenizer_config.json'), JSON.stringify({ chat_template: 'T' }));
    expect((await findChatTemplate(d))?.template).toBe('T');
    writeFileSync(join(d, 'processor_config.json'), JSON.stringify({ chat_template: 'P' }));
    expect((await findChatTemplate(d))?.template).toBe('P');
    writeFileSync(join(d, 'chat_template.jinja'), 'J');
    expect((await findChatTemplate(d))?.template).toBe('J');
    writeFileSync(join(d, 'chat_template.json'), JSON.stringify({ chat_template: 'L' }));
    expect((await findChatTemplate(d))?.template).toBe('L');
  });

  it('named templates: additional_chat_templates/ and tokenizer_config lists', async () => {
    const d = tmp();
    writeFileSync(join(d, 'chat_template.jinja'), 'default:{{ messages|length }}');
    mkdirSync(join(d, 'additional_chat_templates'));
    writeFileSync(join(d, 'additional_chat_templates', 'tool_use.jinja'), 'tools:{{ messages|length }}');
    const found = await findChatTemplate(d);
    expect(found?.named).toEqual({ tool_use: 'tools:{{ messages|length }}' });
    expect((await ChatTemplate.fromDirectory(d, {}, 'tool_use')).render([])).toBe('tools:0');
    await expect(ChatTemplate.fromDirectory(d, {}, 'nope')).rejects.toMatchObject({ code: 'E_INPUT' });
    // a legacy chat_template.json cannot be combined with the folder (transformers raises as well)
    writeFileSync(join(d, 'chat_template.json'), JSON.stringify({ chat_template: 'L' }));
    await expect(findChatTemplate(d)).rejects.toMatchObject({ code: 'E_MODEL_FORMAT' });

    const e = tmp();
    writeFileSync(join(e, 'tokenizer_config.json'), JSON.stringify({ chat_template: [{ name: 'default', template: 'D' }, { name: 'rag', template: 'R' }] }));
    expect(await findChatTemplate(e)).toMatchObject({ template: 'D', named: { rag: 'R' } });
  });

  it('malformed files are E_MODEL_FORMAT naming the file', async () => {
    const d = tmp();
    writeFileSync(join(d, 'chat_template.json'), '{"chat_template": 3}');
    const err = (await findChatTemplate(d).catch((x: unknown) => x)) as QwenVLError;
    expect(err.code).toBe('E_MODEL_FORMAT');
    expect(err.message).toContain(join(d, 'chat_template.json'));
    writeFileSync(join(d, 'chat_template.json'), '{');
    await expect(findChatTemplate(d)).rejects.toMatchObject({ code: 'E_MODEL_FORMAT' });
  });
});
