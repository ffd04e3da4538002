// HTTPS_PROXY / HTTP_PROXY / NO_PROXY for the Hub client: a pull through a loopback proxy sends
// every request through it, NO_PROXY bypasses it, and a dead proxy is a typed error naming it.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pullModel, QwenVLError } from '../../lib/index.js';
import { bypassesProxy, proxyFor } from '../../lib/hub/proxy.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { FakeHub, fakeCommit } from '../helpers/fake-hub.js';
import { LoopbackProxy } from '../helpers/loopback-proxy.js';

const CKPT = checkpointDir('qwen2-vl');
const REPO = 'fixture-org/qwen2-vl-proxy';
const PROXY_VARS = ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY', 'no_proxy', 'NO_PROXY'];

let hub: FakeHub;
let proxy: LoopbackProxy;
let cacheDir: string;
const saved: Record<string, string | undefined> = {};
const opts = () => ({ cacheDir, endpoint: hub.endpoint, token: false as const, offline: false });

beforeAll(async () => {
  hub = await new FakeHub().start();
  proxy = await new LoopbackProxy().start();
  const files = new Map<string, Buffer>();
  for (const name of readdirSync(CKPT)) files.set(name, readFileSync(join(CKPT, name)));
  hub.repos.set(REPO, { commit: fakeCommit('proxy@1'), files });
});
afterAll(async () => {
  await hub.stop();
  await proxy.stop();
});
beforeEach(() => {
  for (const k of PROXY_VARS) {
    saved[k] = process.env[k];
    delete process.env[k];
  }
  hub.seen.length = 0;
  proxy.seen.length = 0;
  cacheDir = mkdtempSync(join(tmpdir(), 'qwenvl-proxy-'));
});
afterEach(() => {
  for (const k of PROXY_VARS) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
  rmSync(cacheDir, { recursive: true, force: true });
});

