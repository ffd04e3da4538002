import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { QwenVLError } from '../../lib/errors.js';
import { native } from '../../lib/native/binding.js';
import { loadImageProcessorConfig, parseImageProcessorConfig } from '../../lib/processor/config.js';
import { decodeImage, patchifyFrames, processImages, resizeRgb } from '../../lib/processor/image.js';
import { fixtureCaseRefs } from '../helpers/fixtures.js';
import { readSafetensors } from '../helpers/read-safetensors.js';

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e instanceof QwenVLError ? e.code : `not a QwenVLError: ${String(e)}`;
  }
  return 'resolved';
}

function maxAbsDiff(a: Float32Array, b: number[]): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// ---------------------------------------------------------------------------------------------
// Reference fixtures: pixel_values / image_grid_thw of every case with images.

interface Case {
  family: string;
  dir: string;
  name: string;
  images: string[];
  videos: { frames: string[]; fps: number }[];
}

function fixtureCases(): Case[] {
  return fixtureCaseRefs().map(({ family, name, root, dir }) => {
    const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
    return { family, dir: root, name, images: meta.images ?? [], videos: meta.videos ?? [] };
  });
}

const cases = fixtureCases();
const imageCases = cases.filter((c) => c.images.length > 0);
const videoCases = cases.filter((c) => c.videos.length > 0);
const report: string[] = [];

describe('fixtures: pixel_values equal transformers', () => {
  afterAll(() => {
    if (report.length) console.log(`max |pixel_values - reference|:\n  ${report.join('\n  ')}`);
  });

  it('has image cases', () => expect(imageCases.length).toBeGreaterThan(0));

  it.each(imageCases.map((c) => [`${c.family}/${c.name}`, c] as const))('%s', async (_label, c) => {
    const config = await loadImageProcessorConfig(join(c.dir, 'checkpoint'));
    const got = await processImages(
      c.images.map((p) => join(c.dir, p)),
      config,
    );
    const ref = readSafetensors(join(c.dir, 'cases', c.name, 'tensors.safetensors'), ['pixel_values', 'image_grid_thw']);
    const pv = ref.get('pixel_values')!;
    const grid = ref.get('image_grid_thw')!;
    expect(got.shape).toEqual(pv.shape);
    const gridRows: number[][] = [];
    for (let i = 0; i < grid.shape[0]; i++) gridRows.push(grid.data.slice(i * 3, i * 3 + 3));
    expect(got.imageGridThw).toEqual(gridRows);
    const err = maxAbsDiff(got.pixelValues, pv.data);
    report.push(`${c.family}/${c.name} (${config.flavor}): ${err}`);
    expect(err).toBeLessThanOrEqual(1e-6);
  });

  it.each(videoCases.map((c) => [`${c.family}/${c.name}`, c] as const))('%s video frames through patchify', async (_label, c) => {
    // The resize of these frames is an identity (the sizes are already multiples of 32), so the
    // video processor reduces to patchify with the video preprocessor's settings.
    const cfgPath = join(c.dir, 'checkpoint', 'video_preprocessor_config.json');
    const config = parseImageProcessorConfig(JSON.parse(readFileSync(cfgPath, 'utf8')), cfgPath);
    config.flavor = 'fast';
    const frames = await Promise.all(c.videos[0].frames.map((p) => decodeImage(join(c.dir, p))));
    const { width, height } = frames[0];
    const got = await patchifyFrames(
      frames.map((f) => f.data),
      width,
      height,
      config,
    );
    const ref = readSafetensors(join(c.dir, 'cases', c.name, 'tensors.safetensors'), [
      'pixel_values_videos',
      'video_grid_thw',
    ]);
    expect(got.shape).toEqual(ref.get('pixel_values_videos')!.shape);
    expect(got.gridThw).toEqual(ref.get('video_grid_thw')!.data);
    const err = maxAbsDiff(got.pixelValues, ref.get('pixel_values_videos')!.data);
    report.push(`${c.family}/${c.name} video (patchify only): ${err}`);
    expect(err).toBeLessThanOrEqual(1e-6);
  });

  it('the slow and fast orders really differ on Qwen3-VL (the flavor matters)', async () => {
    const c = imageCases.find((x) => x.family === 'qwen3-vl');
    if (!c) return;
    const config = await loadImageProcessorConfig(join(c.dir, 'checkpoint'));
    const slow = await processImages([join(c.dir, c.images[0])], config, { flavor: 'slow' });
    const ref = readSafetensors(join(c.dir, 'cases', c.name, 'tensors.safetensors'), ['pixel_values']);
    expect(maxAbsDiff(slow.pixelValues, ref.get('pixel_values')!.data)).toBeGreaterThan(1e-3);
  });
});

