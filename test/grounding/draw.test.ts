// Drawing grounding on the original image (sharp + an SVG overlay), and `qwenvl chat --draw`.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { drawReply } from '../../lib/cli/commands/chat.js';
import * as wiring from '../../lib/grounding/chat.js';
import { main } from '../../lib/cli/run.js';
import { drawGrounding, GROUNDING_COLORS, parseGrounding, QwenVLError, type GroundingItem } from '../../lib/index.js';
import { checkpointDir } from '../helpers/fixtures.js';

// The fixture's random weights never answer with boxes: the end-to-end --draw case gives chat()
// its grounding at the one call that makes it.
vi.mock('../../lib/grounding/chat.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../lib/grounding/chat.js')>();
  return { ...real, chatGrounding: vi.fn(real.chatGrounding) };
});

const tmp = mkdtempSync(join(tmpdir(), 'qwenvl-draw-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const GRAY = 90;
const rgbOf = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

/** A flat gray PNG of w×h on disk. */
async function grayPng(name: string, w: number, h: number): Promise<string> {
  const path = join(tmp, name);
  await sharp({ create: { width: w, height: h, channels: 3, background: { r: GRAY, g: GRAY, b: GRAY } } }).png().toFile(path);
  return path;
}

/** The pixels of a PNG: a function (x, y) -> [r, g, b]. */
async function pixels(png: Buffer | string): Promise<{ width: number; height: number; at: (x: number, y: number) => number[] }> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, at: (x, y) => [...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)] };
}

describe('drawGrounding', () => {
  it('outlines boxes and dots points in their colours on the original image (333x517)', async () => {
    const path = await grayPng('a.png', 333, 517);
    // A Qwen3-VL reply on a 0–1000 grid: the box lands on [50, 60.14, 200.13, 300.3] of the original.
    const { items } = parseGrounding('[{"bbox_2d": [150, 116, 601, 581], "label": "box <&>"}, {"point_2d": [750, 800], "label": "dot"}]', {
      family: 'qwen3-vl',
      images: [{ originalWidth: 333, originalHeight: 517 }],
    });
    const png = await drawGrounding(path, items);
    const img = await pixels(png);
    expect([img.width, img.height]).toEqual([333, 517]);
    const [x1, y1, x2, y2] = items[0].box!.map(Math.round);
    const [red, green] = [rgbOf(GROUNDING_COLORS[0]), rgbOf(GROUNDING_COLORS[1])];
    const midY = Math.round((y1 + y2) / 2), midX = Math.round((x1 + x2) / 2);
    // The four edges (away from the label, drawn above the top-left corner).
    expect(img.at(x1, midY)).toEqual(red);
    expect(img.at(x2 - 1, midY)).toEqual(red);
    expect(img.at(midX + 40, y1)).toEqual(red);
    expect(img.at(midX, y2 - 1)).toEqual(red);
    // Inside and outside the box: the image as it was.
    expect(img.at(midX, midY)).toEqual([GRAY, GRAY, GRAY]);
    expect(img.at(x2 + 10, midY)).toEqual([GRAY, GRAY, GRAY]);
    expect(img.at(x1 - 10, midY)).toEqual([GRAY, GRAY, GRAY]);
    // The point: a dot of the second colour at (249.75, 413.6).
    expect(img.at(250, 414)).toEqual(green);
    expect(img.at(250, 440)).toEqual([GRAY, GRAY, GRAY]);
  });

  it('draws only the items of the image asked for', async () => {
    const path = await grayPng('b.png', 1000, 37);
    const items: GroundingItem[] = [
      { box: [100, 5, 300, 30], image: 1 },
      { box: [500, 5, 700, 30], image: 0 },
    ];
    const img = await pixels(await drawGrounding(path, items, { image: 1 }));
    expect(img.at(100, 17)).toEqual(rgbOf(GROUNDING_COLORS[0]));
    expect(img.at(500, 17)).toEqual([GRAY, GRAY, GRAY]);
  });

  it('bad input: typed errors', async () => {
    await expect(drawGrounding(join(tmp, 'missing.png'), [])).rejects.toBeInstanceOf(QwenVLError);
    await expect(drawGrounding(await grayPng('c.png', 10, 10), 'x' as never)).rejects.toBeInstanceOf(QwenVLError);
  });

  it('coordinates become SVG attributes: anything but finite numbers is refused, not drawn', async () => {
    const img = await grayPng('d.png', 10, 10);
    // A string coordinate could carry markup (an <image href> reading a local file) into the overlay.
    const markup = '0" /><image href="file:///etc/passwd" x="0';
    for (const item of [
      { box: [markup, 1, 2, 3], image: 0 },
      { point: [1, Number.NaN], image: 0 },
      { box: [1, 2, 3], image: 0 },
      { box: [1, 2, 3, 4], image: -1 },
      { box: [1, 2, 3, 4], image: 0, label: 7 },
    ]) {
      const e = await drawGrounding(img, [item as never]).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(QwenVLError);
      expect((e as QwenVLError).code).toBe('E_INPUT');
    }
  });
});

