/**
 * Where the images and videos of an OpenAI request may come from: a pluggable policy that turns
 * each `image_url.url` / `video_url.url` into a source the library decodes (a `data:` URL, bytes,
 * or a file path), before anything is decoded.
 *
 * - `data:` URLs are always taken. Images pass to the library as they are (its media policy checks
 *   their size from their length before decoding); videos (`data:video/...;base64,`) are written to
 *   a temporary file of the request, since FFmpeg reads files.
 * - `http:` / `https:` only when `remote` is set, with a byte limit (checked from Content-Length
 *   and again while reading) and a time limit for the whole download; images are read into memory,
 *   videos into a temporary file. Redirects are followed (at most 5). The operator who turns this
 *   on lets clients make the server fetch URLs of their choosing, internal addresses included.
 * - Local paths and `file:` URLs only under `localFiles`: `'deny'` (the default), `'allow'` (a
 *   local program, e.g. the batch CLI), or folders the file's real path must lie within (the
 *   library checks them again when it opens the file, and never echoes a refused path). Relative
 *   paths resolve against `baseDir`; without one they are refused.
 *
 * One {@link MediaSession} per request holds its temporary files; `close()` deletes them.
 * @internal
 * @module
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MediaPolicy } from '../processor/media-policy.js';
import { badRequest, OpenAIError } from './errors.js';

/** What a media URL is read as. @internal */
export type MediaKind = 'image' | 'video';

/** Limits of http(s) fetching. @internal */
export interface RemoteMediaOptions {
  /** Most bytes of one fetched image or video. */
  maxBytes: number;
  /** Most milliseconds one download may take, connection included. */
  timeoutMs: number;
}

/** The policy of a {@link MediaResolver}. @internal */
export interface MediaResolverOptions {
  /** Local paths and `file:` URLs: `'deny'` (default), `'allow'`, or folders a file must lie within. */
  localFiles?: 'deny' | 'allow' | readonly string[];
  /** Folder relative paths resolve against; without it a relative path is refused. */
  baseDir?: string;
  /** http(s) fetching; off when absent. */
  remote?: RemoteMediaOptions;
  /** Most decoded bytes of a video `data:` URL. Default 256 MiB. */
  maxVideoDataBytes?: number;
  /** Where per-request temporary folders go. Default: the OS temporary folder. */
  tempDir?: string;
}

/** One request's media: resolves its URLs and owns its temporary files. @internal */
export interface MediaSession {
  /**
   * The source the library reads for `url`: the `data:` URL itself (images), bytes (fetched
   * images) or a file path. `param` names the request field in errors (an {@link OpenAIError}, 400).
   */
  resolve(url: string, kind: MediaKind, param: string): Promise<string | Buffer>;
  /**
   * The request's library media policy (pass it as the `media` option of chat/stream): it admits
   * exactly the files this session may hand over, so the library checks them a second time.
   */
  media(): MediaPolicy;
  /** Deletes the session's temporary files. Safe to call more than once. */
  close(): Promise<void>;
}

/** Makes {@link MediaSession}s under one policy. @internal */
export interface MediaResolver {
  readonly options: Readonly<MediaResolverOptions>;
  /** A session for one request; `signal` cancels its downloads. */
  session(signal?: AbortSignal): MediaSession;
}

const DEFAULT_MAX_VIDEO_DATA = 256 * 2 ** 20;
const MAX_REDIRECTS = 5;
const DATA_HEADER_MAX = 256;
const SHOWN = 64;

const shown = (url: string) => (url.length > SHOWN ? `${url.slice(0, SHOWN)}…` : url);

