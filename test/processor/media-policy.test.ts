// The media policy at the processor level: which sources may be read (local files allowed,
// denied or confined to folders by real path), how large and how many, all checked before
// anything is read or decoded; and malformed sources get E_INPUT, never a TypeError or URIError.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QwenVLError } from '../../lib/errors.js';
import {
  DEFAULT_MEDIA_POLICY,
  decodeImage,
  parseImageProcessorConfig,
  parseVideoProcessorConfig,
  processImages,
  processVideo,
  type MediaPolicy,
} from '../../lib/processor/index.js';
import { resolveMediaPolicy } from '../../lib/processor/media-policy.js';

async function failure(p: Promise<unknown>): Promise<QwenVLError> {
  try {
    await p;
  } catch (e) {
    expect(e, String(e)).toBeInstanceOf(QwenVLError);
    return e as QwenVLError;
  }
  throw new Error('expected a rejection');
}

async function inputFailure(p: Promise<unknown>, match?: RegExp): Promise<string> {
  const e = await failure(p);
  expect(e.code, e.message).toBe('E_INPUT');
  if (match) expect(e.message).toMatch(match);
  return e.message;
}

let dir: string; // <tmp>/{inside/{a.png, link-out.png -> secret, sub/{b.png, link-in.png -> a.png}}, outside/secret.png}
let inside: string;
let outside: string;
let png: Buffer;
beforeAll(async () => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'qwenvl-media-')));
  inside = join(dir, 'inside');
  outside = join(dir, 'outside');
  mkdirSync(join(inside, 'sub'), { recursive: true });
  mkdirSync(outside);
  png = await sharp({ create: { width: 8, height: 6, channels: 3, background: { r: 10, g: 20, b: 30 } } }).png().toBuffer();
  writeFileSync(join(inside, 'a.png'), png);
  writeFileSync(join(inside, 'sub', 'b.png'), png);
  writeFileSync(join(outside, 'secret.png'), png);
  symlinkSync(join(outside, 'secret.png'), join(inside, 'link-out.png'));
  symlinkSync(join(inside, 'a.png'), join(inside, 'sub', 'link-in.png'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('malformed sources: E_INPUT, never a TypeError or URIError', () => {
  it.each([
    ['a bad percent escape', 'data:image/png,%E0%A4%A'],
    ['a file: URL with a remote host', 'file://remotehost/x'],
    ['an unparsable file: URL', 'file://%zz/x'],
    ['invalid base64', 'data:image/png;base64,iVBOR!!!w0KGgo='],
    ['padding in the middle', 'data:image/png;base64,iVBO=Rw0KGgo'],
    ['a non-image media type', `data:text/plain;base64,${Buffer.from('hi').toString('base64')}`],
    ['no media type', `data:;base64,${Buffer.from('hi').toString('base64')}`],
    ['no comma', 'data:image/png;base64'],
    ['no data', 'data:image/png;base64,'],
    ['an empty string', ''],
    ['an http: URL', 'http://example.com/a.png'],
    ['an ftp: URL', 'ftp://example.com/a.png'],
  ])('%s', async (_, source) => {
    await inputFailure(decodeImage(source));
  });

  it('base64 may be wrapped in whitespace or URL-safe; padding only at the end', async () => {
    const b64 = png.toString('base64');
    const wrapped = b64.replace(/.{1,60}/g, '$&\r\n');
    expect((await decodeImage(`data:image/png;base64,${wrapped}`)).width).toBe(8);
    expect((await decodeImage(`data:image/png;base64,${png.toString('base64url')}`)).width).toBe(8);
    await inputFailure(decodeImage(`data:image/png;base64,${b64.slice(0, 8)}=${b64.slice(8)}`), /padding/);
  });

  it('a large data: URL within the limit decodes in steps, leaving the event loop free', async () => {
    // 48 MiB of text (the PNG followed by filler its decoder ignores): decoded in one go, it would
    // hold the event loop for ~300 ms; in steps of 2 Mi characters the longest gap between timer ticks
    // stays far below (about 40 ms on a loaded 2-core machine).
    const big = Buffer.concat([png, Buffer.alloc(36 * 2 ** 20)]);
    const url = `data:image/png;base64,${big.toString('base64')}`;
    expect(url.indexOf('!')).toBe(-1); // flattens the concatenated string before the timing
    let last = performance.now();
    let longest = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    }, 1);
    try {
      expect((await decodeImage(url)).width).toBe(8);
    } finally {
      clearInterval(timer);
    }
    expect(longest).toBeLessThan(150);
  });

  it('a percent-encoded data: URL is decoded to bytes, not UTF-8 text', async () => {
    const url = `data:image/png,${[...png].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')}`;
    const img = await decodeImage(url);
    expect([img.width, img.height]).toEqual([8, 6]);
  });
});

