/**
 * Where an image or video comes from. A string or URL source (a path, a `file:` URL, a `data:`
 * URL) is resolved under the media policy to a path the decoder may open or to bytes, with its
 * size checked before anything is read or decoded.
 *
 * Under folder rules or `'deny'` a refusal never says whether the file exists and never echoes a
 * path: a server's clients learn nothing about its disk. An admitted file is then opened by its
 * real path (without following a final symlink) and checked to be the file that was admitted;
 * images are read into memory (bounded by the byte limit), videos are handed to FFmpeg by that
 * real path.
 * @module
 */
import { constants } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { inputError } from '../errors.js';
import { filePermitted, type ResolvedMediaPolicy } from './media-policy.js';

/** What a source is read as: images and videos have their own byte limits. @internal */
export type MediaKind = 'image' | 'video';

/** A data: URL's header (media type and parameters) is short; longer means malformed. */
const DATA_HEADER_MAX = 256;
const SHOWN_URL = 64;

function maxBytes(kind: MediaKind, policy: ResolvedMediaPolicy): [number, string] {
  return kind === 'image' ? [policy.maxImageBytes, 'maxImageBytes'] : [policy.maxVideoBytes, 'maxVideoBytes'];
}

/** Throws E_INPUT when `bytes` is over the policy's limit for `kind`. @internal */
export function checkMediaBytes(bytes: number, kind: MediaKind, policy: ResolvedMediaPolicy, what: string, how = ''): void {
  const [max, name] = maxBytes(kind, policy);
  if (bytes > max) {
    throw inputError(`${kind} ${what}: ${bytes} bytes${how} is over the media policy's ${name} of ${max}; refused before decoding`);
  }
}

/**
 * Characters handled per step when decoding a data: URL: a step takes well under the event loop's
 * 50 ms budget, and the loop runs between steps.
 */
const STEP = 1 << 21;
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Strict base64 (standard or URL-safe alphabet, whitespace ignored, padding only at the end):
 * Buffer.from alone skips invalid characters silently, so garbage would pass as data.
 */
async function decodeBase64(payload: string): Promise<Buffer> {
  let whitespace = false;
  for (let at = 0; at < payload.length; at += STEP) {
    const slice = payload.slice(at, at + STEP);
    // One pass for the usual clean slice; a second only when it holds something else.
    if (/[^A-Za-z0-9+/=_-]/.test(slice)) {
      const bad = /[^A-Za-z0-9+/=_\-\s]/.exec(slice);
      if (bad) throw inputError(`image data URI: invalid base64 character at ${at + bad.index}`);
      whitespace = true;
    }
    await nextTurn();
  }
  const text = whitespace ? payload.replace(/\s+/g, '') : payload;
  const pad = text.indexOf('=');
  if (pad >= 0 && (pad < text.length - 2 || /[^=]/.test(text.slice(pad)))) {
    throw inputError(`image data URI: base64 padding '=' inside the data (at ${pad})`);
  }
  const out = Buffer.allocUnsafe(Math.floor((text.length * 3) / 4));
  let n = 0;
  for (let at = 0; at < text.length; at += STEP) {
    // STEP is a multiple of 4: every slice but the last holds whole 4-character groups.
    n += out.write(text.slice(at, at + STEP), n, 'base64');
    if (at + STEP < text.length) await nextTurn();
  }
  return out.subarray(0, n);
}

/** RFC 2397 percent-decoding to bytes (not to UTF-8 text, as decodeURIComponent would). */
async function percentDecode(text: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  const hex = (c: number) => (c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1);
  for (let at = 0; at < text.length; ) {
    let end = Math.min(text.length, at + STEP);
    // Never split an escape or a surrogate pair between steps.
    while (end < text.length && end > at + 2 && (text[end - 1] === '%' || text[end - 2] === '%' || /[\ud800-\udbff]/.test(text[end - 1]))) end--;
    const raw = Buffer.from(text.slice(at, end), 'utf8');
    const out = Buffer.allocUnsafe(raw.length);
    let n = 0;
    for (let i = 0; i < raw.length; i++) {
      if (raw[i] !== 0x25) {
        out[n++] = raw[i];
        continue;
      }
      const hi = i + 2 < raw.length ? hex(raw[i + 1]) : -1;
      const lo = hi >= 0 ? hex(raw[i + 2]) : -1;
      if (lo < 0) throw inputError('image data URI: malformed percent escape (expected %XX)');
      out[n++] = hi * 16 + lo;
      i += 2;
    }
    parts.push(out.subarray(0, n));
    at = end;
    if (at < text.length) await nextTurn();
  }
  return Buffer.concat(parts);
}

