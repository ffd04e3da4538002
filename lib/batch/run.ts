/**
 * Runs a batch file through a model: up to `concurrency` chat calls at once (a model sharing one
 * batching engine between concurrent calls runs them together), each result appended to the
 * output as it finishes (completion order; custom_id says which request a line answers).
 *
 * A line that cannot be run (bad JSON, bad request, missing image, too long a prompt, ...) gets an
 * error line and the batch goes on. Stopping (`signal`) aborts the calls in flight and writes none
 * of their lines, so a rerun runs them; a failure to write the output stops the batch and rejects.
 * @internal
 * @module
 */
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { QwenVLError } from '../errors.js';
import type { GenerateOptions } from '../generate/options.js';
import type { ChatResult, Conversation, RequestOptions } from '../model/model.js';
import { readBatchItems, scanBatchInput, type BatchItem, type LineError } from './input.js';
import { readExistingResults, ResultWriter, type ResultLine } from './output.js';
import { requestSeed } from './seed.js';
import { BatchStats, type BatchProgress } from './stats.js';

/** One request made ready to run: the chat call's arguments and what to do with its result. @internal */
export interface PreparedCall {
  messages: Conversation;
  options: GenerateOptions & RequestOptions;
  /** The response body (a `chat.completion` object) of the call's result. */
  complete(result: ChatResult): unknown;
  /** Frees what the request holds (temporary media files); called however the call ends. */
  close(): Promise<void>;
}

/** How request bodies become chat calls (the OpenAI mapping). @internal */
export interface BatchRequestMapping {
  /** Throws (a QwenVLError or an OpenAIError) when the body is not a valid request. */
  prepare(body: Record<string, unknown>, signal: AbortSignal): Promise<PreparedCall>;
  /** The error line of a failed request; the default names a QwenVLError's code and message. */
  errorOf?(e: unknown): LineError;
}

/** What a run is told before it starts. @internal */
export interface BatchStart {
  /** Requests in the input. */
  total: number;
  /** Of those, the ones the output already answers (skipped). */
  skipped: number;
  /** Bytes of a half-written last output line cut off. */
  repairedBytes: number;
  /** Error records removed from the output by `retryFailed`. */
  droppedFailures: number;
}

/** What {@link planBatch} found: the work left, before any model is loaded. @internal */
export interface BatchPlan extends BatchStart {
  input: string;
  output: string;
  /** custom_ids the output already has a line for (skipped). */
  done: ReadonlySet<string>;
  /** Requests of the input whose earlier line is an error. */
  failedBefore: number;
}

/**
 * Reads the input (refusing duplicate custom_ids) and the output (repairing a half-written last
 * line; with `retryFailed`, removing its error lines), and says what is left to run. @internal
 */
export async function planBatch(input: string, output: string, retryFailed = false): Promise<BatchPlan> {
  const scan = await scanBatchInput(input);
  const existing = await readExistingResults(output, retryFailed);
  // Create the output now: an unwritable path fails before any model is loaded.
  await (await open(output, 'a')).close();
  let skipped = 0;
  let failedBefore = 0;
  for (const id of scan.ids.keys()) {
    const ok = existing.done.get(id);
    if (ok === undefined) continue;
    skipped++;
    if (!ok) failedBefore++;
  }
  return {
    input,
    output,
    total: scan.ids.size,
    skipped,
    failedBefore,
    done: new Set(existing.done.keys()),
    repairedBytes: existing.repairedBytes,
    droppedFailures: existing.droppedFailures,
  };
}

/** Options of {@link runBatch}. @internal */
export interface BatchRunOptions {
  /** Most chat calls in flight. */
  concurrency: number;
  /** Global seed: requests without their own `seed` get one derived from it and their custom_id. */
  seed?: number;
  /** Stops the run: calls in flight are aborted and their lines not written. */
  signal?: AbortSignal;
  mapping: BatchRequestMapping;
  /** One chat call (the model's chat). */
  chat(messages: Conversation, options: GenerateOptions & RequestOptions): Promise<ChatResult>;
  /** After each line is written; `error` when the line records one. */
  onItem?(item: { line: number; customId: string; error?: LineError }, progress: BatchProgress): void;
  /** The counters (a caller that redraws on a timer reads them); a fresh one by default. */
  stats?: BatchStats;
}

