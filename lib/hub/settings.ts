/**
 * Where the Hub is and where its files are cached, read the way Python's `huggingface_hub` reads
 * them (so both share one cache and one login): `HF_ENDPOINT`, `HF_HOME`, `HF_HUB_CACHE` (and the
 * older `HUGGINGFACE_HUB_CACHE`), `HF_TOKEN` (else the token file `HF_TOKEN_PATH` or
 * `$HF_HOME/token`), `HF_HUB_OFFLINE`. Options given in code win over the environment.
 * @module
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { expected, optInteger, readOptions } from '../validate.js';
import type { PullProgress } from './progress.js';

/** Options of {@link pullModel} (and of `loadModel`'s `hub` option). Unset fields come from the environment. */
export interface HubOptions {
  /** Branch, tag or 40-hex commit (default `'main'`). */
  revision?: string;
  /** The Hub cache folder (default `HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`). */
  cacheDir?: string;
  /** The Hub's address (default `HF_ENDPOINT`, else `https://huggingface.co`). */
  endpoint?: string;
  /**
   * Access token for gated or private repositories (default `HF_TOKEN`, else the file `HF_TOKEN_PATH`
   * or `$HF_HOME/token` that `hf auth login` writes). `false` sends no token at all.
   */
  token?: string | false;
  /** Use the cache only, never the network (default: `HF_HUB_OFFLINE` is `1`, `true`, `on` or `yes`). */
  offline?: boolean;
  /**
   * When the cache already holds every needed file of the revision, use it without asking the Hub
   * whether the branch moved (default false for `pullModel`; `loadModel` uses true).
   */
  preferCache?: boolean;
  /**
   * How many times a broken connection or a 5xx / 429 answer is retried per file, resuming from the
   * bytes that arrived (default 3; pauses of 0.5 s, 1 s, 2 s, ...). Failing after that, a pull
   * leaves the partial file for the next pull to resume.
   */
  retries?: number;
  /**
   * How many files download at once (default 8, as huggingface_hub's `snapshot_download`; 1 to 64).
   * Progress reports come for each file as its bytes arrive, with totals over all of them.
   */
  concurrency?: number;
  /**
   * How long to wait, in milliseconds, while another process (another pull, or Python's
   * huggingface_hub, whose file lock is shared) downloads a file this pull needs, before giving up
   * with E_BUSY (default: as long as it takes; `signal` still aborts the wait).
   */
  lockTimeoutMs?: number;
  /**
   * A download connection that sends nothing for this many milliseconds is dropped and retried,
   * resuming (default `HF_HUB_DOWNLOAD_TIMEOUT` seconds, as huggingface_hub reads it, else 10 s).
   */
  downloadTimeoutMs?: number;
  /** Called as files are checked and downloaded (see {@link PullProgress}). */
  onProgress?: (p: PullProgress) => void;
  /** Aborting it stops the download (E_ABORTED); the partial file is kept for the next pull. */
  signal?: AbortSignal;
}

/** The settings of one pull, every field decided. @internal */
export interface HubSettings {
  revision: string;
  cacheDir: string;
  endpoint: string;
  token: string | undefined;
  offline: boolean;
  preferCache: boolean;
  retries: number;
  concurrency: number;
  lockTimeoutMs: number | undefined;
  downloadTimeoutMs: number;
  onProgress: ((p: PullProgress) => void) | undefined;
  signal: AbortSignal | undefined;
}

/** Files downloading at once unless told: huggingface_hub's `snapshot_download` uses 8 workers. @internal */
export const DEFAULT_CONCURRENCY = 8;
/** @internal */
export const MAX_CONCURRENCY = 64;

const KEYS = ['revision', 'cacheDir', 'endpoint', 'token', 'offline', 'preferCache', 'retries', 'concurrency', 'lockTimeoutMs', 'downloadTimeoutMs', 'onProgress', 'signal'] as const;

function truthy(v: string | undefined): boolean {
  return v !== undefined && ['1', 'on', 'yes', 'true'].includes(v.trim().toLowerCase());
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v;
}

