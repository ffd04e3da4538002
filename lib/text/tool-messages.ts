/**
 * Tools in a request: the `tools` list handed to the chat template, and the messages of a tool
 * round trip (an assistant turn with `tool_calls`, then `role: 'tool'` results), checked and put in
 * the shape the chat templates read.
 *
 * OpenAI clients send `tool_calls[].function.arguments` as a JSON string; chat templates expect the
 * arguments object (transformers' documentation says so, and the Qwen templates print it with
 * `tojson`), so a string is parsed into its object for the template, as vLLM does. An assistant turn
 * that only calls tools may have `content: null`; the template gets an empty string (a template
 * cannot iterate null).
 * @internal
 * @module
 */
import { inputError } from '../errors.js';
import { checkArray, expected, guard } from '../validate.js';
import type { ChatMessage } from './chat-template.js';

/** A function the model may call, in OpenAI's `tools` shape; the chat template prints it as given. */
export interface ToolDefinition {
  type: 'function';
  function: {
    name: string;
    description?: string;
    /** The arguments' JSON schema. */
    parameters?: Record<string, unknown>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** Most tools one request may list. */
export const MAX_TOOLS = 4096;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** The request's `tools` checked (undefined or empty: none). */
export function readTools(where: string, v: unknown): ToolDefinition[] | undefined {
  if (v === undefined || v === null) return undefined;
  const list = checkArray(where, v, 'an array of tools ({type: "function", function: {name, ...}})', MAX_TOOLS);
  if (list.length === 0) return undefined;
  return guard(where, () =>
    list.map((t, i) => {
      const at = `${where}[${i}]`;
      if (!isPlainObject(t)) throw expected(at, 'a tool object {type: "function", function: {...}}', t);
      if (t.type !== 'function') throw expected(`${at}.type`, '"function"', t.type);
      const f = t.function;
      if (!isPlainObject(f)) throw expected(`${at}.function`, 'an object {name, description?, parameters?}', f);
      if (typeof f.name !== 'string' || f.name.length === 0) throw expected(`${at}.function.name`, 'a non-empty string', f.name);
      if (f.description !== undefined && typeof f.description !== 'string') throw expected(`${at}.function.description`, 'a string', f.description);
      if (f.parameters !== undefined && !isPlainObject(f.parameters)) throw expected(`${at}.function.parameters`, 'a JSON schema object', f.parameters);
      return { ...t, function: { ...f } } as ToolDefinition;
    }),
  );
}

/** The request's extra template variables checked (a plain object). */
export function readTemplateVariables(where: string, v: unknown): Record<string, unknown> | undefined {
  if (v === undefined) return undefined;
  return guard(where, () => {
    if (!isPlainObject(v)) throw expected(where, 'an object of template variables (e.g. {enable_thinking: false})', v);
    return { ...v };
  });
}

/** A tool call's arguments as the template reads them: the object, from a JSON string if need be. */
function templateArguments(at: string, v: unknown): Record<string, unknown> {
  if (isPlainObject(v)) return v;
  if (typeof v === 'string') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch (e) {
      throw inputError(`${at}: expected a JSON object (or its JSON string), got a string that is not JSON (${(e as Error).message})`);
    }
    if (isPlainObject(parsed)) return parsed;
    throw expected(at, 'a JSON object (or its JSON string)', parsed);
  }
  throw expected(at, 'a JSON object (or its JSON string)', v);
}

/** An assistant message's `tool_calls` for the template. */
function templateToolCalls(at: string, v: unknown): Record<string, unknown>[] {
  const list = checkArray(at, v, 'an array of tool calls', MAX_TOOLS);
  return list.map((c, k) => {
    const ck = `${at}[${k}]`;
    if (!isPlainObject(c)) throw expected(ck, 'a tool call {id, type: "function", function: {name, arguments}}', c);
    if (c.id !== undefined && typeof c.id !== 'string') throw expected(`${ck}.id`, 'a string', c.id);
    if (c.type !== undefined && c.type !== 'function') throw expected(`${ck}.type`, '"function"', c.type);
    const f = c.function;
    if (!isPlainObject(f)) throw expected(`${ck}.function`, 'an object {name, arguments}', f);
    if (typeof f.name !== 'string' || f.name.length === 0) throw expected(`${ck}.function.name`, 'a non-empty string', f.name);
    return { ...c, function: { ...f, arguments: templateArguments(`${ck}.function.arguments`, f.arguments ?? {}) } };
  });
}

/**
 * The conversation as the chat template gets it: tool-call turns and tool results checked, tool-call
 * arguments as objects, a calling turn's null content as ''. Messages without tool parts are passed
 * on as they are. `row` names the conversation in errors.
 */
export function templateMessages(messages: readonly ChatMessage[], row: number): readonly ChatMessage[] {
  return guard(`conversation ${row}`, () => {
    let out: ChatMessage[] | null = null;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      const at = `conversation ${row}: messages[${i}]`;
      if (m.role === 'tool') {
        const c = m.content;
        if (typeof c !== 'string' && !Array.isArray(c)) throw expected(`${at}.content`, 'the tool result (a string or an array of parts)', c);
        if (m.tool_call_id !== undefined && typeof m.tool_call_id !== 'string') throw expected(`${at}.tool_call_id`, 'a string', m.tool_call_id);
        continue;
      }
      if (m.tool_calls === undefined || m.tool_calls === null) continue;
      if (m.role !== 'assistant') throw inputError(`${at}.tool_calls: only assistant messages call tools (this one is "${m.role}")`);
      const toolCalls = templateToolCalls(`${at}.tool_calls`, m.tool_calls);
      out ??= messages.slice();
      out[i] = { ...m, content: m.content ?? '', tool_calls: toolCalls };
    }
    return out ?? messages;
  });
}
