// Grounding on videos: boxes map to the ORIGINAL frame pixels through the frame size the video
// processor chose (its own budget, not the images'), and items keep the time (Qwen3-VL's video
// grounding form `[{"time": 1.0, "bbox_2d": [...]}]`) or frame they were given. Sizes come from
// prepare() on real fixture checkpoints with awkward frame sizes; the replies are synthetic.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { drawGrounding, loadModel, parseGrounding, type GroundingVideo, type Model, type PreparedInputs } from '../../lib/index.js';
import { chatGrounding, rowVideos } from '../../lib/grounding/chat.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { boxIn, toRelative, toResized } from './helpers.js';

/** A raw frame of `w`×`h` (flat grey). */
const frame = (w: number, h: number) => ({ data: new Uint8Array(w * h * 3).fill(120), width: w, height: h });

/** Two rows: an image and a video of one awkward size (the image under a small budget), and a second video alone. */
function conversations(w: number, h: number) {
  return [
    [{ role: 'user', content: [
      { type: 'image', image: frame(w, h), maxPixels: 12_544 },
      { type: 'video', video: { frames: [frame(w, h), frame(w, h), frame(w, h), frame(w, h)], fps: 2 } },
      { type: 'text', text: 'Track the thing.' },
    ] }],
    [{ role: 'user', content: [
      { type: 'video', video: { frames: [frame(517, 33), frame(517, 33)], fps: 1 } },
      { type: 'text', text: 'Track the thing.' },
    ] }],
  ];
}

const SIZES: [number, number][] = [[333, 517], [1000, 37], [37, 1001]];

/** Within half a step of the family's grid (1/1000 of the side, or one resized pixel) of the truth. */
function expectNear(got: number[], truth: number[], step: [number, number]): void {
  got.forEach((v, i) => expect(Math.abs(v - truth[i]!)).toBeLessThanOrEqual(0.5 * step[i % 2]! + 1e-9));
}

describe.each([
  ['qwen2.5-vl', 'resized'],
  ['qwen3-vl', 'relative'],
] as const)('%s: grounding on videos', (family, kind) => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(checkpointDir(family));
  });
  afterAll(() => model?.dispose());

  it.each(SIZES)('boxes on a %ix%i video map to its original frames through the video resize', async (w, h) => {
    const p: PreparedInputs = await model.prepare(conversations(w, h));
    const video = p.videoSizes[0]!;
    const image = p.imageSizes[0]!;
    // The video's frame size is the processor's, read off the grid the model runs on.
    const patch = model.processor.config.patchSize;
    const [, gh, gw] = p.videoGridThw[0]!;
    expect(video).toEqual({ originalWidth: w, originalHeight: h, resizedWidth: gw * patch, resizedHeight: gh * patch });
    expect(p.videoRows).toEqual([0, 1]);
    expect(rowVideos(p, 1)).toEqual([p.videoSizes[1]]);
    // The same picture as an image was resized otherwise: mapping by the image's size would be wrong.
    expect([image.resizedWidth, image.resizedHeight]).not.toEqual([video.resizedWidth, video.resizedHeight]);

    const truth = boxIn(w, h);
    const written = (g: Required<GroundingVideo>) => (kind === 'resized' ? toResized(truth, g) : toRelative(truth, g));
    const step: [number, number] = kind === 'resized' ? [w / video.resizedWidth, h / video.resizedHeight] : [w / 1000, h / 1000];
    const reply = `[{"time": 0.5, "bbox_2d": [${written(video as Required<GroundingVideo>).join(', ')}], "label": "thing"}, ` +
      `{"time": "00:01.5", "point_2d": [${written(video as Required<GroundingVideo>).slice(0, 2).join(', ')}]}, ` +
      `{"bbox_2d": [${written(image as Required<GroundingVideo>).join(', ')}], "image": 1}]`;
    const r = parseGrounding(reply, { family, images: p.imageSizes.slice(0, 1), videos: p.videoSizes.slice(0, 1) });
    expect(r.warnings).toEqual([]);
    expect(r.items.map((i) => [i.video, i.image, i.time])).toEqual([[0, undefined, 0.5], [0, undefined, 1.5], [undefined, 0, undefined]]);
    expectNear(r.items[0]!.box!, truth, step);
    expectNear(r.items[1]!.point!, truth.slice(0, 2), step);
    const imageStep: [number, number] = kind === 'resized' ? [w / image.resizedWidth, h / image.resizedHeight] : [w / 1000, h / 1000];
    expectNear(r.items[2]!.box!, truth, imageStep);

    // chat() wiring: row 0 has the image and the video, row 1 its own video only.
    const row0 = chatGrounding(model.config.family, model.tokenizer, p, 0, model.tokenizer.encode(reply), reply);
    expect(row0.grounding).toEqual(r.items);
    const one = '[{"time": 1, "bbox_2d": [0, 0, 10, 10]}]';
    const row1 = chatGrounding(model.config.family, model.tokenizer, p, 1, model.tokenizer.encode(one), one);
    expect(row1.grounding?.map((i) => [i.video, i.time])).toEqual([[0, 1]]);
    const other = p.videoSizes[1]!;
    const far = kind === 'resized' ? [other.resizedWidth, other.resizedHeight] : [1000, 1000];
    const corner = `[{"time": 1, "point_2d": [${far.join(', ')}]}]`;
    const edge = chatGrounding(model.config.family, model.tokenizer, p, 1, model.tokenizer.encode(corner), corner);
    expect(edge.grounding?.[0]?.point).toEqual([517, 33]);
  });
});