describe('local files', () => {
  const roots = (): MediaPolicy => ({ localFiles: [inside] });

  it('are read by default (a local program expects paths to work)', async () => {
    expect((await decodeImage(join(outside, 'secret.png'))).width).toBe(8);
    expect(DEFAULT_MEDIA_POLICY.localFiles).toBe('allow');
  });

  it("'deny' refuses paths and file: URLs without echoing them", async () => {
    for (const src of [join(inside, 'a.png'), 'a.png', pathToFileURL(join(inside, 'a.png')).href, 'file://remotehost/x']) {
      const msg = await inputFailure(decodeImage(src, { media: { localFiles: 'deny' } }), /local files are not allowed by the media policy/);
      expect(msg).not.toContain(dir);
      expect(msg).not.toContain('a.png');
    }
  });

  it('folder rules admit files inside, symlinks that stay inside, relative paths', async () => {
    expect((await decodeImage(join(inside, 'a.png'), { media: roots() })).width).toBe(8);
    expect((await decodeImage(join(inside, 'sub', 'link-in.png'), { media: roots() })).width).toBe(8);
    expect((await decodeImage(join(inside, 'sub', '..', 'a.png'), { media: roots() })).width).toBe(8);
    expect((await decodeImage(pathToFileURL(join(inside, 'a.png')), { media: roots() })).width).toBe(8);
    expect((await decodeImage(relative(process.cwd(), join(inside, 'a.png')), { media: roots() })).width).toBe(8);
  });

  it('../ traversal, symlink escape, file: URLs and the root itself are refused', async () => {
    const escapes = [
      join(inside, '..', 'outside', 'secret.png'),
      `${inside}/sub/../../outside/secret.png`,
      join(inside, 'link-out.png'),
      pathToFileURL(join(outside, 'secret.png')).href,
      `file://${inside}/../outside/secret.png`,
      inside,
      join(inside, 'sub'),
    ];
    for (const src of escapes) {
      const msg = await inputFailure(decodeImage(src, { media: roots() }), /refused by the media policy/);
      expect(msg).not.toContain(dir);
    }
  });

  it('a missing file and an existing one outside the folders get the same message', async () => {
    const existing = await inputFailure(decodeImage(join(outside, 'secret.png'), { media: roots() }));
    const missing = await inputFailure(decodeImage(join(outside, 'nope.png'), { media: roots() }));
    const missingInside = await inputFailure(decodeImage(join(inside, 'nope.png'), { media: roots() }));
    const missingDir = await inputFailure(decodeImage('/no/such/dir/x.png', { media: roots() }));
    expect(missing).toBe(existing);
    expect(missingInside).toBe(existing);
    expect(missingDir).toBe(existing);
    expect(existing).not.toMatch(/not found|exist/);
  });

  it('video files go through the same rules, before FFmpeg is looked for', async () => {
    const cfg = parseVideoProcessorConfig({}, 'x', 'qwen3');
    const prev = process.env.QWENVL_FFMPEG;
    process.env.QWENVL_FFMPEG = '/nonexistent/ffmpeg';
    try {
      const a = await inputFailure(processVideo(join(outside, 'secret.png'), cfg, { media: roots() }), /^video: local file refused/);
      const b = await inputFailure(processVideo(join(outside, 'nope.mp4'), cfg, { media: roots() }));
      expect(a).toBe(b);
      expect(a).not.toContain(dir);
      await inputFailure(processVideo(join(inside, 'link-out.png'), cfg, { media: roots() }), /refused by the media policy/);
      await inputFailure(processVideo(pathToFileURL(join(inside, 'a.png')), cfg, { media: { localFiles: 'deny' } }), /not allowed/);
      await inputFailure(processVideo('file://remotehost/v.mp4', cfg), /not a valid local file URL/);
      await inputFailure(processVideo('data:video/mp4;base64,AAAA', cfg), /only local files/);
      // Over the byte limit: refused from the file's size.
      await inputFailure(processVideo(join(inside, 'a.png'), cfg, { media: { maxVideoBytes: 10 } }), /maxVideoBytes of 10/);
    } finally {
      if (prev === undefined) delete process.env.QWENVL_FFMPEG;
      else process.env.QWENVL_FFMPEG = prev;
    }
  });
});

