/**
 * Reading a batch file: JSON Lines, one chat request per line, in OpenAI's Batch API form
 * (`{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}`) or flat
 * (`{"custom_id", "messages": [...], ...}`: the line minus `custom_id` is the body).
 *
 * The file is read twice as a stream, never held whole (a line may carry megabytes of base64
 * images): {@link scanBatchInput} first collects every custom_id to refuse duplicates and count the
 * work, then {@link readBatchItems} hands the requests to the runner as it takes them.
 * @internal
 * @module
 */
import { inputError } from '../errors.js';
import { fileLines } from './lines.js';

/** The one endpoint a batch line may name. */
export const CHAT_URL = '/v1/chat/completions';

/** An error recorded for one line instead of a response (OpenAI's `{code, message}`). @internal */
export interface LineError {
  code: string;
  message: string;
  /** The request field at fault, when known (`messages[0].content[1]`). */
  param?: string;
}

/**
 * One non-blank line of the batch file: its request body, or why it cannot be run. A line whose
 * custom_id cannot be read is named `line-N` (N its 1-based line number).
 * @internal
 */
export type BatchItem =
  | { line: number; customId: string; body: Record<string, unknown>; error?: undefined }
  | { line: number; customId: string; error: LineError; body?: undefined };

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function lineError(line: number, customId: string, code: string, message: string): BatchItem {
  return { line, customId, error: { code, message: `line ${line}: ${message}` } };
}

/** Parses one line (1-based `line`); never throws. @internal */
export function parseBatchLine(text: string, line: number): BatchItem {
  const fallbackId = `line-${line}`;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return lineError(line, fallbackId, 'E_INPUT', `not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(v)) return lineError(line, fallbackId, 'E_INPUT', 'expected a JSON object with custom_id and a chat request');
  const id = v.custom_id;
  if (typeof id !== 'string' || id.length === 0) {
    return lineError(line, fallbackId, 'E_INPUT', `custom_id must be a non-empty string, got ${id === undefined ? 'none' : JSON.stringify(id)}`);
  }
  const wrapped = 'body' in v || 'url' in v || 'method' in v;
  if (!wrapped) {
    const { custom_id: _, ...body } = v;
    return { line, customId: id, body };
  }
  if (v.method !== undefined && v.method !== 'POST') {
    return lineError(line, id, 'E_UNSUPPORTED', `method ${JSON.stringify(v.method)} is not supported (only "POST")`);
  }
  if (v.url !== undefined && v.url !== CHAT_URL) {
    return lineError(line, id, 'E_UNSUPPORTED', `url ${JSON.stringify(v.url)} is not supported (only "${CHAT_URL}")`);
  }
  if (!isObject(v.body)) return lineError(line, id, 'E_INPUT', 'body must be a JSON object (the chat request)');
  return { line, customId: id, body: v.body };
}

/** What the first pass learns: every line's custom_id. @internal */
export interface BatchScan {
  /** custom_id -> its line number, for every non-blank line (unreadable ids as `line-N`). */
  ids: Map<string, number>;
}

/**
 * Reads every custom_id of the file. Duplicates are refused up front (E_INPUT naming them and their
 * lines), as OpenAI's Batch API does: results are matched to requests by id alone, so two lines
 * with one id could not be told apart in the output, nor resumed.
 * @internal
 */
export async function scanBatchInput(path: string): Promise<BatchScan> {
  const ids = new Map<string, number>();
  const dups: string[] = [];
  for await (const { text, line } of fileLines(path)) {
    const { customId } = parseBatchLine(text, line);
    const first = ids.get(customId);
    if (first !== undefined) {
      if (dups.length < 10) dups.push(`${JSON.stringify(customId)} (lines ${first} and ${line})`);
      else if (dups.length === 10) dups.push('…');
      continue;
    }
    ids.set(customId, line);
  }
  if (dups.length > 0) {
    throw inputError(`${path}: custom_id must be unique in a batch; repeated: ${dups.join(', ')}`);
  }
  return { ids };
}

/** Yields the items of the file whose custom_id is not in `skip`, in file order. @internal */
export async function* readBatchItems(path: string, skip: ReadonlySet<string>): AsyncGenerator<BatchItem> {
  const seen = new Set<string>();
  for await (const { text, line } of fileLines(path)) {
    const item = parseBatchLine(text, line);
    // `seen` guards against a file edited between the two passes: an id is never run twice.
    if (skip.has(item.customId) || seen.has(item.customId)) continue;
    seen.add(item.customId);
    yield item;
  }
}