const HAVE_FFMPEG = spawnSync('ffmpeg', ['-version']).status === 0;

describe.skipIf(!HAVE_FFMPEG)('a video file: sizes from its stored frames', () => {
  it('prepare() gives the file\'s frame size as the original, and boxes map to it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qwenvl-vg-'));
    const model = await loadModel(checkpointDir('qwen2.5-vl'));
    try {
      const file = join(dir, 'v.mp4');
      const made = spawnSync('ffmpeg', ['-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=334x46:rate=4', '-t', '1', '-c:v', 'mpeg4', file]);
      expect(made.status, made.stderr.toString()).toBe(0);
      const p = await model.prepare([[{ role: 'user', content: [{ type: 'video', video: file }, { type: 'text', text: 'Where?' }] }]]);
      const v = p.videoSizes[0]!;
      expect([v.originalWidth, v.originalHeight]).toEqual([334, 46]);
      const [, gh, gw] = p.videoGridThw[0]!;
      expect([v.resizedWidth, v.resizedHeight]).toEqual([gw * model.processor.config.patchSize, gh * model.processor.config.patchSize]);
      const r = parseGrounding(`[{"time": 0.5, "point_2d": [${v.resizedWidth}, ${v.resizedHeight / 2}]}]`, { family: 'qwen2.5-vl', images: [], videos: p.videoSizes });
      expect(r.items).toEqual([{ point: [334, 23], video: 0, time: 0.5 }]);
    } finally {
      model.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('video grounding replies', () => {
  const videos = [{ originalWidth: 1920, originalHeight: 1080 }, { originalWidth: 37, originalHeight: 1001 }];
  const images = [{ originalWidth: 333, originalHeight: 517 }];
  const family = 'qwen3-vl';

  it('reads the time in the forms models write it, on the item or around it', () => {
    const reply = '```json\n[' +
      '{"time": 1.0, "bbox_2d": [0, 0, 500, 500], "label": "car"},' +
      '{"time": "2.5s", "bbox_2d": [0, 0, 500, 500]},' +
      '{"timestamp": "<3 seconds>", "bbox_2d": [0, 0, 500, 500]},' +
      '{"time": "01:02.5", "bbox_2d": [0, 0, 500, 500]},' +
      '{"time": "1:00:00", "point_2d": [1000, 1000]},' +
      '{"frame": 12, "point_2d": [0, 0]}' +
      ']\n```';
    const r = parseGrounding(reply, { family, images: [], videos: videos.slice(0, 1) });
    expect(r.warnings).toEqual([]);
    expect(r.items.map((i) => i.time)).toEqual([1, 2.5, 3, 62.5, 3600, undefined]);
    expect(r.items[5]).toEqual({ point: [0, 0], video: 0, frame: 12 });
    expect(r.items[0]).toEqual({ label: 'car', box: [0, 0, 960, 540], video: 0, time: 1 });
    expect(r.items[4]!.point).toEqual([1920, 1080]);
    const grouped = parseGrounding('{"time": 4, "objects": [{"bbox_2d": [0, 0, 10, 10]}, {"time": 5, "point_2d": [1, 1]}]}', { family, images: [], videos });
    expect(grouped.items.map((i) => i.time)).toEqual([4, 5]);
  });

  it('a bad time is warned about and not taken; the box is kept', () => {
    const r = parseGrounding('[{"time": "soon", "bbox_2d": [0, 0, 10, 10]}, {"time": -1, "point_2d": [5, 5]}, {"time": "1:75", "point_2d": [5, 5]}]', { family, images: [], videos });
    expect(r.items.map((i) => i.time)).toEqual([undefined, undefined, undefined]);
    expect(r.warnings.filter((w) => /is not a time in seconds/.test(w))).toHaveLength(3);
    // Around items, a "time" that is not one is someone else's field: no warning.
    const around = parseGrounding('{"time": "evening", "items": [{"bbox_2d": [0, 0, 10, 10]}]}', { family, images: [], videos: videos.slice(0, 1) });
    expect(around.warnings).toEqual([]);
    expect(around.items[0]!.time).toBeUndefined();
  });

  it('which video or image: named, by a time, by a key around, or guessed with one warning', () => {
    const named = parseGrounding('[{"bbox_2d": [0, 0, 10, 10], "video_index": 1}, {"bbox_2d": [0, 0, 10, 10], "video": 1, "time": 2}, {"point_2d": [1, 1], "image_index": 0, "time": 3}]', { family, images, videos });
    expect(named.items.map((i) => [i.image, i.video, i.time])).toEqual([[undefined, 1, undefined], [undefined, 0, 2], [0, undefined, 3]]);
    expect(named.items[0]!.box).toEqual([0, 0, 0.37, 10.01]);
    const keyed = parseGrounding('{"video 2": [{"time": 1, "point_2d": [1000, 0]}], "image 1": [{"point_2d": [1000, 0]}]}', { family, images, videos });
    expect(keyed.items.map((i) => [i.image, i.video, i.point])).toEqual([[undefined, 1, [37, 0]], [0, undefined, [333, 0]]]);
    // A time says "video"; without one, an image is assumed when the request has both.
    const guessed = parseGrounding('[{"time": 1, "point_2d": [0, 0]}, {"point_2d": [0, 0]}, {"time": 2, "point_2d": [0, 0]}]', { family, images, videos });
    expect(guessed.items.map((i) => [i.image, i.video])).toEqual([[undefined, 0], [0, undefined], [undefined, 0]]);
    expect(guessed.warnings).toEqual([expect.stringMatching(/which of the 2 videos/), expect.stringMatching(/on an image or a video/)]);
    // Videos only: items go on video 0.
    const only = parseGrounding('[{"point_2d": [500, 500]}]', { family, images: [], videos: videos.slice(1) });
    expect(only.items).toEqual([{ point: [18.5, 500.5], video: 0 }]);
    const bad = parseGrounding('[{"point_2d": [0, 0], "video_index": 5}, {"point_2d": [0, 0], "video": 0}, {"point_2d": [0, 0], "video": 1, "image": 1}]', { family, images, videos });
    expect(bad.items).toEqual([]);
    expect(bad.warnings).toHaveLength(3);
    expect(bad.warnings).toEqual(expect.arrayContaining([
      expect.stringMatching(/video 5 named, but the request has 2 videos/),
      expect.stringMatching(/the video it names is not a video number/),
      expect.stringMatching(/both an image and a video/),
    ]));
  });

  it('Qwen2.5-VL needs the resized frame size of each video', () => {
    expect(() => parseGrounding('[]', { family: 'qwen2.5-vl', images: [], videos })).toThrow(/options\.videos\[0\]\.resizedWidth/);
    const r = parseGrounding('[{"time": 0, "bbox_2d": [0, 0, 28, 56]}]', {
      family: 'qwen2.5-vl',
      images: [],
      videos: [{ originalWidth: 1000, originalHeight: 37, resizedWidth: 1008, resizedHeight: 56 }],
    });
    expect(r.items[0]!.box![2]).toBeCloseTo((28 * 1000) / 1008, 12);
    expect(r.items[0]!.box![3]).toBe(37);
  });

  it('drawGrounding draws the items of a video on one of its frames (options.video), not those of an image', async () => {
    const still = frame(40, 30);
    const items = parseGrounding('[{"time": 1, "bbox_2d": [0, 0, 500, 500]}, {"bbox_2d": [500, 500, 1000, 1000], "image": 1}]', { family, images, videos }).items;
    const red = async (png: Buffer, x: number, y: number) => {
      const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const i = (y * info.width + x) * 3;
      return data[i] === 255 && data[i + 1] === 0 && data[i + 2] === 0;
    };
    // The video item's box is the top-left quarter of 1920x1080 frames: on this 40x30 frame its
    // outline starts at the corner (the frame given stands for the video's frames).
    const onVideo = await drawGrounding(still, items, { video: 0 });
    expect(await red(onVideo, 0, 0)).toBe(true);
    const onImage = await drawGrounding(still, items, { image: 0 });
    expect(await red(onImage, 0, 0)).toBe(false);
    await expect(drawGrounding(still, items, { image: 0, video: 0 })).rejects.toMatchObject({ code: 'E_INPUT' });
    await expect(drawGrounding(still, [{ box: [0, 0, 1, 1], image: 0, video: 0 }], {})).rejects.toMatchObject({ code: 'E_INPUT' });
  });
});