// ---------------------------------------------------------------------------------------------
// The resampler against PIL (and torch) outputs committed as test data.

interface Expected {
  cases: {
    width: number;
    height: number;
    outWidth: number;
    outHeight: number;
    seed: number;
    pillow: string;
    torchDiffs: [number, number][];
  }[];
}

function lcgBytes(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = BigInt(seed);
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245n + 12345n) % 2147483648n;
    out[i] = Number((x >> 16n) & 255n);
  }
  return out;
}

describe('resizeBicubic', () => {
  const expected = JSON.parse(
    readFileSync(new URL('./fixtures/bicubic_expected.json', import.meta.url), 'utf8'),
  ) as Expected;

  it.each(expected.cases.map((c) => [`${c.width}x${c.height} -> ${c.outWidth}x${c.outHeight}`, c] as const))(
    '%s equals PIL and torch bit for bit',
    async (_label, c) => {
      const src = lcgBytes(c.seed, c.width * c.height * 3);
      const pil = Buffer.from(c.pillow, 'hex');
      const gotPil = await native.resizeBicubic(src, c.width, c.height, c.outWidth, c.outHeight, 'pillow');
      expect(Buffer.from(gotPil).equals(pil)).toBe(true);
      const torch = Uint8Array.from(pil);
      for (const [i, v] of c.torchDiffs) torch[i] = v;
      const gotTorch = await native.resizeBicubic(src, c.width, c.height, c.outWidth, c.outHeight, 'torch');
      expect(Buffer.from(gotTorch).equals(Buffer.from(torch))).toBe(true);
    },
  );

  it('keeps random images in range, constant images constant, and identity exact', async () => {
    const src = lcgBytes(99, 57 * 43 * 3);
    const same = await native.resizeBicubic(src, 57, 43, 57, 43);
    expect(Buffer.from(same).equals(Buffer.from(src))).toBe(true);
    const flat = new Uint8Array(57 * 43 * 3).fill(173);
    for (const [w, h] of [
      [20, 90],
      [200, 11],
      [1, 1],
    ]) {
      const out = await native.resizeBicubic(flat, 57, 43, w, h, 'torch');
      expect(out.length).toBe(w * h * 3);
      expect(out.every((v) => v === 173)).toBe(true);
    }
  });

  it('validates its arguments (E_INPUT)', async () => {
    const px = new Uint8Array(4 * 3 * 3);
    expect(await codeOf(() => native.resizeBicubic(px, 4, 3, 2, 2))).toBe('resolved');
    expect(await codeOf(() => native.resizeBicubic(px, 4, 4, 2, 2))).toBe('E_INPUT'); // length mismatch
    expect(await codeOf(() => native.resizeBicubic(px, 0, 3, 2, 2))).toBe('E_INPUT');
    expect(await codeOf(() => native.resizeBicubic(px, 4, 3, 2, -1))).toBe('E_INPUT');
    expect(await codeOf(() => native.resizeBicubic(px, 4, 3, 2.5, 2))).toBe('E_INPUT');
    expect(await codeOf(() => native.resizeBicubic(new Float32Array(36) as never, 4, 3, 2, 2))).toBe('E_INPUT');
    expect(await codeOf(() => native.resizeBicubic(px, 4, 3, 2, 2, 'lanczos' as never))).toBe('E_INPUT');
    expect(await codeOf(() => native.resizeBicubic(px, 4, 3, 1 << 25, 2))).toBe('E_INPUT');
  });
});

