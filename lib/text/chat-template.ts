/**
 * Chat templates: finding a checkpoint's Jinja template and rendering it the way transformers'
 * `processor.apply_chat_template(messages, tokenize=False, ...)` does.
 *
 * Where the template comes from, in transformers' order (ProcessorMixin.get_processor_dict, 4.5x):
 * 1. `chat_template.json` (the legacy processor file, `{"chat_template": "..."}`) wins when present; combining it
 *    with an `additional_chat_templates/` folder is an error there, and here;
 * 2. otherwise `chat_template.jinja` (the default template) plus `additional_chat_templates/<name>.jinja`
 *    (named templates);
 * 3. otherwise the `chat_template` key of `processor_config.json` (files above override it);
 * 4. otherwise the `chat_template` of `tokenizer_config.json` (a string, or a list of `{name, template}`). A
 *    transformers processor would refuse to render here; its tokenizer's `apply_chat_template` uses this one,
 *    so we fall back to it.
 *
 * Rendering passes what transformers passes: `messages`, `tools` (None unless given), `documents` (None),
 * `add_generation_prompt` (False unless given), the extra template variables (`add_vision_id`,
 * `enable_thinking`, ...) and the tokenizer's `special_tokens_map` (`eos_token`, `pad_token`,
 * `additional_special_tokens`, ...), plus the globals `raise_exception` and `strftime_now`. The engine is
 * `@huggingface/jinja` with `trim_blocks` and `lstrip_blocks`, as transformers configures Jinja2, and its
 * `tojson` matches transformers' (`json.dumps(ensure_ascii=False)`, `", "` / `": "` separators).
 *
 * Known differences of the engine from Python Jinja2, irrelevant to the Qwen templates: printing a boolean
 * gives `true`/`false` (Python: `True`/`False`), printing none gives an empty string (Python: `None`), and
 * printing a list or dict uses JSON quoting (Python: its repr).
 * @module
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Environment, Template } from '@huggingface/jinja';
import { QwenVLError, formatError, inputError } from '../errors.js';
import { MAX_OUTPUT_CHARS, TemplateLimitError, limitedRange, measureInput, renderLimited, templateLimits, type TemplateLimits } from './template-limits.js';
import { checkArray, guard, publicCall, publicCallAsync } from '../validate.js';

/** A text part of a message. */
export interface TextPart {
  type: 'text';
  text: string;
}
/** An image part (transformers shape): the image itself, a URL or a path; the template only sees that it is an image. */
export interface ImagePart {
  type: 'image';
  image?: unknown;
  url?: string;
  path?: string;
  [key: string]: unknown;
}
/** An image part in the OpenAI shape. */
export interface ImageUrlPart {
  type: 'image_url';
  image_url: { url: string; [key: string]: unknown } | string;
  [key: string]: unknown;
}
/** A video part: a file, URL, or a list of frames. */
export interface VideoPart {
  type: 'video';
  video?: unknown;
  url?: string;
  path?: string;
  [key: string]: unknown;
}
/** Any part of a message's content; the chat template decides how each renders. */
export type ContentPart = TextPart | ImagePart | ImageUrlPart | VideoPart | { type: string; [key: string]: unknown };

/** A chat message in the transformers / OpenAI shape. Extra fields (`tool_calls`, `name`, ...) reach the template. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | (string & {});
  content?: string | ContentPart[] | null;
  [key: string]: unknown;
}

/** Options of {@link ChatTemplate.render}. */
export interface ChatTemplateOptions {
  /** Append the header of a new assistant turn (`<|im_start|>assistant\n`). Default false, as in transformers. */
  addGenerationPrompt?: boolean;
  /**
   * End the prompt inside the last message so the model continues it (transformers' `continue_final_message`):
   * true continues `content`; a string names another field of the last message. Excludes `addGenerationPrompt`.
   */
  continueFinalMessage?: boolean | string;
  /** Tool JSON schemas (`{type: 'function', function: {...}}`), or null/undefined for none. */
  tools?: readonly Record<string, unknown>[] | null;
  /** RAG documents (`{title, text}` objects), or null/undefined for none. */
  documents?: readonly Record<string, unknown>[] | null;
  /** Further template variables, e.g. `{ add_vision_id: true }` or `{ enable_thinking: false }`. */
  variables?: Record<string, unknown>;
}