describe('qwenvl chat --draw', () => {
  it('writes OUT.png for one image, OUT-1.png, OUT-2.png for several; nothing without items', async () => {
    const a = await grayPng('one.png', 333, 517), b = await grayPng('two.png', 120, 90);
    const items: GroundingItem[] = [{ box: [10, 10, 100, 100], image: 0 }, { point: [60, 45], image: 1, label: 'p' }];
    const out = join(tmp, 'out.png');
    expect(await drawReply([a], items, out)).toEqual([out]);
    expect((await pixels(out)).at(10, 50)).toEqual(rgbOf(GROUNDING_COLORS[0]));
    const several = await drawReply([a, b], items, join(tmp, 'multi.png'));
    expect(several).toEqual([join(tmp, 'multi-1.png'), join(tmp, 'multi-2.png')]);
    const second = await pixels(several[1]);
    expect([second.width, second.height]).toEqual([120, 90]);
    expect(second.at(60, 45)).toEqual(rgbOf(GROUNDING_COLORS[1]));
    expect(await drawReply([a], [], join(tmp, 'none.png'))).toEqual([]);
  });

  const run = async (args: string[]) => {
    let stderr = '';
    const status = await main(args, new AbortController().signal, { stdout: () => {}, stderr: (t) => void (stderr += t) });
    return { status, stderr };
  };

  it('end to end: chat answers, then the reply\'s boxes are drawn on the --image', async () => {
    const img = await grayPng('e2e.png', 333, 517);
    const out = join(tmp, 'e2e-out.png');
    const said: string[] = [];
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((t) => (said.push(String(t)), true));
    try {
      // First the real reply (no boxes): nothing is drawn.
      expect((await run(['chat', '--model', checkpointDir('qwen2-vl'), '--image', img, '--max-tokens', '2', '--draw', out, 'hi'])).status).toBe(0);
      expect(existsSync(out)).toBe(false);
      expect(said.join('')).toMatch(/no boxes or points; nothing drawn/);
      vi.mocked(wiring.chatGrounding).mockReturnValueOnce({ grounding: [{ label: 'thing', box: [20, 30, 200, 400], image: 0 }] });
      expect((await run(['chat', '--model', checkpointDir('qwen2-vl'), '--image', img, '--max-tokens', '2', '--draw', out, 'hi'])).status).toBe(0);
      expect(said.join('')).toMatch(/drew 1 box\(es\)\/point\(s\): .*e2e-out\.png/);
      const drawn = await pixels(out);
      expect(drawn.at(20, 200)).toEqual(rgbOf(GROUNDING_COLORS[0]));
      expect(drawn.at(100, 200)).toEqual([GRAY, GRAY, GRAY]);
    } finally {
      stdout.mockRestore();
      stderr.mockRestore();
    }
  });

  it('usage errors: --draw needs an --image and a file name', async () => {
    const noImage = await run(['chat', '--model', checkpointDir('qwen2-vl'), '--draw', join(tmp, 'x.png'), 'hi']);
    expect(noImage.status).toBe(2);
    expect(noImage.stderr).toMatch(/^qwenvl chat: --draw needs an --image/);
    const empty = await run(['chat', '--model', checkpointDir('qwen2-vl'), '--image', 'a.png', '--draw=', 'hi']);
    expect(empty.status).toBe(2);
    expect(empty.stderr).toMatch(/--draw needs a file name/);
    const help = await run(['chat', '--help']);
    expect(help.status).toBe(0);
  });
});
