import { existsSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { UsageError, integerOption, stringValue, threadsOption } from '../args.js';
import type { Command } from '../command.js';

const HELP = `usage: qwenvl batch REQUESTS.jsonl --out RESULTS.jsonl --model DIR [options]

Runs a file of chat requests, one JSON object a line, and appends one result line per request
to --out. A line is OpenAI Batch API input:
  {"custom_id": "a1", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": [...], ...}}
or flat: {"custom_id": "a1", "messages": [...], "max_tokens": 64, ...}. Images and videos are
image_url / video_url parts: a path relative to the folder of REQUESTS.jsonl, an absolute path,
a file: URL or a data: URL (http(s) only with --allow-http). The body's "model" is ignored.

Each result line is OpenAI batch output: {"id", "custom_id", "response": {"status_code": 200,
"request_id", "body": <chat.completion>}, "error": null}, or for a request that failed (bad JSON,
bad request, missing image, prompt too long, ...) "response": null and "error": {"code",
"message"}; the batch goes on. Lines come in the order requests finish; custom_id says which is which.

Resuming: requests whose custom_id already has a line in --out are skipped (errors too, unless
--retry-failed), and a half-written last line (a crash mid-write) is cut off first, so rerunning
the same command after a crash or Ctrl-C finishes the batch. custom_ids must be unique: a file
that repeats one is refused before anything runs. Ctrl-C stops cleanly: requests in flight are
dropped, not written, and run on the next run. One run at a time per results file (RESULTS.jsonl.lock).

Exit status: 0 when every request has a successful result, 3 when some result is an error,
130 when interrupted, 1 when the batch could not run (model, files), 2 for bad arguments.

options:
  --out FILE           the results file (created, or appended to); required
  --model DIR|ORG/NAME checkpoint folder or a Hub id (see 'qwenvl chat --help'); required
  --concurrency N      requests in flight at once (integer from 1 to 1024; default 8)
  --seed S             a seed for every request without its own "seed", derived from S and its
                       custom_id: a rerun, resumed or at another concurrency, samples alike
  --max-tokens N       max_tokens of requests that set none (integer >= 1)
  --retry-failed       remove the error lines of --out and run their requests again
  --allow-http         fetch http(s) image and video URLs (at most 64 MiB, 60 s each)
  --threads N          compute threads (integer from 1 to 1024; default: physical cores)
  --quiet              no progress or summary on stderr
  -h, --help           show this help

Progress goes to stderr: one line redrawn in place on a terminal (requests done, failures,
requests/s, generated tokens/s, time left), plain lines otherwise.
`;

/** The default number of requests in flight: enough to fill a batching engine's decode batch. */
const DEFAULT_CONCURRENCY = 8;
const HTTP_LIMITS = { maxBytes: 64 * 2 ** 20, timeoutMs: 60_000 };

/** `qwenvl batch REQUESTS.jsonl --out RESULTS.jsonl --model DIR`: a file of chat requests, resumable. */
export const batchCommand: Command = {
  name: 'batch',
  summary: 'run a JSONL file of chat requests (OpenAI batch format), resumable',
  help: HELP,
  options: {
    out: { type: 'string' },
    model: { type: 'string' },
    concurrency: { type: 'string' },
    seed: { type: 'string' },
    'max-tokens': { type: 'string' },
    'retry-failed': { type: 'boolean' },
    'allow-http': { type: 'boolean' },
    threads: { type: 'string' },
    quiet: { type: 'boolean' },
  },
  async run({ values, positionals }) {
    if (positionals.length === 0) throw new UsageError('a requests file REQUESTS.jsonl is required');
    if (positionals.length > 1) throw new UsageError(`give one requests file; got ${positionals.length} arguments`);
    const input = resolve(positionals[0]!);
    const out = stringValue(values, 'out');
    if (out === undefined || out === '') throw new UsageError('--out RESULTS.jsonl is required');
    const output = resolve(out);
    if (output === input) throw new UsageError('--out must not be the requests file');
    const model = stringValue(values, 'model');
    if (model === undefined || model === '') throw new UsageError('--model DIR is required');
    const concurrency = integerOption(values, 'concurrency', 1, 1024) ?? DEFAULT_CONCURRENCY;
    const seed = integerOption(values, 'seed', 0);
    const maxTokens = integerOption(values, 'max-tokens', 1);
    const threads = threadsOption(values);

    // Loaded only now, so that help and usage errors work without the native addon.
    const { planBatch, runBatch } = await import('../../batch/run.js');
    const { BatchStats } = await import('../../batch/stats.js');
    const { createBatchMapping } = await import('../../batch/openai-mapping.js');
    const { lockResults } = await import('../../batch/output.js');
    const { batchPlainView, batchTtyView } = await import('../batch-progress.js');
    const err = process.stderr;
    const write = (s: string) => void err.write(s);
    const view = values.quiet === true ? undefined : err.isTTY ? batchTtyView(write, () => err.columns || 80) : batchPlainView(write);

    // One run per results file: a second one would run the first one's requests again.
    const release = await lockResults(output);
    try {
      // The files first: a duplicate id or a foreign --out is refused before a model is loaded.
      const plan = await planBatch(input, output, values['retry-failed'] === true);
      view?.start(plan, positionals[0]!, out);
      const { loadModel } = await import('../../model/load.js');
      const m = await loadModel(model, threads !== undefined ? { threads } : {});
      // First Ctrl-C: stop cleanly (requests in flight dropped, the output flushed); a second one
      // while that happens gets the default (immediate) exit.
      const interrupted = new AbortController();
      const onSigint = () => {
        process.off('SIGINT', onSigint);
        interrupted.abort();
      };
      process.on('SIGINT', onSigint);
      const stats = new BatchStats();
      const timer = view ? setInterval(() => view.tick(stats.snapshot()), 1000) : undefined;
      timer?.unref();
      try {
        const summary = await runBatch(plan, {
          concurrency,
          ...(seed !== undefined ? { seed } : {}),
          signal: interrupted.signal,
          mapping: createBatchMapping({
            // A folder's name, or the Hub id as given.
            modelName: existsSync(model) ? basename(resolve(model)) : model,
            baseDir: dirname(input),
            ...(values['allow-http'] === true ? { remote: HTTP_LIMITS } : {}),
            ...(maxTokens !== undefined ? { maxTokens } : {}),
          }),
          chat: (messages, options) => m.chat(messages, options),
          stats,
          ...(view ? { onItem: (item, p) => view.item(item, p) } : {}),
        });
        view?.end(summary, out);
        if (summary.interrupted) return 130;
        return summary.failedTotal > 0 ? 3 : 0;
      } catch (e) {
        view?.stop();
        throw e;
      } finally {
        if (timer) clearInterval(timer);
        process.off('SIGINT', onSigint);
        m.dispose();
      }
    } finally {
      await release();
    }
  },
};