describe('Hub client behind a proxy', () => {
  it('sends every request through HTTP_PROXY (lower case too), the CDN redirect included', async () => {
    process.env.http_proxy = proxy.url;
    const r = await pullModel(REPO, opts());
    expect(readdirSync(r.dir).sort()).toEqual(readdirSync(CKPT).sort());
    expect(hub.seen.length).toBeGreaterThan(3);
    // Every request the Hub and its CDN saw came through the proxy, as an absolute URI.
    const through = proxy.seen.map((p) => `${p.method} ${new URL(p.target).pathname}${new URL(p.target).search}`).sort();
    expect(through).toEqual(hub.seen.map((s) => `${s.method} ${s.path}`).sort());
    expect(proxy.seen.some((p) => p.target.includes('/cdn/'))).toBe(true);
  });

  it('NO_PROXY sends the requests directly', async () => {
    process.env.HTTP_PROXY = proxy.url;
    process.env.NO_PROXY = 'example.org, 127.0.0.1';
    await pullModel(REPO, opts());
    expect(hub.seen.length).toBeGreaterThan(3);
    expect(proxy.seen).toEqual([]);
  });

  it('sends the proxy credentials to the proxy only, and keeps them out of messages', async () => {
    process.env.HTTP_PROXY = proxy.url.replace('http://', 'http://alice:s%3Acret@');
    await pullModel(REPO, opts());
    expect(proxy.seen.length).toBeGreaterThan(0);
    expect(new Set(proxy.seen.map((p) => p.proxyAuthorization))).toEqual(new Set([`Basic ${Buffer.from('alice:s:cret').toString('base64')}`]));
    // A proxy that is not there: E_NETWORK naming it, without the password.
    process.env.HTTP_PROXY = 'http://alice:secret@127.0.0.1:1';
    const err = await pullModel(REPO, { ...opts(), retries: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QwenVLError);
    expect((err as QwenVLError).code).toBe('E_NETWORK');
    expect((err as QwenVLError).message).toMatch(/through proxy http:\/\/127\.0\.0\.1:1/);
    expect((err as QwenVLError).message).not.toContain('secret');
  });

  it('a proxy of another scheme is refused with a typed error', async () => {
    process.env.HTTP_PROXY = 'socks5://127.0.0.1:1080';
    const err = await pullModel(REPO, opts()).catch((e: unknown) => e);
    expect((err as QwenVLError).code).toBe('E_UNSUPPORTED');
  });
});

const HAVE_OPENSSL = spawnSync('openssl', ['version']).status === 0;

describe.skipIf(!HAVE_OPENSSL)('an https Hub behind HTTPS_PROXY', () => {
  it('tunnels every request through the proxy with CONNECT, TLS end to end', async () => {
    // A certificate for 127.0.0.1, trusted by a child process through NODE_EXTRA_CA_CERTS (read
    // at start, hence the child): the client verifies the Hub's certificate through the tunnel.
    const dir = mkdtempSync(join(tmpdir(), 'qwenvl-tls-'));
    const tlsHub = new FakeHub();
    try {
      const key = join(dir, 'key.pem'), cert = join(dir, 'cert.pem');
      const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
        '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
      expect(made.status, made.stderr.toString()).toBe(0);
      await tlsHub.start({ key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') });
      tlsHub.repos.set(REPO, hub.repos.get(REPO)!);
      const script = join(dir, 'pull.mts');
      const lib = join(process.cwd(), 'lib/index.ts');
      writeFileSync(script, [
        `import { pullModel } from ${JSON.stringify(lib)};`,
        'const [endpoint, cacheDir] = process.argv.slice(2);',
        'try {',
        '  const r = await pullModel(' + JSON.stringify(REPO) + ', { endpoint, cacheDir, token: false, offline: false, retries: 0 });',
        '  console.log(JSON.stringify({ files: r.files.length }));',
        '} catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }',
      ].join('\n'));
      const env: NodeJS.ProcessEnv = { ...process.env, NODE_EXTRA_CA_CERTS: cert, HTTPS_PROXY: proxy.url };
      for (const k of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'all_proxy', 'ALL_PROXY', 'no_proxy', 'NO_PROXY']) delete env[k];
      const out = await new Promise<string>((resolve, reject) => {
        execFile(process.execPath, ['--import', 'tsx', script, tlsHub.endpoint, cacheDir], { env, cwd: process.cwd(), encoding: 'utf8' }, (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout));
      });
      expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual({ files: readdirSync(CKPT).length });
      // The proxy saw only tunnels, to the Hub and to its CDN; the servers saw the requests inside.
      const hubPort = new URL(tlsHub.endpoint).port;
      expect(proxy.seen.every((p) => p.method === 'CONNECT')).toBe(true);
      expect(new Set(proxy.seen.map((p) => p.target.split(':')[0]))).toEqual(new Set(['127.0.0.1']));
      expect(proxy.seen.some((p) => p.target === `127.0.0.1:${hubPort}`)).toBe(true);
      expect(proxy.seen.some((p) => p.target !== `127.0.0.1:${hubPort}`)).toBe(true);
      expect(tlsHub.seen.some((s) => s.server === 'cdn')).toBe(true);
    } finally {
      await tlsHub.stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('proxy choice', () => {
  const u = (s: string) => new URL(s);
  it('picks the variable by scheme, lower case first, ALL_PROXY last', () => {
    expect(proxyFor(u('https://huggingface.co/x'), { HTTPS_PROXY: 'http://a:1', https_proxy: 'http://b:1' })).toBe('http://b:1');
    expect(proxyFor(u('https://huggingface.co/x'), { HTTP_PROXY: 'http://a:1' })).toBeUndefined();
    expect(proxyFor(u('http://h/x'), { HTTP_PROXY: 'http://a:1' })).toBe('http://a:1');
    expect(proxyFor(u('http://h/x'), { ALL_PROXY: 'http://c:1' })).toBe('http://c:1');
    expect(proxyFor(u('http://h/x'), { HTTP_PROXY: '  ' })).toBeUndefined();
  });
  it('matches NO_PROXY entries as requests does', () => {
    const hf = u('https://cdn-lfs.huggingface.co/a');
    expect(bypassesProxy(hf, 'huggingface.co')).toBe(true);
    expect(bypassesProxy(hf, '.huggingface.co')).toBe(true);
    expect(bypassesProxy(hf, '*.huggingface.co')).toBe(true);
    expect(bypassesProxy(hf, 'face.co')).toBe(false);
    expect(bypassesProxy(hf, '*')).toBe(true);
    expect(bypassesProxy(hf, 'huggingface.co:443')).toBe(true);
    expect(bypassesProxy(hf, 'huggingface.co:8443')).toBe(false);
    expect(bypassesProxy(u('http://10.1.2.3:8080/'), '10.0.0.0/8')).toBe(true);
    expect(bypassesProxy(u('http://11.1.2.3/'), '10.0.0.0/8')).toBe(false);
    expect(bypassesProxy(u('http://[::1]:5/'), '::1')).toBe(true);
    expect(bypassesProxy(u('http://[fd00::7]/'), 'fd00::/8')).toBe(true);
    expect(bypassesProxy(u('http://localhost/'), undefined)).toBe(false);
  });
});
