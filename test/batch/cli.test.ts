// `qwenvl batch` end to end on the Qwen2-VL fixture checkpoint: result lines, images by path
// relative to the requests file, bad lines and failing requests, resume after a crash mid-write,
// seeded determinism across runs and concurrency, duplicate ids, and Ctrl-C in a real process.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../lib/cli/run.js';
import type { ResultLine } from '../../lib/batch/output.js';
import { checkpointDir, fixtureDir } from '../helpers/fixtures.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const CKPT = checkpointDir('qwen2-vl');
const IMG = join(fixtureDir('qwen2-vl'), 'inputs/gradient_224x224.png');
const hasFfmpeg = spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status === 0;

let dir: string;
let input: string;
let output: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'qwenvl-batch-cli-'));
  input = join(dir, 'requests.jsonl');
  output = join(dir, 'results.jsonl');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function cli(args: string[]): Promise<{ status: number; stderr: string }> {
  let stderr = '';
  const status = await main(args, new AbortController().signal, { stdout: () => undefined, stderr: (t) => void (stderr += t) });
  return { status, stderr };
}

const batch = (...extra: string[]) => cli(['batch', input, '--out', output, '--model', CKPT, '--quiet', ...extra]);

function results(): Map<string, ResultLine> {
  const lines = readFileSync(output, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as ResultLine);
  const byId = new Map(lines.map((l) => [l.custom_id, l]));
  expect(byId.size).toBe(lines.length);
  return byId;
}

interface Completion {
  object: string;
  model: string;
  choices: { message: { role: string; content: string }; finish_reason: string }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}
const completion = (l: ResultLine | undefined) => l?.response?.body as Completion;
const texts = (m: Map<string, ResultLine>) => new Map([...m].map(([id, l]) => [id, completion(l).choices[0].message.content]));

/** Sampled (not greedy) requests: the seed decides their answers. */
function sampled(n: number): string {
  return Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      custom_id: `s${i}`,
      messages: [{ role: 'user', content: `Say something about ${i}` }],
      max_tokens: 6,
      temperature: 1.5,
      top_p: 1,
      top_k: 50,
    }),
  ).join('\n');
}