/** A template found in a checkpoint folder. */
export interface ChatTemplateSource {
  /** The default template. */
  template: string;
  /** The file it came from (full path). */
  file: string;
  /** Named templates (`additional_chat_templates/<name>.jinja` or tokenizer_config.json's list), default excluded. */
  named: Record<string, string>;
}

const RESERVED = new Set(['messages', 'tools', 'documents', 'add_generation_prompt']);
const CONTINUE_TAG = 'CONTINUE_FINAL_MESSAGE_TAG ';

/** Python's str.isspace() set, for strip()/rstrip(). */
const PY_SPACE = '\\t\\n\\x0B\\f\\r\\x1C-\\x20\\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000';
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');
const PY_RSTRIP = new RegExp(`[${PY_SPACE}]+$`);

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw new QwenVLError('E_MODEL_FORMAT', `${file}: cannot read (${(e as Error).message})`, { cause: e });
  }
}

function parseJsonFile(text: string, file: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new QwenVLError('E_MODEL_FORMAT', `${file}: invalid JSON (${(e as Error).message})`, { cause: e });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw formatError(file, 'expected a JSON object');
  return v as Record<string, unknown>;
}

/**
 * Finds the chat template of a checkpoint folder (order in the module comment). Resolves to undefined when the
 * folder has none.
 */
export function findChatTemplate(dir: string): Promise<ChatTemplateSource | undefined> {
  return publicCallAsync('findChatTemplate', arguments, () => findChatTemplateImpl(dir));
}

/** {@link findChatTemplate} without the public guard, for internal callers: what it throws passes through unchanged. */
async function findChatTemplateImpl(dir: string): Promise<ChatTemplateSource | undefined> {
  const extraDir = join(dir, 'additional_chat_templates');
  const named: Record<string, string> = {};
  let names: string[] = [];
  try {
    names = (await readdir(extraDir)).filter((n) => n.endsWith('.jinja')).sort();
  } catch {
    names = [];
  }
  for (const n of names) named[n.slice(0, -'.jinja'.length)] = (await readIfExists(join(extraDir, n))) ?? '';

  const legacyFile = join(dir, 'chat_template.json');
  const legacy = await readIfExists(legacyFile);
  if (legacy !== undefined) {
    const obj = parseJsonFile(legacy, legacyFile);
    if (typeof obj.chat_template !== 'string') throw formatError(legacyFile, '"chat_template" must be a string');
    if (names.length > 0) {
      throw formatError(legacyFile, 'a legacy chat_template.json cannot be combined with additional_chat_templates/ (transformers refuses it too)');
    }
    return { template: obj.chat_template, file: legacyFile, named: {} };
  }

  const jinjaFile = join(dir, 'chat_template.jinja');
  const jinja = await readIfExists(jinjaFile);
  if (jinja !== undefined) return { template: jinja, file: jinjaFile, named };
  if (names.length > 0) {
    if ('default' in named) {
      const { default: template, ...rest } = named;
      return { template, file: join(extraDir, 'default.jinja'), named: rest };
    }
  }

  const procFile = join(dir, 'processor_config.json');
  const proc = await readIfExists(procFile);
  if (proc !== undefined) {
    const obj = parseJsonFile(proc, procFile);
    if (typeof obj.chat_template === 'string') return { template: obj.chat_template, file: procFile, named };
  }

  const tokFile = join(dir, 'tokenizer_config.json');
  const tok = await readIfExists(tokFile);
  if (tok !== undefined) {
    const obj = parseJsonFile(tok, tokFile);
    const ct = obj.chat_template;
    if (typeof ct === 'string') return { template: ct, file: tokFile, named };
    if (Array.isArray(ct)) {
      const all: Record<string, string> = { ...named };
      for (const e of ct) {
        if (typeof e !== 'object' || e === null || typeof e.name !== 'string' || typeof e.template !== 'string') {
          throw formatError(tokFile, '"chat_template" list entries must be {name, template} objects');
        }
        all[e.name] = e.template;
      }
      if (typeof all.default === 'string') {
        const { default: template, ...rest } = all;
        return { template, file: tokFile, named: rest };
      }
      const first = Object.keys(all)[0];
      if (first !== undefined) {
        throw formatError(tokFile, `several chat templates (${Object.keys(all).join(', ')}) and none named "default"`);
      }
    } else if (ct !== undefined && ct !== null) {
      throw formatError(tokFile, '"chat_template" must be a string or a list of {name, template}');
    }
  }
  if (names.length > 0) {
    throw formatError(extraDir, `several chat templates (${names.join(', ')}) and none named "default"`);
  }
  return undefined;
}