/** How a run ended. @internal */
export interface BatchSummary {
  progress: BatchProgress;
  /** The signal stopped it before every request had a line. */
  interrupted: boolean;
  /** Requests of the input whose line in the output is an error (this run's and earlier runs'). */
  failedTotal: number;
}

function errorOf(e: unknown): LineError {
  if (e instanceof QwenVLError) return { code: e.code, message: e.message };
  // Not a typed error: a bug, but one request's bug; the batch goes on and the line says what it was.
  return { code: 'E_INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

function lineId(): string {
  return `batch_req_${randomBytes(12).toString('hex')}`;
}

/** Runs what `plan` left; resolves once every request has a line, or the signal stopped it. @internal */
export async function runBatch(plan: BatchPlan, o: BatchRunOptions): Promise<BatchSummary> {
  const stats = o.stats ?? new BatchStats();
  stats.total = plan.total;
  stats.skipped = plan.skipped;

  const writer = await ResultWriter.open(plan.output);
  // Stopping: the caller's signal, or a write that failed (then nothing more can be recorded).
  const halt = new AbortController();
  let fatal: unknown;
  const signal = o.signal ? AbortSignal.any([o.signal, halt.signal]) : halt.signal;
  const items = readBatchItems(plan.input, plan.done);

  const record = async (item: BatchItem, line: ResultLine, tokens?: ChatResult['usage']) => {
    await writer.append(line);
    stats.done++;
    if (line.error) stats.failed++;
    if (tokens) {
      stats.promptTokens += tokens.promptTokens;
      stats.completionTokens += tokens.completionTokens;
    }
    o.onItem?.({ line: item.line, customId: item.customId, ...(line.error ? { error: line.error } : {}) }, stats.snapshot());
  };
  const fail = (item: BatchItem, error: LineError) => record(item, { id: lineId(), custom_id: item.customId, response: null, error });

  const runOne = async (item: BatchItem): Promise<void> => {
    if (item.error) return fail(item, item.error);
    let body = item.body;
    if (o.seed !== undefined && (body.seed === undefined || body.seed === null)) body = { ...body, seed: requestSeed(o.seed, item.customId) };
    let result: ChatResult;
    let response: unknown;
    let call: PreparedCall | undefined;
    try {
      call = await o.mapping.prepare(body, signal);
      result = await o.chat(call.messages, { ...call.options, signal });
      if (signal.aborted) return;
      response = call.complete(result);
    } catch (e) {
      // A call that failed because the run is stopping is not the request's failure: no line.
      if (signal.aborted) return;
      return fail(item, o.mapping.errorOf?.(e) ?? errorOf(e));
    } finally {
      await call?.close().catch(() => undefined);
    }
    const line: ResultLine = {
      id: lineId(),
      custom_id: item.customId,
      response: { status_code: 200, request_id: `req_${randomBytes(12).toString('hex')}`, body: response },
      error: null,
    };
    return record(item, line, result.usage);
  };

  const worker = async () => {
    try {
      while (!signal.aborted) {
        const next = await items.next();
        // An item taken as the run stops is left for the next run.
        if (next.done || signal.aborted) return;
        await runOne(next.value);
      }
    } catch (e) {
      // Only reading the input or writing the output fails here (runOne records request errors).
      fatal ??= e;
      halt.abort();
    }
  };
  try {
    await Promise.all(Array.from({ length: o.concurrency }, worker));
  } finally {
    await items.return(undefined);
    await writer.close().catch((e: unknown) => {
      fatal ??= e;
    });
  }
  if (fatal !== undefined) throw fatal;
  const progress = stats.snapshot();
  return {
    progress,
    interrupted: progress.skipped + progress.done < progress.total,
    failedTotal: plan.failedBefore + progress.failed,
  };
}