/** huggingface_hub's default HF_HUB_DOWNLOAD_TIMEOUT: 10 s. */
const DEFAULT_DOWNLOAD_TIMEOUT_MS = 10_000;

/** A positive number of seconds from the environment, in ms; undefined when unset or not one. */
function envSeconds(v: string | undefined): number | undefined {
  const s = nonEmpty(v)?.trim();
  if (s === undefined || !/^\d+(\.\d+)?$/.test(s)) return undefined;
  const ms = Math.round(Number(s) * 1000);
  return ms >= 1 && ms <= 2 ** 31 - 1 ? ms : undefined;
}

/** `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`. @internal */
export function hfHome(env: NodeJS.ProcessEnv = process.env): string {
  return nonEmpty(env.HF_HOME) ?? join(nonEmpty(env.XDG_CACHE_HOME) ?? join(homedir(), '.cache'), 'huggingface');
}

/** The token from the environment: `HF_TOKEN`, else the token file. @internal */
export function envToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const direct = nonEmpty(env.HF_TOKEN)?.trim();
  if (direct) return direct;
  const file = nonEmpty(env.HF_TOKEN_PATH) ?? join(hfHome(env), 'token');
  try {
    return nonEmpty(readFileSync(file, 'utf8').trim());
  } catch {
    return undefined;
  }
}

/** Checks the options (E_INPUT naming the first bad one) and fills the rest from the environment. @internal */
export function hubSettings(options: unknown, what: string, env: NodeJS.ProcessEnv = process.env): HubSettings {
  const o = readOptions(what, options, KEYS) as HubOptions;
  const w = (k: string) => `${what}.${k}`;
  for (const k of ['revision', 'cacheDir', 'endpoint'] as const) {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'string' || v.length === 0)) throw expected(w(k), 'a non-empty string', v);
  }
  if (o.token !== undefined && o.token !== false && (typeof o.token !== 'string' || o.token.length === 0)) {
    throw expected(w('token'), 'a non-empty string or false', o.token);
  }
  for (const k of ['offline', 'preferCache'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw expected(w(k), 'a boolean', o[k]);
  }
  optInteger(w('retries'), o.retries, 0, 100);
  optInteger(w('concurrency'), o.concurrency, 1, MAX_CONCURRENCY);
  optInteger(w('lockTimeoutMs'), o.lockTimeoutMs, 0);
  optInteger(w('downloadTimeoutMs'), o.downloadTimeoutMs, 1, 2 ** 31 - 1);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw expected(w('onProgress'), 'a function', o.onProgress);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw expected(w('signal'), 'an AbortSignal', o.signal);
  const revision = o.revision ?? 'main';
  if (/[\0\r\n]/.test(revision) || revision.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw expected(w('revision'), 'a branch, tag or commit name', revision);
  }
  const endpoint = (o.endpoint ?? nonEmpty(env.HF_ENDPOINT) ?? 'https://huggingface.co').replace(/\/+$/, '');
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw expected(w('endpoint'), 'an http(s) URL', endpoint);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw expected(w('endpoint'), 'an http(s) URL', endpoint);
  return {
    revision,
    cacheDir: o.cacheDir ?? nonEmpty(env.HF_HUB_CACHE) ?? nonEmpty(env.HUGGINGFACE_HUB_CACHE) ?? join(hfHome(env), 'hub'),
    endpoint,
    token: o.token === false ? undefined : (o.token ?? envToken(env)),
    offline: o.offline ?? truthy(env.HF_HUB_OFFLINE),
    preferCache: o.preferCache ?? false,
    retries: o.retries ?? 3,
    concurrency: o.concurrency ?? DEFAULT_CONCURRENCY,
    lockTimeoutMs: o.lockTimeoutMs,
    downloadTimeoutMs: o.downloadTimeoutMs ?? envSeconds(env.HF_HUB_DOWNLOAD_TIMEOUT) ?? DEFAULT_DOWNLOAD_TIMEOUT_MS,
    onProgress: o.onProgress,
    signal: o.signal,
  };
}