/**
 * Copies message data into plain JSON-like values for the template engine. Binary payloads (Buffers, typed
 * arrays, sharp instances, ...) are replaced by a short marker: templates only test whether a key such as
 * `image` is present, and converting megabytes of pixels into template values would be slow.
 */
function toTemplateValue(v: unknown, depth = 0): unknown {
  if (depth > 64) throw inputError('chat message data is nested too deeply (or is circular)');
  if (v === null || v === undefined) return v;
  switch (typeof v) {
    case 'string':
    case 'number':
    case 'boolean':
      return v;
    case 'bigint':
      return Number(v);
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (Array.isArray(v)) return v.map((x) => toTemplateValue(x, depth + 1));
  const proto = Object.getPrototypeOf(v);
  if (proto === Object.prototype || proto === null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = toTemplateValue(x, depth + 1);
    return out;
  }
  if (v instanceof Date) return v.toISOString();
  return '[object]';
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** Python `datetime.now().strftime(fmt)` in the C locale, for the directives chat templates use. */
export function strftime(date: Date, format: string): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  const dayOfYear = () => {
    const start = new Date(date.getFullYear(), 0, 1);
    return Math.floor((date.getTime() - start.getTime()) / 86_400_000) + 1;
  };
  return format.replace(/%(-?)([a-zA-Z%])/g, (whole, noPad: string, d: string) => {
    const pad = (n: number, width = 2) => (noPad ? String(n) : String(n).padStart(width, '0'));
    switch (d) {
      case 'Y': return String(date.getFullYear());
      case 'y': return p2(date.getFullYear() % 100);
      case 'm': return pad(date.getMonth() + 1);
      case 'd': return pad(date.getDate());
      case 'e': return String(date.getDate()).padStart(2, ' ');
      case 'H': return pad(date.getHours());
      case 'I': return pad(date.getHours() % 12 === 0 ? 12 : date.getHours() % 12);
      case 'M': return pad(date.getMinutes());
      case 'S': return pad(date.getSeconds());
      case 'p': return date.getHours() < 12 ? 'AM' : 'PM';
      case 'B': return MONTHS[date.getMonth()];
      case 'b': case 'h': return MONTHS[date.getMonth()].slice(0, 3);
      case 'A': return DAYS[date.getDay()];
      case 'a': return DAYS[date.getDay()].slice(0, 3);
      case 'w': return String(date.getDay());
      case 'j': return pad(dayOfYear(), 3);
      case 'F': return `${date.getFullYear()}-${p2(date.getMonth() + 1)}-${p2(date.getDate())}`;
      case 'T': return `${p2(date.getHours())}:${p2(date.getMinutes())}:${p2(date.getSeconds())}`;
      case '%': return '%';
      default: return whole;
    }
  });
}

/**
 * The typed error for a render stopped by a limit. Output far beyond the request's size is the
 * template's doing (a checkpoint fault); only a request whose own size reaches the absolute cap is
 * the request's (no context holds such a prompt).
 */
function limitError(e: TemplateLimitError, origin: string, limits: TemplateLimits, inputChars: number): QwenVLError {
  if ((e.kind === 'output' || e.kind === 'work') && limits.maxChars >= MAX_OUTPUT_CHARS) {
    return new QwenVLError(
      'E_CONTEXT_OVERFLOW',
      `chat template: the request (${inputChars} characters) renders to a prompt of over ${MAX_OUTPUT_CHARS} characters, more than any context holds`,
      { cause: e },
    );
  }
  return new QwenVLError(
    'E_MODEL_FORMAT',
    `${origin}: rendering stopped: ${e.message} (for a request of ${inputChars} characters)`,
    { cause: e },
  );
}

/** A compiled chat template bound to a tokenizer's special tokens. */
export class ChatTemplate {
  /** The template text. */
  readonly source: string;
  private readonly compiled: Template;
  private readonly specialTokens: Readonly<Record<string, unknown>>;
  /** Where the template came from, for error messages. */
  private readonly origin: string;

  /**
   * @param source Jinja template text.
   * @param specialTokens transformers' `special_tokens_map` of the tokenizer
   *   ({@link QwenTokenizer.specialTokensMap}): passed to the template as variables.
   * @param origin Where the template came from, for error messages.
   */
  constructor(source: string, specialTokens: Readonly<Record<string, unknown>> = {}, origin = 'chat template') {
    if (typeof source !== 'string') throw inputError('chat template: expected a string');
    this.source = source;
    this.specialTokens = specialTokens;
    this.origin = origin;
    try {
      this.compiled = new Template(source);
    } catch (e) {
      throw new QwenVLError('E_MODEL_FORMAT', `${origin}: cannot parse the chat template (${(e as Error).message})`, { cause: e });
    }
  }

  /**
   * Loads the checkpoint's template ({@link findChatTemplate}); `name` picks a named template.
   * Throws E_MODEL_FORMAT when the folder has no template.
   */
  static async fromDirectory(
    dir: string,
    specialTokens: Readonly<Record<string, unknown>> = {},
    name?: string,
  ): Promise<ChatTemplate> {
    const found = await findChatTemplateImpl(dir);
    if (!found) {
      throw new QwenVLError(
        'E_MODEL_FORMAT',
        `${dir}: no chat template (looked for chat_template.json, chat_template.jinja, processor_config.json and tokenizer_config.json)`,
      );
    }
    if (name !== undefined && name !== 'default') {
      const t = found.named[name];
      if (t === undefined) {
        throw inputError(`chat template "${name}" not found in ${dir} (available: default${Object.keys(found.named).map((n) => ', ' + n).join('')})`);
      }
      return new ChatTemplate(t, specialTokens, `${dir}: chat template "${name}"`);
    }
    return new ChatTemplate(found.template, specialTokens, found.file);
  }

  /** Renders one conversation to the prompt text. */
  render(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    checkArray('chat template: messages', messages, 'an array of messages', 1 << 20);
    guard('chat template: messages', () =>
      messages.forEach((m, i) => {
        if (typeof m !== 'object' || m === null || typeof m.role !== 'string') {
          throw inputError(`chat template: messages[${i}] must be an object with a string "role"`);
        }
      }),
    );
    options = guard('chat template: options', () => ({ ...(options ?? {}) }));
    const cont = options.continueFinalMessage;
    if (cont && options.addGenerationPrompt) {
      throw inputError('continueFinalMessage and addGenerationPrompt cannot be used together');
    }
    const chat = guard('chat template: messages', () => toTemplateValue(messages) as Record<string, unknown>[]);

    let finalMessage: string | undefined;
    if (cont) {
      const field = typeof cont === 'string' ? cont : 'content';
      const last = chat[chat.length - 1];
      const value = last?.[field];
      if (value === undefined || value === null) {
        throw inputError(`continueFinalMessage: the final message has no "${field}" to continue`);
      }
      if (!this.source.includes(field)) {
        throw inputError(`continueFinalMessage: "${field}" is not a field this chat template uses`);
      }
      if (Array.isArray(value)) {
        const block = [...value].reverse().find((b) => typeof b === 'object' && b !== null && 'text' in b) as
          | Record<string, unknown>
          | undefined;
        if (!block) throw inputError('continueFinalMessage: the final message has no text part to continue');
        finalMessage = String(block.text);
        block.text = finalMessage + CONTINUE_TAG;
      } else {
        finalMessage = String(value);
        last[field] = finalMessage + CONTINUE_TAG;
      }
    }

    const tools = options.tools ?? null;
    if (tools !== null) {
      if (!Array.isArray(tools)) throw inputError('chat template: tools must be an array of JSON schemas');
      tools.forEach((t, i) => {
        if (typeof t !== 'object' || t === null || Array.isArray(t)) {
          throw inputError(`chat template: tools[${i}] must be a JSON schema object`);
        }
      });
    }
    const documents = options.documents ?? null;
    if (documents !== null) {
      if (!Array.isArray(documents) || documents.some((d) => typeof d !== 'object' || d === null || Array.isArray(d))) {
        throw inputError("chat template: documents must be a list of objects with 'title' and 'text'");
      }
    }
    const variables = options.variables ?? {};
    for (const k of Object.keys(variables)) {
      if (RESERVED.has(k)) throw inputError(`chat template: variable "${k}" is set by the renderer; use the option instead`);
    }

    let text: string;
    // Limits scale with the request: a long conversation may render long, a template may not explode.
    const inputChars = measureInput([chat, tools, documents, variables, this.specialTokens]);
    const limits = templateLimits(inputChars);
    try {
      // Template.render() would declare the engine's own raise_exception (a plain Error) and strftime_now (few
      // directives) first, and variables cannot be redeclared; so the environment is assembled here.
      const env = new Environment();
      const globals: Record<string, unknown> = {
        true: true,
        false: false,
        none: null,
        True: true,
        False: false,
        None: null,
        range: limitedRange,
        raise_exception: (message: unknown) => {
          throw inputError(`chat template: ${String(message)}`);
        },
        strftime_now: (format: unknown) => strftime(new Date(), String(format)),
        ...(toTemplateValue(this.specialTokens) as Record<string, unknown>),
        ...(toTemplateValue(variables) as Record<string, unknown>),
        messages: chat,
        tools: toTemplateValue(tools),
        documents: toTemplateValue(documents),
        add_generation_prompt: options.addGenerationPrompt === true,
      };
      for (const [k, v] of Object.entries(globals)) env.set(k, v);
      text = renderLimited(this.compiled.parsed, env, limits);
    } catch (e) {
      if (e instanceof QwenVLError) throw e;
      if (e instanceof TemplateLimitError) throw limitError(e, this.origin, limits, inputChars);
      throw inputError(`chat template: rendering failed (${(e as Error).message})`);
    }

    if (cont) {
      const tag = CONTINUE_TAG.trim();
      if (!text.includes(finalMessage!.replace(PY_STRIP, '')) || !text.includes(tag)) {
        throw inputError('continueFinalMessage: the final message does not appear in the rendered chat (the template drops part of it)');
      }
      const loc = text.lastIndexOf(tag);
      text = text.slice(loc, loc + CONTINUE_TAG.length) === CONTINUE_TAG ? text.slice(0, loc) : text.slice(0, loc).replace(PY_RSTRIP, '');
    }
    return text;
  }

  /** Renders several conversations (a batch). */
  renderBatch(conversations: readonly (readonly ChatMessage[])[], options: ChatTemplateOptions = {}): string[] {
    return conversations.map((c) => this.render(c, options));
  }
}

/** One-shot helper: compile `template` and render `messages`. */
export function applyChatTemplate(
  template: string,
  messages: readonly ChatMessage[],
  options: ChatTemplateOptions & { specialTokens?: Readonly<Record<string, unknown>> } = {},
): string {
  return publicCall('applyChatTemplate', arguments, () => new ChatTemplate(template, options.specialTokens ?? {}).render(messages, options));
}