/** `data:image/<type>[;params][;base64],<data>`, size-checked from its length before decoding. */
async function dataUrl(url: string, policy: ResolvedMediaPolicy): Promise<Buffer> {
  const comma = url.slice(0, DATA_HEADER_MAX).indexOf(',');
  if (comma < 0) throw inputError('image data URI: expected "data:image/<type>;base64,<data>"');
  const params = url.slice(5, comma).split(';').map((s) => s.trim().toLowerCase());
  const mime = params[0];
  if (!/^image\/[a-z0-9][\w.+-]*$/.test(mime)) {
    throw inputError(`image data URI: media type "${mime}" is not an image type (expected data:image/<type>;base64,...)`);
  }
  const base64 = params.slice(1).includes('base64');
  const length = url.length - comma - 1;
  // Base64 holds 3 bytes per 4 characters; a percent-encoded payload at least 1 per 3.
  const least = base64 ? Math.floor((length * 3) / 4) - 2 : Math.ceil(length / 3);
  checkMediaBytes(least, 'image', policy, 'data URI', ` (from ${length} encoded characters)`);
  const payload = url.slice(comma + 1);
  const bytes = base64 ? await decodeBase64(payload) : await percentDecode(payload);
  checkMediaBytes(bytes.length, 'image', policy, 'data URI');
  if (bytes.length === 0) throw inputError('image data URI: no data');
  return bytes;
}

/** Reads an admitted file through its real path, refusing anything but a regular file. */
async function readConfined(real: string, kind: MediaKind, policy: ResolvedMediaPolicy, refused: () => Error): Promise<string | Buffer> {
  let fh;
  try {
    fh = await open(real, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  } catch {
    throw refused();
  }
  try {
    const info = await fh.stat();
    if (!info.isFile()) throw refused();
    // The file opened must still be the one checked: a folder on the way swapped for a symlink
    // between the check and the open would show here as another real path or another inode.
    let same = false;
    try {
      const now = await stat(real);
      same = (await realpath(real)) === real && now.ino === info.ino && now.dev === info.dev;
    } catch {
      same = false;
    }
    if (!same) throw refused();
    if (info.size === 0) throw inputError(`${kind} file is empty`);
    checkMediaBytes(info.size, kind, policy, 'file');
    if (kind === 'video') return real;
    const buf = Buffer.allocUnsafe(info.size);
    let filled = 0;
    while (filled < info.size) {
      const { bytesRead } = await fh.read(buf, filled, info.size - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buf.subarray(0, filled);
  } finally {
    await fh.close();
  }
}

async function localFile(path: string, kind: MediaKind, policy: ResolvedMediaPolicy): Promise<string | Buffer> {
  if (policy.localFiles === 'deny') {
    throw inputError(`${kind}: local files are not allowed by the media policy (localFiles: 'deny'); pass the bytes instead`);
  }
  if (policy.localFiles !== 'allow') {
    // One message for every refusal, so that it tells nothing about what exists outside.
    const refused = () =>
      inputError(
        `${kind}: local file refused by the media policy (missing, unreadable, not a regular file or outside the allowed folders)`,
      );
    let real: string;
    try {
      real = await realpath(path);
    } catch {
      throw refused();
    }
    if (!filePermitted(policy, real)) throw refused();
    return readConfined(real, kind, policy, refused);
  }
  let info;
  try {
    info = await stat(path);
  } catch {
    throw inputError(`${kind} file not found: "${path}"`);
  }
  if (!info.isFile()) throw inputError(`${kind} "${path}" is not a file`);
  if (info.size === 0) throw inputError(`${kind} file "${path}" is empty`);
  checkMediaBytes(info.size, kind, policy, `"${path}"`);
  return path;
}

/**
 * Resolves a string or URL source under `policy`: bytes for a `data:` URL (images only) or a file
 * read under folder rules, otherwise the path of an admitted file. Throws E_INPUT for remote URLs,
 * malformed URLs, refused or missing files and sources over the byte limit.
 * @internal
 */
export async function resolveMediaSource(input: string | URL, kind: MediaKind, policy: ResolvedMediaPolicy): Promise<string | Buffer> {
  const text = input instanceof URL ? input.href : input;
  if (text.length === 0) throw inputError(`${kind}: the source is an empty string`);
  const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(text.slice(0, 40))?.[1]?.toLowerCase();
  if (scheme === 'data') {
    if (kind === 'video') throw inputError('video data URI: only local files are read; write it to a file or pass its frames');
    return dataUrl(text, policy);
  }
  if (scheme === 'file') {
    if (policy.localFiles === 'deny') return localFile('', kind, policy);
    let path: string;
    try {
      path = fileURLToPath(text);
    } catch (err) {
      throw inputError(`${kind}: not a valid local file URL (${(err as Error).message})`);
    }
    return localFile(path, kind, policy);
  }
  if (scheme !== undefined) {
    // Drive letters (C:\) have one letter; anything longer is a URL scheme, and none is fetched.
    const shown = text.length > SHOWN_URL ? `${text.slice(0, SHOWN_URL)}…` : text;
    throw inputError(
      `${kind} "${shown}": ${scheme}: URLs are not fetched (qwenvl reads only local files and data: URLs); ` +
        (kind === 'image' ? 'download it and pass the bytes' : 'download it first or pass its frames'),
    );
  }
  return localFile(text, kind, policy);
}
