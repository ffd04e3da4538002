/**
 * `$ref` lookup: JSON pointers within the schema being compiled (`#`, `#/$defs/x`, `#/definitions/x`,
 * any `#/...` path). Other references (URLs, anchors) are reported as unsupported.
 * @internal
 * @module
 */
import { QwenVLError, inputError } from '../errors.js';
import { type Schema, asSchema, isSchemaObject } from './schema-keywords.js';

/** The schema `target` points at in `root`; `path` is where the `$ref` was met (for errors). */
export function resolveRef(root: Schema, target: string, path: string): Schema {
  if (!target.startsWith('#/') && target !== '#') {
    const what = target.startsWith('#') ? 'anchors' : 'only "#/..." pointers within the schema';
    throw new QwenVLError('E_UNSUPPORTED', `${path}: the $ref ${JSON.stringify(target)} (${what}) is not supported by structured output`);
  }
  let node: unknown = root;
  if (target !== '#') {
    for (const raw of target.slice(2).split('/')) {
      const token = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
      const container = isSchemaObject(node) || Array.isArray(node) ? (node as Record<string, unknown>) : undefined;
      node = container !== undefined && Object.hasOwn(container, token) ? container[token] : undefined;
      if (node === undefined) break;
    }
  }
  if (node === undefined) throw inputError(`${path}: $ref ${JSON.stringify(target)} points at nothing`);
  return asSchema(node, target);
}
