/**
 * Where the user's text lies in a rendered prompt, so that special-token strings typed by a user
 * (`<|im_end|><|im_start|>system ...`) can be tokenized as the plain characters they are while the chat
 * template's own special tokens still count.
 *
 * The template is rendered a second time with every user and tool text wrapped in markers (random, so no
 * text can forge them). With the markers removed that rendering must equal the plain one, character for
 * character; the markers then give the spans of user text in the prompt. A template that transforms the
 * text it prints (trims it, tests its first characters, ...) can break the equality; the spans are then
 * unknown, and a request whose user text holds an added-token string is refused rather than tokenized
 * with its control tokens.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { QwenVLError } from '../errors.js';
import type { ChatMessage, ChatTemplate, ChatTemplateOptions } from './chat-template.js';
import type { QwenTokenizer } from './tokenizer.js';

/** Roles whose text is the user's (or a tool's) rather than the application's. */
const USER_ROLES = new Set(['user', 'tool']);

/** A rendered prompt and the `[start, end)` spans of user and tool text in it. */
export interface MarkedPrompt {
  text: string;
  spans: [number, number][];
}

/** The user and tool texts of a conversation, in order. */
function userTexts(messages: readonly ChatMessage[]): string[] {
  const out: string[] = [];
  for (const m of messages) {
    if (!USER_ROLES.has(m.role)) continue;
    if (typeof m.content === 'string') out.push(m.content);
    else if (Array.isArray(m.content)) {
      for (const p of m.content) if (p && p.type === 'text' && typeof p.text === 'string') out.push(p.text);
    }
  }
  return out;
}

function wrap(messages: readonly ChatMessage[], open: string, close: string): ChatMessage[] {
  return messages.map((m) => {
    if (!USER_ROLES.has(m.role)) return m;
    if (typeof m.content === 'string') return { ...m, content: open + m.content + close };
    if (!Array.isArray(m.content)) return m;
    return {
      ...m,
      content: m.content.map((p) => (p && p.type === 'text' && typeof p.text === 'string' ? { ...p, text: open + p.text + close } : p)),
    };
  });
}

/** Renders a conversation and finds its user and tool text (see the module comment). */
export function renderMarked(
  template: ChatTemplate,
  tokenizer: QwenTokenizer,
  messages: readonly ChatMessage[],
  options: ChatTemplateOptions,
  where: string,
): MarkedPrompt {
  const text = template.render(messages, options);
  const texts = userTexts(messages);
  if (texts.length === 0) return { text, spans: [] };
  const nonce = randomBytes(9).toString('base64');
  const open = `\ufdd0${nonce}\ufdd1`;
  const close = `\ufdd2${nonce}\ufdd1`;
  const marked = template.render(wrap(messages, open, close), options);
  const spans: [number, number][] = [];
  let plain = '';
  let start = -1;
  let ok = true;
  const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\\/]/g, '\\$&');
  const pieces = marked.split(new RegExp(`(${esc(open)}|${esc(close)})`));
  for (let i = 0; i < pieces.length; i++) {
    if (i % 2 === 0) {
      plain += pieces[i];
      continue;
    }
    const isOpen = pieces[i] === open;
    if (isOpen === start >= 0) ok = false; // unbalanced: an open inside an open, or a close without one
    if (isOpen) start = plain.length;
    else {
      if (plain.length > start) spans.push([start, plain.length]);
      start = -1;
    }
  }
  if (ok && start < 0 && plain === text) return { text, spans };
  const special = tokenizer.addedTokens.find((t) => texts.some((s) => s.includes(t.content)));
  if (special !== undefined) {
    throw new QwenVLError(
      'E_INPUT',
      `${where}: the user text holds the special-token string ${JSON.stringify(special.content)}, and this chat template ` +
        'changes user text as it prints it, so it cannot be kept plain text; remove it from the text',
    );
  }
  return { text, spans: [] };
}

/**
 * Expands the vision placeholders of prompts whose user text must stay as typed: only the template's
 * parts are expanded (a `<|image_pad|>` typed by a user is not a placeholder), and the spans are moved
 * to the expanded text. `expand` is {@link expandVisionPlaceholders} with the request's grids.
 */
export function expandOutsideSpans(
  prompts: readonly MarkedPrompt[],
  expand: (parts: string[]) => string[],
): MarkedPrompt[] {
  // Every prompt becomes its alternating template and user parts; the template parts of all rows, in
  // order, are expanded as rows of their own (placeholders are counted and replaced in that order).
  const templateParts: string[] = [];
  const layout: { userParts: string[] }[] = [];
  for (const p of prompts) {
    const userParts: string[] = [];
    let at = 0;
    for (const [a, b] of p.spans) {
      templateParts.push(p.text.slice(at, a));
      userParts.push(p.text.slice(a, b));
      at = b;
    }
    templateParts.push(p.text.slice(at));
    layout.push({ userParts });
  }
  const expanded = expand(templateParts);
  let k = 0;
  return layout.map(({ userParts }) => {
    let text = expanded[k++];
    const spans: [number, number][] = [];
    for (const u of userParts) {
      spans.push([text.length, text.length + u.length]);
      text += u + expanded[k++];
    }
    return { text, spans };
  });
}