describe('qwenvl batch', () => {
  it('answers each line: an image by relative path, a bad line and a failing request get error lines; status 3', async () => {
    mkdirSync(join(dir, 'imgs'));
    copyFileSync(IMG, join(dir, 'imgs', 'g.png'));
    const image = (url: string) => [{ type: 'image_url', image_url: { url } }, { type: 'text', text: 'What is shown?' }];
    writeFileSync(
      input,
      [
        JSON.stringify({ custom_id: 'img', method: 'POST', url: '/v1/chat/completions', body: { model: 'qwen', messages: [{ role: 'user', content: image('imgs/g.png') }], max_tokens: 4, temperature: 0 } }),
        JSON.stringify({ custom_id: 'text', messages: [{ role: 'user', content: 'Hello' }], temperature: 0 }),
        '{"custom_id": "broken", ',
        JSON.stringify({ custom_id: 'missing', messages: [{ role: 'user', content: image('imgs/nope.png') }] }),
        JSON.stringify({ custom_id: 'badfield', messages: [{ role: 'user', content: 'x' }], top_p: 7 }),
        JSON.stringify({ custom_id: 'tools', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'f' } }] }),
      ].join('\n'),
    );
    const r = await batch('--max-tokens', '3');
    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toBe('');
    const got = results();
    expect([...got.keys()].sort()).toEqual(['badfield', 'img', 'line-3', 'missing', 'text', 'tools']);

    const img = completion(got.get('img'));
    expect(got.get('img')).toMatchObject({ error: null, response: { status_code: 200 } });
    expect(img).toMatchObject({ object: 'chat.completion', model: 'qwen', choices: [{ message: { role: 'assistant' }, finish_reason: 'length' }] });
    expect(img.usage.completion_tokens).toBe(4); // the request's own max_tokens wins over --max-tokens
    expect(img.usage.prompt_tokens).toBeGreaterThan(64); // 64 image tokens for 224x224: the image was read
    const text = completion(got.get('text'));
    expect(text.model).toBe('checkpoint'); // a body without model: the --model folder's name
    expect(text.usage.completion_tokens).toBe(3); // --max-tokens for a request without one
    expect(text.usage.prompt_tokens).toBeLessThan(64);

    expect(got.get('line-3')).toMatchObject({ response: null, error: { code: 'E_INPUT', message: expect.stringMatching(/^line 3: not valid JSON/) } });
    expect(got.get('missing')).toMatchObject({
      response: null,
      error: { code: 'E_INPUT', param: 'messages[0].content[0]', message: expect.stringContaining('image file not found') },
    });
    expect(got.get('badfield')).toMatchObject({ response: null, error: { code: 'E_INPUT', param: 'top_p' } });
    // Tools reach the model (its answer is whatever it generates; tool-call parsing is the mapping test's).
    expect(got.get('tools')).toMatchObject({ error: null, response: { status_code: 200 } });

    // The same answer greedily as the library gives (the relative path read the same image).
    const { loadModel } = await import('../../lib/index.js');
    const model = await loadModel(CKPT);
    try {
      const direct = await model.chat([{ role: 'user', content: [{ type: 'image', image: IMG }, { type: 'text', text: 'What is shown?' }] }], { maxTokens: 4, temperature: 0 });
      expect(img.choices[0].message.content).toBe(direct.text);
    } finally {
      model.dispose();
    }
  });

  it('an image as a data: URL reads as the same image by path', async () => {
    const dataUrl = `data:image/png;base64,${readFileSync(IMG).toString('base64')}`;
    copyFileSync(IMG, join(dir, 'g.png'));
    const ask = (id: string, url: string) =>
      JSON.stringify({ custom_id: id, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: 'Describe.' }] }], max_tokens: 4, temperature: 0 });
    writeFileSync(input, [ask('path', 'g.png'), ask('data', dataUrl), ask('file-url', `file://${join(dir, 'g.png')}`)].join('\n'));
    expect((await batch()).status).toBe(0);
    const got = results();
    const path = completion(got.get('path'));
    for (const id of ['data', 'file-url']) {
      expect(completion(got.get(id)).usage).toEqual(path.usage);
      expect(completion(got.get(id)).choices[0].message.content).toBe(path.choices[0].message.content);
    }
  });

  it.skipIf(!hasFfmpeg)('a video by path relative to the requests file', async () => {
    mkdirSync(join(dir, 'clips'));
    const clip = join(dir, 'clips', 'c.mp4');
    const made = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=128x96:rate=4:duration=2', '-pix_fmt', 'yuv420p', clip]);
    expect(made.status, String(made.stderr)).toBe(0);
    const ask = (id: string, url: string) =>
      JSON.stringify({ custom_id: id, messages: [{ role: 'user', content: [{ type: 'video_url', video_url: { url } }, { type: 'text', text: 'What happens?' }] }], max_tokens: 3, temperature: 0 });
    writeFileSync(input, [ask('v', 'clips/c.mp4'), ask('none', 'clips/none.mp4')].join('\n'));
    expect((await batch()).status).toBe(3);
    const got = results();
    expect(got.get('v')).toMatchObject({ error: null });
    expect(completion(got.get('v')).usage.prompt_tokens).toBeGreaterThan(20);
    expect(got.get('none')).toMatchObject({ response: null, error: { code: 'E_INPUT', param: 'messages[0].content[0]' } });
  });

  it('resumes after a crash mid-write: the half line is cut off and only the missing requests run', async () => {
    writeFileSync(input, sampled(6));
    expect((await batch('--seed', '11', '--concurrency', '3')).status).toBe(0);
    const full = readFileSync(output, 'utf8');
    const reference = texts(results());
    const lines = full.split('\n');
    writeFileSync(output, `${lines[0]}\n${lines[1]}\n${lines[2].slice(0, lines[2].length >> 1)}`);

    let stderr = '';
    const write = process.stderr.write;
    process.stderr.write = ((s: string) => ((stderr += s), true)) as typeof process.stderr.write;
    let status: number;
    try {
      status = (await cli(['batch', input, '--out', output, '--model', CKPT, '--seed', '11', '--concurrency', '2'])).status;
    } finally {
      process.stderr.write = write;
    }
    expect(status, stderr).toBe(0);
    expect(stderr).toMatch(/cut off a half-written last line \(\d+ bytes\); its request runs again/);
    expect(stderr).toMatch(/6 request\(s\), 2 already in .*, 4 to run/);
    expect(stderr).toMatch(/^done: 4 request\(s\) in/m);
    const resumed = results();
    expect(resumed.size).toBe(6);
    // Same seed: every request, the re-run ones included, gets the answer of the first run.
    expect(texts(resumed)).toEqual(reference);
  });

  it('--seed makes sampled answers the same at any concurrency; another seed changes them', async () => {
    writeFileSync(input, sampled(5));
    expect((await batch('--seed', '5', '--concurrency', '1')).status).toBe(0);
    const one = texts(results());
    rmSync(output);
    expect((await batch('--seed', '5', '--concurrency', '4')).status).toBe(0);
    expect(texts(results())).toEqual(one);
    rmSync(output);
    expect((await batch('--seed', '6', '--concurrency', '4')).status).toBe(0);
    const other = texts(results());
    expect([...other.keys()].some((id) => other.get(id) !== one.get(id))).toBe(true);
  });

  it('refuses repeated custom_ids before loading the model or writing anything', async () => {
    writeFileSync(input, [sampled(2), sampled(1)].join('\n'));
    const r = await batch();
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^qwenvl: E_INPUT: .*custom_id must be unique.*"s0" \(lines 1 and 3\)/);
    expect(existsSync(output)).toBe(false);
    // An output that cannot be created fails before the model is looked at (this one does not exist).
    writeFileSync(input, sampled(2));
    const noDir = join(dir, 'no', 'such', 'results.jsonl');
    const r2 = await cli(['batch', input, '--out', noDir, '--model', join(dir, 'no-model'), '--quiet']);
    expect(r2.status).toBe(1);
    expect(r2.stderr).toMatch(/^qwenvl: ENOENT: .*no\/such\/results\.jsonl/);
  });

  it('--help: the usage, the line formats and the exit statuses', async () => {
    let stdout = '';
    const status = await main(['batch', '--help'], new AbortController().signal, { stdout: (t) => void (stdout += t), stderr: () => undefined });
    expect(status).toBe(0);
    expect(stdout).toMatch(/^usage: qwenvl batch REQUESTS\.jsonl --out RESULTS\.jsonl --model DIR/);
    expect(stdout).toContain('order requests finish');
    expect(stdout).toMatch(/Exit status: 0 .* 3 when some result is an error/s);
  });

  it('usage errors: missing file, --out, --model; bad --concurrency', async () => {
    const usage = async (args: string[], message: string) => {
      const r = await cli(['batch', ...args]);
      expect(r.status).toBe(2);
      expect(r.stderr.split('\n')[0]).toContain(message);
    };
    await usage(['--out', output, '--model', CKPT], 'a requests file REQUESTS.jsonl is required');
    await usage([input, '--model', CKPT], '--out RESULTS.jsonl is required');
    await usage([input, '--out', output], '--model DIR is required');
    await usage([input, '--out', input, '--model', CKPT], '--out must not be the requests file');
    await usage([input, '--out', output, '--model', CKPT, '--concurrency', '0'], "--concurrency must be an integer from 1 to 1024, got '0'");
  });

  it('Ctrl-C stops a running batch cleanly (status 130, only whole lines); the rerun finishes it', async () => {
    const n = 20;
    writeFileSync(
      input,
      Array.from({ length: n }, (_, i) => JSON.stringify({ custom_id: `r${i}`, messages: [{ role: 'user', content: `Story ${i}` }], max_tokens: 100, temperature: 1 })).join('\n'),
    );
    const child = spawn(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', 'batch', input, '--out', output, '--model', CKPT, '--seed', '1', '--concurrency', '2'], {
      cwd: repo,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Interrupt once the first result is on disk.
    for (let i = 0; i < 600 && !(existsSync(output) && readFileSync(output, 'utf8').includes('\n')); i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(130);
    expect(stderr).toMatch(/^interrupted: \d+ request\(s\) .* left: run the same command again to resume$/m);
    const text = readFileSync(output, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    const first = results();
    expect(first.size).toBeGreaterThan(0);
    expect(first.size).toBeLessThan(n);
    const r = await batch('--seed', '1');
    expect(r.status, r.stderr).toBe(0);
    expect(results().size).toBe(n);
  });
});