describe('patchify', () => {
  const config = parseImageProcessorConfig({ patch_size: 2, merge_size: 2, temporal_patch_size: 2 });

  it('orders rows (t, h-block, w-block, merge row, merge col) and columns (c, t, py, px)', async () => {
    // 8x4 image whose red channel encodes the pixel index: check a few positions by hand.
    const w = 8, h = 4;
    const rgb = new Uint8Array(w * h * 3);
    for (let i = 0; i < w * h; i++) rgb[i * 3] = i;
    const cfg = { ...config, doNormalize: false, doRescale: false };
    const { pixelValues, shape, gridThw } = await patchifyFrames([rgb], w, h, cfg);
    expect(gridThw).toEqual([1, 2, 4]);
    expect(shape).toEqual([8, 24]);
    const red = (row: number, t: number, py: number, px: number) => pixelValues[row * 24 + (0 * 2 + t) * 4 + py * 2 + px];
    // row 1: block (0,0), merge (0,1) -> patch at y 0, x 2
    expect(red(1, 0, 0, 0)).toBe(2);
    // row 2: merge (1,0) -> patch at y 2, x 0; py 1 px 1 -> pixel (3,1)
    expect(red(2, 1, 1, 1)).toBe(3 * w + 1);
    // row 5: block (0,1), merge (0,1) -> patch at y 0, x 6
    expect(red(5, 0, 1, 0)).toBe(1 * w + 6);
    // the image is repeated in time; green and blue are zero
    expect(red(7, 0, 1, 1)).toBe(red(7, 1, 1, 1));
    expect(pixelValues[7 * 24 + 8]).toBe(0);
  });

  it('pads frames by repeating the last one', async () => {
    const a = new Uint8Array(4 * 4 * 3).fill(10), b = new Uint8Array(4 * 4 * 3).fill(20), c = new Uint8Array(4 * 4 * 3).fill(30);
    const cfg = { ...config, doNormalize: false, doRescale: false };
    const { gridThw, pixelValues } = await patchifyFrames([a, b, c], 4, 4, cfg);
    expect(gridThw).toEqual([2, 2, 2]);
    // second temporal group, row 4, channel 0: t=0 is frame c, t=1 the repeat of c
    expect(pixelValues[4 * 24 + 0]).toBe(30);
    expect(pixelValues[4 * 24 + 4]).toBe(30);
    expect(pixelValues[0]).toBe(10);
    expect(pixelValues[4]).toBe(20);
  });

  it('normalises in the slow and fast float orders', async () => {
    const rgb = new Uint8Array(4 * 4 * 3);
    for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 37) % 256;
    const cfg = { ...config, imageMean: [0.48145466, 0.4578275, 0.40821073] as [number, number, number] };
    const slow = await patchifyFrames([rgb], 4, 4, cfg, 'slow');
    const fast = await patchifyFrames([rgb], 4, 4, cfg, 'fast');
    const f = Math.fround;
    // first value of row 0: channel 0, pixel 0 (value 0)
    const v = rgb[0];
    expect(slow.pixelValues[0]).toBe(f(f(f(v * (1 / 255)) - f(0.48145466)) / f(0.26862954)));
    expect(fast.pixelValues[0]).toBe(f(f(v - f(f(0.48145466) * 255)) / f(f(0.26862954) * 255)));
  });

  it('validates sizes (E_INPUT)', async () => {
    const rgb = new Uint8Array(4 * 4 * 3);
    expect(await codeOf(() => patchifyFrames([rgb], 4, 4, config))).toBe('resolved');
    expect(await codeOf(() => patchifyFrames([rgb], 6, 2, config))).toBe('E_INPUT'); // not multiples of 4
    expect(await codeOf(() => patchifyFrames([rgb.subarray(1)], 4, 4, config))).toBe('E_INPUT');
    expect(await codeOf(() => patchifyFrames([], 4, 4, config))).toBe('E_INPUT');
    expect(await codeOf(() => patchifyFrames([rgb], 4, 4, { ...config, imageStd: [1, 0, 1] }))).toBe('E_INPUT');
  });
});

// ---------------------------------------------------------------------------------------------
// Decoding.

function rgbaPixels(w: number, h: number): Uint8Array {
  const px = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    px[i * 4] = (i * 40) % 256;
    px[i * 4 + 1] = (i * 90 + 7) % 256;
    px[i * 4 + 2] = (255 - i * 13) & 255;
    px[i * 4 + 3] = i % 3 === 0 ? 0 : i % 3 === 1 ? 128 : 255;
  }
  return px;
}

function rgbOf(rgba: Uint8Array): Uint8Array {
  const out = new Uint8Array((rgba.length / 4) * 3);
  for (let i = 0; i < rgba.length / 4; i++) out.set(rgba.subarray(i * 4, i * 4 + 3), i * 3);
  return out;
}

