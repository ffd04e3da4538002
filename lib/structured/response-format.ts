/**
 * Structured output's request option: `responseFormat` read and compiled to a grammar before any
 * generation, so an unsupported schema fails the call at once (E_UNSUPPORTED naming the keyword).
 * @module
 */
import { QwenVLError } from '../errors.js';
import { describe, readOptions } from '../validate.js';
import type { GrammarIR } from './grammar-ir.js';
import { compileJsonSchema, jsonObjectGrammar } from './json-schema.js';

/**
 * What the answer must be. `json_schema`: a JSON text whose value is valid against `schema`
 * (constrained decoding guarantees it; see the README for the supported keywords, any other is
 * E_UNSUPPORTED); `json_object`: any JSON object; `text` (the default): free text. `name` is a
 * label, as in OpenAI's API. A thinking model reasons freely first; the format covers the answer after `</think>`.
 */
export type ResponseFormat =
  | { type: 'json_schema'; schema: object | boolean; name?: string }
  | { type: 'json_object' }
  | { type: 'text' };

/** A response format compiled: its grammar, and a key naming it for the model's grammar cache. @internal */
export interface ResolvedResponseFormat {
  key: string;
  grammar: GrammarIR;
}

/**
 * Checks a `responseFormat` option and compiles it; undefined for free text. E_INPUT for a malformed
 * option or schema, E_UNSUPPORTED for a schema keyword structured output cannot guarantee.
 * @internal
 */
export function readResponseFormat(where: string, v: unknown): ResolvedResponseFormat | undefined {
  if (v === undefined) return undefined;
  const o = readOptions(where, v, ['type', 'schema', 'name']);
  switch (o.type) {
    case 'text':
      return undefined;
    case 'json_object':
      return { key: 'json_object', grammar: jsonObjectGrammar() };
    case 'json_schema': {
      const schema = o.schema;
      if (typeof schema !== 'boolean' && (schema === null || typeof schema !== 'object' || Array.isArray(schema))) {
        throw new QwenVLError('E_INPUT', `${where}.schema: expected a JSON schema (an object), got ${describe(schema)}`);
      }
      if (o.name !== undefined && typeof o.name !== 'string') throw new QwenVLError('E_INPUT', `${where}.name: expected a string, got ${describe(o.name)}`);
      let text: string;
      try {
        text = JSON.stringify(schema);
      } catch (e) {
        throw new QwenVLError('E_INPUT', `${where}.schema: not JSON (${e instanceof Error ? e.message : String(e)})`, { cause: e });
      }
      try {
        return { key: `json_schema:${text}`, grammar: compileJsonSchema(schema) };
      } catch (e) {
        if (e instanceof QwenVLError) throw new QwenVLError(e.code, `${where}.schema: ${e.message}`, { cause: e });
        throw e;
      }
    }
    default:
      throw new QwenVLError('E_INPUT', `${where}.type: expected 'json_schema', 'json_object' or 'text', got ${describe(o.type)}`);
  }
}
