import { basename, resolve } from 'node:path';
import { UsageError, integerOption, kvCacheOption, numberOption, stringList, stringValue, threadsOption } from '../args.js';
import type { Command } from '../command.js';

const HELP = `usage: qwenvl serve --model DIR [options]

Serves the model over HTTP with OpenAI's Chat Completions API: POST /v1/chat/completions
(streaming or not), GET /v1/models, GET /health, GET /metrics (Prometheus). SIGTERM or SIGINT
drains: new requests get 503, running ones finish (or end with an error after --drain-timeout).

options:
  --model DIR|ORG/NAME   checkpoint folder or a Hub id; required
  --host HOST            address to listen on (default 127.0.0.1: this machine only)
  --port N               port (default 8000; 0 picks a free one)
  --api-key KEY          require "Authorization: Bearer KEY" on /v1/ (default: $QWENVL_API_KEY, else none)
  --served-model-name S  the model name clients send (default: the folder's or repository's name)
  --max-running N        requests the model runs at once, batched together (default 16)
  --max-queue N          requests waiting beyond those; more get 429 (default 64)
  --kv-cache T           f32 (default, exact) or bf16: keys and values stored at half the memory,
                         for longer prompts or more concurrent requests (README, "Concurrency and caches")
  --max-body-mb N        largest request body, images included (default 50)
  --max-images N         most images per request (default 32)
  --max-videos N         most videos per request (default 4)
  --allow-remote-media   fetch http(s) image and video URLs (off: data: URLs only). The server then
                         fetches any URL a client names, internal addresses included
  --remote-media-max-mb N  largest fetched file (default 20)
  --remote-media-timeout S seconds one fetch may take (default 10)
  --allowed-local-media DIR  let requests name files (paths, file: URLs) under DIR (repeatable;
                         default: no local files)
  --drain-timeout S      seconds running requests get to finish on shutdown (default 30)
  --threads N            compute threads (default: physical cores)
  -h, --help             show this help
`;

/** `qwenvl serve --model DIR`: an OpenAI-compatible server until SIGTERM / SIGINT. */
export const serveCommand: Command = {
  name: 'serve',
  summary: 'serve the model over HTTP with the OpenAI Chat Completions API',
  help: HELP,
  options: {
    model: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'api-key': { type: 'string' },
    'served-model-name': { type: 'string' },
    'max-running': { type: 'string' },
    'max-queue': { type: 'string' },
    'kv-cache': { type: 'string' },
    'max-body-mb': { type: 'string' },
    'max-images': { type: 'string' },
    'max-videos': { type: 'string' },
    'allow-remote-media': { type: 'boolean' },
    'remote-media-max-mb': { type: 'string' },
    'remote-media-timeout': { type: 'string' },
    'allowed-local-media': { type: 'string', multiple: true },
    'drain-timeout': { type: 'string' },
    threads: { type: 'string' },
  },
  async run({ values, positionals }) {
    const model = stringValue(values, 'model');
    if (model === undefined) throw new UsageError('--model DIR is required');
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const seconds = (flag: string): number | undefined => numberOption(values, flag, (x) => x > 0, 'a number of seconds > 0');
    const host = stringValue(values, 'host') ?? '127.0.0.1';
    const port = integerOption(values, 'port', 0, 65535) ?? 8000;
    const apiKey = stringValue(values, 'api-key') ?? (process.env.QWENVL_API_KEY || undefined);
    if (apiKey === '') throw new UsageError('--api-key needs a value');
    const maxRunning = integerOption(values, 'max-running', 1) ?? 16;
    const maxQueue = integerOption(values, 'max-queue', 0) ?? 64;
    const kvCache = kvCacheOption(values);
    const bodyLimit = (integerOption(values, 'max-body-mb', 1, 4096) ?? 50) * 2 ** 20;
    const maxImages = integerOption(values, 'max-images', 0) ?? 32;
    const maxVideos = integerOption(values, 'max-videos', 0) ?? 4;
    const remote = values['allow-remote-media'] === true
      ? {
          maxBytes: (integerOption(values, 'remote-media-max-mb', 1, 4096) ?? 20) * 2 ** 20,
          timeoutMs: Math.round((seconds('remote-media-timeout') ?? 10) * 1000),
        }
      : undefined;
    if (!remote && (values['remote-media-max-mb'] !== undefined || values['remote-media-timeout'] !== undefined)) {
      throw new UsageError('--remote-media-max-mb and --remote-media-timeout need --allow-remote-media');
    }
    const roots = stringList(values, 'allowed-local-media').map((d) => resolve(d));
    const drainMs = Math.round((seconds('drain-timeout') ?? 30) * 1000);
    const threads = threadsOption(values);
    const modelId = stringValue(values, 'served-model-name') ?? basename(resolve(model));
    if (modelId === '') throw new UsageError('--served-model-name needs a value');

    // Loaded only now, so that help and usage errors work without the native addon.
    const { loadModel } = await import('../../model/load.js');
    const { createMediaResolver } = await import('../../openai/media.js');
    const { createServer } = await import('../../server/server.js');
    const resolver = createMediaResolver({ localFiles: roots.length > 0 ? roots : 'deny', ...(remote ? { remote } : {}) });
    const m = await loadModel(model, {
      ...(threads !== undefined ? { threads } : {}),
      // Every request narrows this further to exactly the files its media resolver admitted.
      media: { maxImageBytes: 20 * 2 ** 20, maxImages, maxVideos, maxVideoBytes: 256 * 2 ** 20, maxInputPixels: 40_000_000 },
      specialTokensInUserText: false,
      // The server admits up to maxRunning requests; the engine batches them all at once (queueing
      // happens at the server, which answers 429 past --max-queue).
      engine: { maxRunning, ...(kvCache !== undefined ? { kvCache } : {}) },
    });
    try {
      const server = createServer({ model: m, modelId, resolver, maxRunning, maxQueue, bodyLimit, ...(apiKey ? { apiKey } : {}) });
      const address = await server.listen(host, port);
      process.stdout.write(`qwenvl serve: ${modelId} listening on ${address}\n`);
      if (!apiKey && !/^(127\.|::1$|localhost$)/.test(host)) {
        process.stderr.write(`qwenvl serve: warning: listening on ${host} without --api-key: anyone who can reach it can use the model\n`);
      }
      await new Promise<void>((done) => {
        const stop = (sig: string) => {
          process.off('SIGTERM', onTerm);
          process.off('SIGINT', onInt);
          process.stderr.write(`qwenvl serve: ${sig}: draining (up to ${drainMs / 1000} s)\n`);
          server.drain(drainMs).then(done, done);
        };
        const onTerm = () => stop('SIGTERM');
        const onInt = () => stop('SIGINT');
        process.on('SIGTERM', onTerm);
        process.on('SIGINT', onInt);
      });
      process.stderr.write('qwenvl serve: stopped\n');
      return 0;
    } finally {
      m.dispose();
    }
  },
};
