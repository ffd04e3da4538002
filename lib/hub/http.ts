/**
 * Requests to the Hub (through hubFetch, which honours HTTPS_PROXY / NO_PROXY): the token header,
 * HTTP statuses as typed errors, and the Hub's metadata headers read the way huggingface_hub reads
 * them.
 * @internal
 * @module
 */
import { QwenVLError } from '../errors.js';
import { hubFetch } from './proxy.js';

/** What a HEAD on `resolve/<revision>/<file>` says about the file. */
export interface FileMeta {
  /** X-Repo-Commit: the commit the file was resolved at. */
  commit: string | undefined;
  /** X-Linked-Etag (LFS: the sha256) or else ETag (the git blob id), without quotes or W/. */
  etag: string | undefined;
  /** X-Linked-Size or else Content-Length. */
  size: number | undefined;
  /** Where to GET the bytes: the CDN address of a redirect, or the resolve URL itself. */
  location: string;
}

/** How long a metadata request (file list, HEAD) may take: huggingface_hub waits 10 s, this a little longer. */
const METADATA_TIMEOUT_MS = 30_000;

function metadataSignal(signal: AbortSignal | undefined): AbortSignal {
  const timeout = AbortSignal.timeout(METADATA_TIMEOUT_MS);
  return signal ? AbortSignal.any([signal, timeout]) : timeout;
}

export function authHeaders(token: string | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** An ETag as a bare id: no weak prefix, no quotes. */
export function normalizeEtag(v: string | null): string | undefined {
  if (v === null) return undefined;
  const s = v.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
  return s === '' ? undefined : s;
}

function aborted(signal: AbortSignal | undefined, e: unknown): boolean {
  return signal?.aborted === true || (signal === undefined && (e as Error | undefined)?.name === 'AbortError');
}

/** A failed request (no answer at all) as E_ABORTED or E_NETWORK. */
export function requestFailed(e: unknown, what: string, signal?: AbortSignal): QwenVLError {
  if (e instanceof QwenVLError) return e;
  if (aborted(signal, e)) return new QwenVLError('E_ABORTED', `${what}: aborted`, { cause: e });
  if ((e as Error | undefined)?.name === 'TimeoutError') return new QwenVLError('E_NETWORK', `${what}: no answer within ${METADATA_TIMEOUT_MS / 1000} s`, { cause: e });
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  const detail = cause?.code ?? cause?.message ?? (e as Error).message;
  return new QwenVLError('E_NETWORK', `${what}: ${detail}`, { cause: e });
}

/** An unsuccessful answer of the Hub as a typed error; `what` names the repository, revision or file asked for. */
export function statusError(res: Response, what: string, hasToken: boolean): QwenVLError {
  const code = res.headers.get('x-error-code') ?? '';
  const hubMessage = res.headers.get('x-error-message');
  const said = hubMessage ? ` (${hubMessage})` : '';
  if (code === 'RepoNotFound' || code === 'RevisionNotFound' || code === 'EntryNotFound' || res.status === 404) {
    const kind = code === 'RevisionNotFound' ? 'revision' : code === 'EntryNotFound' ? 'file' : code === 'RepoNotFound' ? 'repository' : 'resource';
    const hint = code === 'RepoNotFound' && !hasToken ? '; a private repository needs HF_TOKEN' : '';
    return new QwenVLError('E_NOT_FOUND', `${what}: ${kind} not found on the Hub (HTTP ${res.status})${said}${hint}`);
  }
  if (res.status === 401 || res.status === 403) {
    const hint = hasToken
      ? 'the token was not accepted or has no access (gated models need their terms accepted on the Hub)'
      : 'gated or private: set HF_TOKEN or log in with `hf auth login`';
    return new QwenVLError('E_AUTH', `${what}: HTTP ${res.status}, ${hint}${said}`);
  }
  return new QwenVLError('E_NETWORK', `${what}: the Hub answered HTTP ${res.status}${said}`);
}

/**
 * HEAD of a file's resolve URL without following the redirect to the CDN (its Location is where the
 * bytes are), but following a relative redirect (a renamed repository), as huggingface_hub does.
 */
export async function headFile(url: string, token: string | undefined, what: string, signal?: AbortSignal): Promise<FileMeta> {
  let current = url;
  for (let hops = 0; ; hops++) {
    let res: Response;
    try {
      res = await hubFetch(current, { method: 'HEAD', redirect: 'manual', headers: { ...authHeaders(token), 'accept-encoding': 'identity' }, signal: metadataSignal(signal) });
    } catch (e) {
      throw requestFailed(e, what, signal);
    }
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location !== null) {
      const relativeTarget = !/^[a-z][a-z0-9+.-]*:/i.test(location) && !location.startsWith('//');
      if (relativeTarget && hops < 5) {
        current = new URL(location, current).href;
        continue;
      }
      return meta(res, new URL(location, current).href);
    }
    if (!res.ok) throw statusError(res, what, token !== undefined);
    return meta(res, current);
  }
}

function meta(res: Response, location: string): FileMeta {
  const h = res.headers;
  const sizeText = h.get('x-linked-size') ?? h.get('content-length');
  const size = sizeText !== null && /^\d+$/.test(sizeText) ? Number(sizeText) : undefined;
  return {
    commit: h.get('x-repo-commit') ?? undefined,
    etag: normalizeEtag(h.get('x-linked-etag') ?? h.get('etag')),
    size,
    location,
  };
}

/** GET of JSON from the Hub's API. */
export async function getJson(url: string, token: string | undefined, what: string, signal?: AbortSignal): Promise<unknown> {
  let res: Response;
  try {
    res = await hubFetch(url, { headers: { ...authHeaders(token), accept: 'application/json' }, signal: metadataSignal(signal) });
  } catch (e) {
    throw requestFailed(e, what, signal);
  }
  if (!res.ok) throw statusError(res, what, token !== undefined);
  try {
    return await res.json();
  } catch (e) {
    if (aborted(signal, e)) throw requestFailed(e, what, signal);
    throw new QwenVLError('E_NETWORK', `${what}: the Hub's answer is not JSON`, { cause: e });
  }
}