const HAVE_FFMPEG = spawnSync('ffmpeg', ['-version']).status === 0 && spawnSync('ffprobe', ['-version']).status === 0;

describe.skipIf(!HAVE_FFMPEG)('an admitted video file is decoded (skipped without ffmpeg/ffprobe)', () => {
  it('inside the folders, also through a symlink that stays inside', async () => {
    const video = join(inside, 'clip.mkv');
    const r = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=4', '-frames:v', '8', '-c:v', 'ffv1', video]);
    expect(r.status, String(r.stderr)).toBe(0);
    symlinkSync(video, join(inside, 'sub', 'clip-link.mkv'));
    const cfg = parseVideoProcessorConfig({}, 'x', 'qwen2');
    const media: MediaPolicy = { localFiles: [inside] };
    const a = await processVideo(join(inside, 'sub', 'clip-link.mkv'), cfg, { media, nframes: 4 });
    expect(a.gridThw[0]).toBe(2);
    const msg = await inputFailure(processVideo(video, cfg, { media: { localFiles: [outside] }, nframes: 4 }), /refused by the media policy/);
    expect(msg).not.toContain(dir);
  });
});

describe('sizes and counts, checked before decoding', () => {
  it('maxImageBytes: a file, a Buffer and a data: URL over it are refused', async () => {
    const media = { maxImageBytes: png.length - 1 };
    await inputFailure(decodeImage(join(inside, 'a.png'), { media }), /maxImageBytes/);
    await inputFailure(decodeImage(join(inside, 'a.png'), { media: { ...media, localFiles: [inside] } }), /maxImageBytes/);
    await inputFailure(decodeImage(png, { media }), /maxImageBytes/);
    await inputFailure(decodeImage(`data:image/png;base64,${png.toString('base64')}`, { media }), /maxImageBytes/);
    expect((await decodeImage(png, { media: { maxImageBytes: png.length } })).width).toBe(8);
  });

  it('a data: URL over the default limit is refused from its length, without decoding it', async () => {
    // 96 MiB of text: 72 MiB once decoded, over the default 64 MiB. The payload is not even valid
    // base64, so any decoding or validation before the size check would fail differently.
    const url = `data:image/png;base64,${'A'.repeat(96 * 2 ** 20 - 1)}!`;
    expect(url.indexOf('!')).toBe(url.length - 1); // flattens the concatenated string outside the timing
    const t0 = performance.now();
    await inputFailure(decodeImage(url), /maxImageBytes of 67108864; refused before decoding/);
    expect(performance.now() - t0).toBeLessThan(50);
  });

  it('5000 tiny images are refused by count before any is read or decoded', async () => {
    // Undecodable bytes and missing paths: had any been touched, the error would say so.
    const images = Array.from({ length: 5000 }, (_, i) => (i % 2 ? Buffer.from('not an image') : `/nonexistent/${i}.png`));
    const config = parseImageProcessorConfig({ min_pixels: 3136, max_pixels: 12845056 });
    const t0 = performance.now();
    await inputFailure(processImages(images, config), /5000 images is over the media policy's maxImages of 1024; refused before decoding/);
    await inputFailure(processImages(images.slice(0, 3), config, { media: { maxImages: 2 } }), /maxImages of 2/);
    expect(performance.now() - t0).toBeLessThan(100);
  });

  it('maxInputPixels in the policy is checked from the header', async () => {
    await inputFailure(decodeImage(png, { media: { maxInputPixels: 47 } }), /48 pixels exceeds the limit of 47.*refused before decoding/);
    expect((await decodeImage(png, { media: { maxInputPixels: 48 } })).width).toBe(8);
  });
});

describe('resolving and narrowing policies', () => {
  it('validates every field (E_INPUT naming it)', async () => {
    await inputFailure(resolveMediaPolicy({ maxImages: -1 }), /media\.maxImages must be an integer >= 0/);
    await inputFailure(resolveMediaPolicy({ maxImageBytes: 0 }), /media\.maxImageBytes must be an integer >= 1/);
    await inputFailure(resolveMediaPolicy({ maxVideos: 1.5 }), /maxVideos/);
    await inputFailure(resolveMediaPolicy({ localFiles: 'sometimes' as never }), /localFiles must be 'allow', 'deny' or a list/);
    await inputFailure(resolveMediaPolicy({ localFiles: [] }), /empty folder list/);
    await inputFailure(resolveMediaPolicy({ localFiles: [join(dir, 'missing')] }), /is not an existing folder/);
    await inputFailure(resolveMediaPolicy({ localFiles: [join(inside, 'a.png')] }), /is not an existing folder/);
    await inputFailure(resolveMediaPolicy({ maxImage: 3 } as never), /unknown option 'maxImage'/);
    await inputFailure(resolveMediaPolicy('deny' as never), /media must be an object/);
    expect((await resolveMediaPolicy({ maxVideoBytes: Infinity, maxImages: 0 })).maxImages).toBe(0);
  });

  it('a request policy only narrows the base: deny wins, smaller limits win, both folder rules apply', async () => {
    const base = await resolveMediaPolicy({ localFiles: [inside], maxImages: 4, maxImageBytes: 1000 });
    const wider = await resolveMediaPolicy({ localFiles: 'allow', maxImages: 100, maxImageBytes: 10 ** 9 }, base);
    expect(wider.maxImages).toBe(4);
    expect(wider.maxImageBytes).toBe(1000);
    await inputFailure(decodeImage(join(outside, 'secret.png'), { media: wider }), /refused by the media policy/);
    expect((await decodeImage(join(inside, 'a.png'), { media: wider })).width).toBe(8);

    // What a request leaves out stays as the base has it, even where the base is above the defaults.
    const generous = await resolveMediaPolicy({ maxImageBytes: 2 ** 30, maxImages: 5000 });
    const fewer = await resolveMediaPolicy({ maxImages: 3 }, generous);
    expect([fewer.maxImages, fewer.maxImageBytes, fewer.localFiles]).toEqual([3, 2 ** 30, 'allow']);

    const denied = await resolveMediaPolicy({ localFiles: 'deny' }, base);
    await inputFailure(decodeImage(join(inside, 'a.png'), { media: denied }), /not allowed/);
    const reopened = await resolveMediaPolicy({ localFiles: 'allow' }, await resolveMediaPolicy({ localFiles: 'deny' }));
    expect(reopened.localFiles).toBe('deny');

    // Folder rules intersect: the request's folder `sub` is inside the model's; `outside` is not.
    const sub = await resolveMediaPolicy({ localFiles: [join(inside, 'sub')] }, base);
    await inputFailure(decodeImage(join(inside, 'a.png'), { media: sub }), /refused/);
    expect((await decodeImage(join(inside, 'sub', 'b.png'), { media: sub })).width).toBe(8);
    await inputFailure(decodeImage(join(inside, 'sub', 'link-in.png'), { media: sub }), /refused/);
    const elsewhere = await resolveMediaPolicy({ localFiles: [outside] }, base);
    await inputFailure(decodeImage(join(outside, 'secret.png'), { media: elsewhere }), /refused/);
    await inputFailure(decodeImage(join(inside, 'a.png'), { media: elsewhere }), /refused/);
  });
});