/** Whether `real` lies inside `folder` (both real paths; the folder itself is not inside). */
function inside(folder: string, real: string): boolean {
  const rel = relative(folder, real);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/** Creates a resolver; the folders of `localFiles` are resolved to real paths on first use. @internal */
export function createMediaResolver(options: MediaResolverOptions = {}): MediaResolver {
  const opts = Object.freeze({ ...options });
  const local = opts.localFiles ?? 'deny';
  if (local !== 'deny' && local !== 'allow' && (!Array.isArray(local) || local.length === 0)) {
    throw new TypeError("localFiles must be 'deny', 'allow' or a non-empty list of folders");
  }
  let roots: Promise<string[]> | undefined;
  const realRoots = () => (roots ??= Promise.all((local as string[]).map((r) => realpath(r))));
  const maxVideoData = opts.maxVideoDataBytes ?? DEFAULT_MAX_VIDEO_DATA;
  return {
    options: opts,
    session(signal) {
      let temp: Promise<string> | undefined;
      let tempPath: string | undefined;
      let closed = false;
      let counter = 0;
      const tempFile = async (ext: string) => {
        if (closed) throw new OpenAIError(499, 'the request was cancelled', 'invalid_request_error', null, 'cancelled');
        temp ??= mkdtemp(join(opts.tempDir ?? tmpdir(), 'qwenvl-media-')).then((d) => (tempPath = d));
        return join(await temp, `${counter++}${ext}`);
      };

      async function localPath(text: string, kind: MediaKind, param: string): Promise<string> {
        if (local === 'deny') throw badRequest(param, `local files are not accepted by this server (send a data: URL${opts.remote ? ' or an http(s) URL' : ''})`, 'local_files_refused');
        let path: string;
        if (/^file:/i.test(text)) {
          try {
            path = fileURLToPath(text);
          } catch (e) {
            throw badRequest(param, `not a valid file: URL (${(e as Error).message})`);
          }
        } else path = text;
        if (!isAbsolute(path)) {
          if (opts.baseDir === undefined) throw badRequest(param, `a relative ${kind} path needs a base folder; give an absolute path`);
          path = resolve(opts.baseDir, path);
        }
        if (local === 'allow') return path;
        // The same answer for missing and outside files: clients learn nothing about the disk.
        const refused = () => badRequest(param, `local ${kind} refused (missing, unreadable or outside the allowed folders)`, 'local_files_refused');
        let real: string;
        try {
          real = await realpath(path);
        } catch {
          throw refused();
        }
        if (!(await realRoots()).some((r) => inside(r, real))) throw refused();
        return real;
      }

      async function dataVideo(url: string, param: string): Promise<string> {
        const comma = url.slice(0, DATA_HEADER_MAX).indexOf(',');
        if (comma < 0) throw badRequest(param, 'expected "data:video/<type>;base64,<data>"');
        const params = url.slice(5, comma).split(';').map((s) => s.trim().toLowerCase());
        if (!/^video\/[a-z0-9][\w.+-]*$/.test(params[0])) throw badRequest(param, `media type "${params[0]}" is not a video type (expected data:video/<type>;base64,...)`);
        if (!params.slice(1).includes('base64')) throw badRequest(param, 'a video data: URL must be base64');
        const payload = url.slice(comma + 1);
        if (Math.floor((payload.length * 3) / 4) - 2 > maxVideoData) {
          throw new OpenAIError(413, `${param}: video data URL over ${maxVideoData} bytes`, 'invalid_request_error', param, 'media_too_large');
        }
        if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(payload)) throw badRequest(param, 'invalid base64 in the video data: URL');
        const bytes = Buffer.from(payload, 'base64');
        if (bytes.length === 0) throw badRequest(param, 'the video data: URL holds no data');
        const ext = `.${params[0].slice(6).replace(/[^a-z0-9]/g, '') || 'bin'}`;
        const file = await tempFile(ext);
        await writeFile(file, bytes, { mode: 0o600 });
        return file;
      }

      async function fetchRemote(url: string, kind: MediaKind, param: string): Promise<string | Buffer> {
        const remote = opts.remote;
        if (!remote) throw badRequest(param, `${shown(url)}: this server does not fetch http(s) URLs (send a data: URL)`, 'remote_media_disabled');
        const signals = [AbortSignal.timeout(remote.timeoutMs), ...(signal ? [signal] : [])];
        const fetchSignal = AbortSignal.any(signals);
        const failed = (why: string) => badRequest(param, `fetching ${shown(url)} failed: ${why}`, 'media_fetch_failed');
        let res: Response;
        let at = url;
        try {
          for (let hop = 0; ; hop++) {
            res = await fetch(at, { signal: fetchSignal, redirect: 'manual' });
            const next = res.headers.get('location');
            if (res.status < 300 || res.status >= 400 || !next) break;
            await res.body?.cancel();
            if (hop >= MAX_REDIRECTS) throw failed(`more than ${MAX_REDIRECTS} redirects`);
            at = new URL(next, at).href;
            if (!/^https?:/i.test(at)) throw failed('redirected to a non-http(s) URL');
          }
        } catch (e) {
          if (e instanceof OpenAIError) throw e;
          throw failed(fetchSignal.aborted ? `no answer within ${remote.timeoutMs} ms` : (e as Error).message);
        }
        if (!res.ok) {
          await res.body?.cancel();
          throw failed(`HTTP ${res.status}`);
        }
        const tooLarge = () => new OpenAIError(413, `${param}: ${kind} at ${shown(url)} is over ${remote.maxBytes} bytes`, 'invalid_request_error', param, 'media_too_large');
        const length = Number(res.headers.get('content-length'));
        if (Number.isFinite(length) && length > remote.maxBytes) {
          await res.body?.cancel();
          throw tooLarge();
        }
        const chunks: Buffer[] = [];
        let total = 0;
        try {
          for await (const chunk of res.body ?? []) {
            total += chunk.length;
            if (total > remote.maxBytes) throw tooLarge();
            chunks.push(Buffer.from(chunk));
          }
        } catch (e) {
          if (e instanceof OpenAIError) throw e;
          throw failed(fetchSignal.aborted ? `no answer within ${remote.timeoutMs} ms` : (e as Error).message);
        }
        const bytes = Buffer.concat(chunks);
        if (bytes.length === 0) throw failed('empty body');
        if (kind === 'image') return bytes;
        const file = await tempFile('.video');
        await new Promise<void>((done, fail) => {
          const out = createWriteStream(file, { mode: 0o600 });
          out.on('error', fail);
          out.end(bytes, () => done());
        });
        return file;
      }

      return {
        async resolve(url, kind, param) {
          if (typeof url !== 'string' || url.length === 0) throw badRequest(param, 'expected a non-empty URL string');
          const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(url.slice(0, 40))?.[1]?.toLowerCase();
          if (scheme === 'data') return kind === 'image' ? url : dataVideo(url, param);
          if (scheme === 'http' || scheme === 'https') return fetchRemote(url, kind, param);
          if (scheme === 'file' || scheme === undefined) return localPath(url, kind, param);
          throw badRequest(param, `${shown(url)}: unsupported URL scheme "${scheme}:" (expected data:, http(s): or a path)`);
        },
        media() {
          if (local === 'allow') return {};
          const folders = [...(local === 'deny' ? [] : (local as string[]))];
          // Only paths this session produced or admitted reach the library; temp files live in its folder.
          if (tempPath !== undefined) folders.push(tempPath);
          return { localFiles: folders.length > 0 ? folders : 'deny' };
        },
        async close() {
          closed = true;
          if (temp === undefined) return;
          const dir = await temp.catch(() => undefined);
          if (dir) await rm(dir, { recursive: true, force: true });
        },
      };
    },
  };
}