/** A real 4x4 PNG whose header is patched to claim w x h (its pixel data stays 4x4). */
async function liarPng(w: number, h: number): Promise<Buffer> {
  const png = Buffer.from(await sharp(Buffer.alloc(4 * 4 * 3, 100), { raw: { width: 4, height: 4, channels: 3 } }).png().toBuffer());
  png.writeUInt32BE(w, 16); // IHDR width
  png.writeUInt32BE(h, 20); // IHDR height
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29); // IHDR CRC (type + 13 data bytes)
  return png;
}

describe('decodeImage', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'qwenvl-img-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const W = 6, H = 4;
  const rgba = rgbaPixels(W, H);
  const raw = { raw: { width: W, height: H, channels: 4 as const } };

  it('drops alpha of an RGBA PNG like PIL convert("RGB"), or composites on white', async () => {
    const png = await sharp(rgba, raw).png().toBuffer();
    const img = await decodeImage(png);
    expect([img.width, img.height]).toEqual([W, H]);
    expect(Buffer.from(img.data).equals(Buffer.from(rgbOf(rgba)))).toBe(true);
    const white = await decodeImage(png, { alpha: 'white' });
    // alpha 0 -> white, alpha 255 -> the colour itself
    expect(Array.from(white.data.subarray(0, 3))).toEqual([255, 255, 255]);
    expect(Array.from(white.data.subarray(2 * 3, 2 * 3 + 3))).toEqual(Array.from(rgba.subarray(8, 11)));
  });

  it('applies the EXIF orientation (unless told not to)', async () => {
    const jpeg = await sharp(rgbOf(rgba), { raw: { width: W, height: H, channels: 3 } })
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const turned = await decodeImage(jpeg);
    expect([turned.width, turned.height]).toEqual([H, W]);
    const stored = await decodeImage(jpeg, { autoOrient: false });
    expect([stored.width, stored.height]).toEqual([W, H]);
  });

  it.each(['webp', 'tiff', 'gif', 'avif'] as const)('decodes %s', async (format) => {
    // Flat colour blocks survive every codec (GIF palettes, AVIF chroma) without drift.
    const w = 16, h = 16;
    const rgb = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) rgb.set(x < 8 ? (y < 8 ? [200, 30, 30] : [30, 200, 30]) : [30, 30, 200], (y * w + x) * 3);
    let p = sharp(rgb, { raw: { width: w, height: h, channels: 3 } });
    p = format === 'webp' ? p.webp({ lossless: true }) : format === 'tiff' ? p.tiff({ compression: 'lzw' }) : format === 'gif' ? p.gif() : p.avif({ quality: 90 });
    const bytes = await p.toBuffer();
    const file = join(dir, `img.${format}`);
    writeFileSync(file, bytes);
    const img = await decodeImage(file);
    expect([img.width, img.height]).toEqual([w, h]);
    let err = 0;
    for (let i = 0; i < rgb.length; i++) err = Math.max(err, Math.abs(img.data[i] - rgb[i]));
    expect(err).toBeLessThanOrEqual(format === 'avif' ? 12 : 0);
  });

  it('takes the first frame of an animated GIF', async () => {
    const frame = (v: number) => new Uint8Array(8 * 8 * 3).fill(v);
    const anim = await sharp(Buffer.concat([frame(0), frame(255)]), { raw: { width: 8, height: 16, channels: 3, pageHeight: 8 } } as never)
      .gif()
      .toBuffer();
    const img = await decodeImage(anim);
    expect([img.width, img.height]).toEqual([8, 8]);
    expect(img.data.every((v) => v === 0)).toBe(true);
  });

  it('replicates greyscale to RGB', async () => {
    const grey = new Uint8Array(W * H).map((_, i) => i * 10);
    const png = await sharp(grey, { raw: { width: W, height: H, channels: 1 } }).png().toBuffer();
    const img = await decodeImage(png);
    for (let i = 0; i < W * H; i++) expect(Array.from(img.data.subarray(i * 3, i * 3 + 3))).toEqual([i * 10, i * 10, i * 10]);
  });

  it('accepts paths, file URLs, data URIs, ArrayBuffers, sharp instances and raw pixels alike', async () => {
    const png = await sharp(rgba, raw).png().toBuffer();
    const file = join(dir, 'a.png');
    writeFileSync(file, png);
    const want = Buffer.from(rgbOf(rgba));
    const inputs = [
      file,
      new URL(`file://${file}`),
      `data:image/png;base64,${png.toString('base64')}`,
      png.buffer.slice(png.byteOffset, png.byteOffset + png.byteLength),
      new Uint8Array(png),
      sharp(png),
      { data: rgba, width: W, height: H, channels: 4 as const },
      { data: rgbOf(rgba), width: W, height: H },
    ];
    for (const input of inputs) {
      const img = await decodeImage(input);
      expect(Buffer.from(img.data).equals(want)).toBe(true);
    }
    // a sharp instance is cloned, not consumed
    const s = sharp(png);
    await decodeImage(s);
    expect((await s.metadata()).width).toBe(W);
  });

  it('refuses missing, empty, undecodable and malformed inputs with E_INPUT', async () => {
    const empty = join(dir, 'empty.png');
    writeFileSync(empty, Buffer.alloc(0));
    expect(await codeOf(decodeImage(join(dir, 'nope.png')))).toBe('E_INPUT');
    expect(await codeOf(decodeImage(empty))).toBe('E_INPUT');
    expect(await codeOf(decodeImage(dir))).toBe('E_INPUT');
    expect(await codeOf(decodeImage(Buffer.alloc(0)))).toBe('E_INPUT');
    expect(await codeOf(decodeImage(Buffer.from('definitely not an image')))).toBe('E_INPUT');
    expect(await codeOf(decodeImage('http://example.com/a.png'))).toBe('E_INPUT');
    expect(await codeOf(decodeImage({ data: new Uint8Array(5), width: 2, height: 2 }))).toBe('E_INPUT');
    expect(await codeOf(decodeImage({ data: new Uint8Array(0), width: 0, height: 0 }))).toBe('E_INPUT');
    await expect(decodeImage(Buffer.from('not an image'))).rejects.toThrow(/cannot be decoded/);
    await expect(decodeImage(join(dir, 'nope.png'))).rejects.toThrow(/not found/);
  });

  it('refuses an over-limit image from its header, before decoding', async () => {
    // 100000 x 100000 claimed (a 30 GB decode): refused from the header alone.
    const bomb = await liarPng(100000, 100000);
    await expect(decodeImage(bomb)).rejects.toThrow(/exceeds the limit of 178956970/);
    const small = await sharp(rgba, raw).png().toBuffer();
    await expect(decodeImage(small, { maxInputPixels: 10 })).rejects.toThrow(/refused before decoding/);
    expect(await codeOf(decodeImage(small, { maxInputPixels: 10 }))).toBe('E_INPUT');
  });
});

