import { UsageError, integerFlag, stringValue } from '../args.js';
import type { Command } from '../command.js';

const HELP = `usage: qwenvl pull ORG/NAME [--revision R] [options]

Downloads a model's files from the Hugging Face Hub into the Hub cache shared with Python's
huggingface_hub (HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub) and prints the
snapshot folder. Only the files qwenvl reads are fetched; files already in the cache are reused,
an interrupted download resumes, and every file is verified (sha256 / git blob id).
Progress goes to stderr: one line redrawn in place on a terminal, plain lines otherwise.

options:
  --revision R         branch, tag or commit (default: main)
  --cache-dir DIR      the Hub cache folder (default: see above)
  --offline            use the cache only (as HF_HUB_OFFLINE=1)
  --concurrency N      files downloading at once (1 to 64; default 8)
  --quiet              no progress, only the folder
  -h, --help           show this help

environment: HF_TOKEN (or the token file of 'hf auth login') for gated and private models,
HF_ENDPOINT (a mirror), HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE, HF_HUB_DOWNLOAD_TIMEOUT (seconds
of silence before a connection is dropped and resumed; default 10); HTTPS_PROXY, HTTP_PROXY,
ALL_PROXY and NO_PROXY (lower case too) as Python's requests reads them.
`;

/** `qwenvl pull ORG/NAME [--revision R]`: fetches a model into the Hub cache and prints its snapshot folder. */
export const pullCommand: Command = {
  name: 'pull',
  summary: 'download a model from the Hugging Face Hub into the shared Hub cache',
  help: HELP,
  options: {
    revision: { type: 'string' },
    'cache-dir': { type: 'string' },
    offline: { type: 'boolean' },
    concurrency: { type: 'string' },
    quiet: { type: 'boolean' },
  },
  async run({ values, positionals, signal }) {
    if (positionals.length === 0) throw new UsageError('a model id ORG/NAME is required');
    if (positionals.length > 1) throw new UsageError(`give one model id; got ${positionals.length} arguments`);
    const repoId = positionals[0]!;
    const { isRepoId } = await import('../../hub/cache.js');
    if (!isRepoId(repoId)) throw new UsageError(`'${repoId}' is not a Hub model id ORG/NAME`);
    const revision = stringValue(values, 'revision');
    const cacheDir = stringValue(values, 'cache-dir');
    if (revision === '') throw new UsageError('--revision must not be empty');
    if (cacheDir === '') throw new UsageError('--cache-dir must not be empty');
    const concurrencyText = stringValue(values, 'concurrency');
    const { MAX_CONCURRENCY } = await import('../../hub/settings.js');
    const concurrency = concurrencyText === undefined ? undefined : integerFlag('--concurrency', concurrencyText, 1, MAX_CONCURRENCY);

    const { pullModel } = await import('../../hub/pull.js');
    const { plainView, ttyView } = await import('../pull-progress.js');
    const err = process.stderr;
    const write = (s: string) => void err.write(s);
    const view = values.quiet === true ? undefined : err.isTTY ? ttyView(write, () => err.columns || 80) : plainView(write);
    // Ctrl-C keeps the partial file for the next pull; the abort ends the transfer cleanly.
    const interrupted = new AbortController();
    const onSigint = () => interrupted.abort();
    process.once('SIGINT', onSigint);
    try {
      const pulled = await pullModel(repoId, {
        ...(revision !== undefined ? { revision } : {}),
        ...(cacheDir !== undefined ? { cacheDir } : {}),
        ...(values.offline === true ? { offline: true } : {}),
        ...(concurrency !== undefined ? { concurrency } : {}),
        ...(view ? { onProgress: (p) => view.update(p) } : {}),
        signal: AbortSignal.any([signal, interrupted.signal]),
      });
      view?.end();
      process.stdout.write(`${pulled.dir}\n`);
      return 0;
    } catch (e) {
      view?.end();
      throw e;
    } finally {
      process.off('SIGINT', onSigint);
    }
  },
};
