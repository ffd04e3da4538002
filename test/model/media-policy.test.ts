// The media policy through the model (the library inside a server): a loadModel default, narrowed
// per request, checked on message parts before any source is read or decoded; every refusal and
// every malformed source is E_INPUT naming the message part, and says nothing about the disk.
import { copyFileSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureDir } from '../helpers/fixtures.js';
import { loadModel, Model, QwenVLError, type Conversation, type MediaPolicy } from '../../lib/index.js';

const FIX = fixtureDir('qwen2-vl');
const CKPT = join(FIX, 'checkpoint');
const IMG = join(FIX, 'inputs/gradient_224x224.png');

async function inputError(p: Promise<unknown>, match?: RegExp): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e, String(e)).toBeInstanceOf(QwenVLError);
    expect((e as QwenVLError).code, (e as Error).message).toBe('E_INPUT');
    if (match) expect((e as Error).message).toMatch(match);
    return (e as Error).message;
  }
  throw new Error('expected E_INPUT');
}

// Built loosely on purpose (hostile input); the library validates every part itself.
const conversation = (content: unknown[]): Conversation => [{ role: 'user', content }] as unknown as Conversation;
const withImage = (part: Record<string, unknown>, before = 0) =>
  conversation([...Array.from({ length: before }, () => ({ type: 'text', text: 'x' })), part, { type: 'text', text: 'What is it?' }]);
const image = (src: unknown) => withImage({ type: 'image', image: src });
const imageUrl = (url: string) => withImage({ type: 'image_url', image_url: { url } });