describe('processImages', () => {
  const config = parseImageProcessorConfig({ min_pixels: 3136, max_pixels: 12845056 });

  it('honours per-image min/max pixels and resized sizes', async () => {
    const img = { data: lcgBytes(5, 300 * 200 * 3), width: 300, height: 200 };
    const out = await processImages(
      [img, { image: img, maxPixels: 28 * 28 * 16 }, { image: img, resizedWidth: 100, resizedHeight: 60 }],
      config,
    );
    expect(out.imageGridThw).toEqual([
      [1, 14, 22],
      [1, 6, 8],
      [1, 4, 8],
    ]);
    expect(out.shape).toEqual([14 * 22 + 6 * 8 + 4 * 8, 1176]);
    expect(out.pixelValues.length).toBe(out.shape[0] * out.shape[1]);
    expect(await codeOf(processImages([{ image: img, resizedWidth: 100 }], config))).toBe('E_INPUT');
    await expect(processImages([img, { data: new Uint8Array(900), width: 1, height: 300 }], config)).rejects.toThrow(
      /images\[1\].*aspect ratio/,
    );
  });

  it('resizes with the flavor\'s rounding', async () => {
    const img = { data: lcgBytes(6, 90 * 120 * 3), width: 120, height: 90 };
    const resized = await resizeRgb(img, 112, 84, 'slow');
    expect(resized.data.length).toBe(112 * 84 * 3);
    const same = await resizeRgb(img, 120, 90);
    expect(same).toBe(img);
  });
});
