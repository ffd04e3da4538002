// Every family end to end on its fixture checkpoint: chat about an image, a list of video frames
// and (with FFmpeg installed) a video file, through the API and through `qwenvl chat`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../lib/index.js';
import { REPO_FIXTURES as FIX } from '../helpers/fixtures.js';

const repo = join(__dirname, '../..');
const tsx = join(repo, 'node_modules/.bin/tsx');
const FAMILIES = ['qwen2-vl', 'qwen2.5-vl', 'qwen3-vl', 'qwen3-vl-moe'];
const FRAMES_DIR = join(FIX, 'qwen3-vl/inputs/video_128x96_8f');
const frames = readdirSync(FRAMES_DIR).sort().map((f) => join(FRAMES_DIR, f));
const image = join(FIX, 'qwen2-vl/inputs/gradient_224x224.png');

const hasFfmpeg = spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status === 0;
let work = '';
let videoFile = '';
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'qwenvl-fam-'));
  if (hasFfmpeg) {
    videoFile = join(work, 'clip.mp4');
    const r = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=128x96:rate=4:duration=3', '-pix_fmt', 'yuv420p', videoFile]);
    if (r.status !== 0) throw new Error(`ffmpeg could not make a test clip: ${r.stderr}`);
  } else {
    console.warn('ffmpeg not found: video-file chats are skipped (apt-get install ffmpeg)');
  }
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function cli(args: string[]) {
  return spawnSync(tsx, ['lib/cli/main.ts', 'chat', ...args], { cwd: repo, encoding: 'utf8' });
}

describe.each(FAMILIES)('%s', (family) => {
  const dir = join(FIX, family, 'checkpoint');

  it('chats about an image and about video frames', async () => {
    const model = await loadModel(dir);
    try {
      const img = await model.chat([{ role: 'user', content: [{ type: 'image', image }, { type: 'text', text: 'What?' }] }], { doSample: false, maxTokens: 3 });
      expect(img.tokens.length).toBeGreaterThan(0);
      const vid = await model.chat(
        [{ role: 'user', content: [{ type: 'video', video: frames, fps: 2 }, { type: 'text', text: 'What happens?' }] }],
        { doSample: false, maxTokens: 3 },
      );
      expect(vid.tokens.length).toBeGreaterThan(0);
      const est = await model.estimateTokens([{ role: 'user', content: [{ type: 'video', video: frames, fps: 2 }, { type: 'text', text: 'x' }] }]);
      expect(est.videoTokens).toBeGreaterThan(0);
      expect(est.imageTokens).toBe(0);
    } finally {
      model.dispose();
    }
  }, 120_000);

  it('qwenvl chat streams an answer about an image', () => {
    const r = cli(['--model', dir, '--image', image, '--max-tokens', '4', '--temperature', '0', 'Describe the image.']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(0);
  }, 120_000);

  it.skipIf(!hasFfmpeg)('qwenvl chat answers about a video file', () => {
    const r = cli(['--model', dir, '--video', videoFile, '--max-tokens', '4', '--temperature', '0', 'What happens?']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(0);
  }, 120_000);
});