let dir: string; // <tmp>/{uploads/{a.png, escape.png -> ../private/secret.png}, private/secret.png}
let uploads: string;
let secret: string;
let open: Model; // default policy
let server: Model; // confined to uploads, 4 images per request
beforeAll(async () => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'qwenvl-media-model-')));
  uploads = join(dir, 'uploads');
  mkdirSync(uploads);
  mkdirSync(join(dir, 'private'));
  secret = join(dir, 'private', 'secret.png');
  copyFileSync(IMG, join(uploads, 'a.png'));
  copyFileSync(IMG, secret);
  symlinkSync(secret, join(uploads, 'escape.png'));
  open = await loadModel(CKPT);
  server = await loadModel(CKPT, { media: { localFiles: [uploads], maxImages: 4, maxImageBytes: 1 << 20 } });
});
afterAll(() => {
  open?.dispose();
  server?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('malformed image sources in messages: E_INPUT naming the part', () => {
  it.each([
    ['a bad percent escape (was URIError)', 'data:image/png,%E0%A4%A'],
    ['a file: URL with a host (was TypeError)', 'file://remotehost/x'],
    ['invalid base64', 'data:image/png;base64,@@@@'],
    ['a non-image data: URL', 'data:text/html;base64,PGI+'],
    ['an http: URL', 'https://example.com/cat.png'],
    ['an empty string', ''],
  ])('%s', async (_, src) => {
    await inputError(open.estimateTokens(image(src)), /^conversation 0, message 0, part 0: /);
    if (src !== '') await inputError(open.estimateTokens(imageUrl(src)), /^conversation 0, message 0, part 0: /);
  });

  it('a decode failure names the part too', async () => {
    await inputError(open.estimateTokens(withImage({ type: 'image', image: Buffer.from('nope') }, 2)), /^conversation 0, message 0, part 2: image .*cannot be decoded/);
  });

  it('the default policy still reads paths, file: URLs and image_url paths', async () => {
    const a = await open.estimateTokens(image(IMG));
    expect((await open.estimateTokens(image(pathToFileURL(IMG).href))).imageTokens).toBe(a.imageTokens);
    expect((await open.estimateTokens(imageUrl(IMG))).imageTokens).toBe(a.imageTokens);
  });
});

describe('a server model confined to an uploads folder', () => {
  it('reads files inside it', async () => {
    expect((await server.estimateTokens(image(join(uploads, 'a.png')))).imageTokens).toBeGreaterThan(0);
    expect((await server.estimateTokens(imageUrl(pathToFileURL(join(uploads, 'a.png')).href))).imageTokens).toBeGreaterThan(0);
  });

  it('refuses ../ traversal, symlink escapes, file: URLs and image_url paths outside it, naming the part only', async () => {
    for (const msgs of [
      image(join(uploads, '..', 'private', 'secret.png')),
      image(join(uploads, 'escape.png')),
      image(pathToFileURL(secret).href),
      imageUrl(secret),
      imageUrl(`file://${uploads}/../private/secret.png`),
      image('/etc/passwd'),
    ]) {
      const msg = await inputError(server.chat(msgs, { maxTokens: 1 }), /^conversation 0, message 0, part 0: image: local file refused by the media policy/);
      expect(msg).not.toContain(dir);
      expect(msg).not.toContain('secret');
    }
  });

  it('a missing file and an existing one outside give the same message', async () => {
    const existing = await inputError(server.estimateTokens(imageUrl(secret)));
    const missing = await inputError(server.estimateTokens(imageUrl(join(dir, 'private', 'missing.png'))));
    const missingInside = await inputError(server.estimateTokens(imageUrl(join(uploads, 'missing.png'))));
    expect(missing).toBe(existing);
    expect(missingInside).toBe(existing);
  });

  it('video parts go through the same rules', async () => {
    const msgs = conversation([{ type: 'video', video: secret }, { type: 'text', text: 'x' }]);
    const a = await inputError(server.estimateTokens(msgs), /^conversation 0, message 0, part 0: video: local file refused/);
    const b = await inputError(server.estimateTokens(conversation([{ type: 'video', video: join(dir, 'nope.mp4') }])));
    expect(b).toBe(a);
    // A video given as frames: every frame is an image under the same rules.
    const frames = conversation([{ type: 'text', text: 'x' }, { type: 'video', video: [join(uploads, 'a.png'), secret], fps: 2 }]);
    await inputError(server.estimateTokens(frames), /^conversation 0, message 0, part 1: video frames\[1\]: image: local file refused/);
    const ok = conversation([{ type: 'video', video: [join(uploads, 'a.png'), join(uploads, 'a.png')], fps: 2 }]);
    expect((await server.estimateTokens(ok)).videoTokens).toBeGreaterThan(0);
  });

  it('a data: URL over maxImageBytes is refused from its length, before decoding', async () => {
    const url = `data:image/png;base64,${'A'.repeat(2 << 20)}`;
    await inputError(server.estimateTokens(imageUrl(url)), /part 0: image data URI: .* over the media policy's maxImageBytes of 1048576; refused before decoding/);
  });
});

describe('request counts, checked before any source is read', () => {
  it('5000 tiny images are refused before decoding any (default maxImages 1024)', async () => {
    // Missing files and undecodable bytes: had any been read or decoded, the error would say so.
    const content = Array.from({ length: 5000 }, (_, i) => ({ type: 'image', image: i % 2 ? Buffer.from('x') : `/nonexistent/${i}.png` }));
    const t0 = performance.now();
    await inputError(open.chat(conversation(content), { maxTokens: 1 }), /5000 image parts, over the media policy's maxImages of 1024; refused before reading any/);
    // A request cannot raise the model's limit, the library default included.
    await inputError(open.chat(conversation(content), { maxTokens: 1, media: { maxImages: 5000 } }), /maxImages of 1024/);
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it('counts all conversations of a batch together', async () => {
    const one = image(join(uploads, 'a.png'));
    await inputError(server.estimateTokens([one, one, one, one, one]), /5 image parts, over the media policy's maxImages of 4/);
  });
});

describe('per-request policies narrow the model default', () => {
  const inside = () => image(join(uploads, 'a.png'));

  it('a request can deny local files, lower the counts and bytes', async () => {
    await inputError(server.estimateTokens(inside(), { media: { localFiles: 'deny' } }), /not allowed by the media policy/);
    await inputError(server.prepare(inside(), { media: { maxImages: 0 } }), /1 image parts, over the media policy's maxImages of 0/);
    await inputError(server.chat(inside(), { maxTokens: 1, media: { maxImageBytes: 100 } }), /maxImageBytes of 100/);
    const chunks = server.stream(inside(), { maxTokens: 1, media: { localFiles: 'deny' } });
    await inputError(chunks.next(), /not allowed/);
  });

  it('a request can lower maxInputPixels, checked from the header', async () => {
    await inputError(
      server.estimateTokens(inside(), { media: { maxInputPixels: 224 * 224 - 1 } }),
      /^conversation 0, message 0, part 0: image .*224x224 = 50176 pixels exceeds the limit of 50175 .*refused before decoding/,
    );
    expect((await server.estimateTokens(inside(), { media: { maxInputPixels: 224 * 224 } })).imageTokens).toBeGreaterThan(0);
  });

  it('a request cannot widen it', async () => {
    const wide: MediaPolicy = { localFiles: 'allow', maxImages: 10_000, maxImageBytes: 2 ** 40 };
    await inputError(server.estimateTokens(image(secret), { media: wide }), /refused by the media policy/);
    const one = inside();
    await inputError(server.estimateTokens([one, one, one, one, one], { media: wide }), /maxImages of 4/);
  });

  it('a request folder elsewhere does not open it; the model folder still applies', async () => {
    const media: MediaPolicy = { localFiles: [join(dir, 'private')] };
    await inputError(server.estimateTokens(image(secret), { media }), /refused/);
    await inputError(server.estimateTokens(inside(), { media }), /refused/);
    // The open model confined per request.
    await inputError(open.estimateTokens(image(IMG), { media: { localFiles: [uploads] } }), /refused/);
    expect((await open.estimateTokens(image(join(uploads, 'a.png')), { media: { localFiles: [uploads] } })).imageTokens).toBeGreaterThan(0);
  });

  it('bad policies are E_INPUT at load and per request', async () => {
    await inputError(loadModel(CKPT, { media: { localFiles: [join(dir, 'missing')] } }), /loadModel: media\.localFiles/);
    await inputError(open.estimateTokens(image(IMG), { media: { maxImages: -1 } }), /media\.maxImages/);
  });

  it('model.processor uses the model policy', async () => {
    await inputError(server.processor.processImages([secret]), /refused by the media policy/);
    await inputError(server.encodeImages([secret]), /refused by the media policy/);
  });
});
