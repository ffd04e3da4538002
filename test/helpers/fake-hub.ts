/**
 * A loopback stand-in for the Hugging Face Hub's file endpoints, enough to test qwenvl's Hub
 * client without the network: the model info API (`/api/models/<id>/revision/<rev>?blobs=true`),
 * `resolve/<rev>/<file>` (small files served directly with their git blob id as ETag; LFS files
 * answered with a 302 to a second "CDN" server and X-Linked-Etag / X-Linked-Size), X-Repo-Commit,
 * Range requests (206), gated repositories (401 without `Authorization: Bearer <token>`), 404s with
 * X-Error-Code, and faults: a connection cut after N bytes, a corrupted body.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/** One request either server saw. */
export interface SeenRequest {
  server: 'hub' | 'cdn';
  method: string;
  path: string;
  range: string | undefined;
  authorization: string | undefined;
}

export interface FakeRepo {
  commit: string;
  files: Map<string, Buffer>;
  /** Needs this bearer token (401 GatedRepo otherwise). */
  gatedToken?: string;
}

export interface FakeFile {
  data: Buffer;
  lfs: boolean;
  /** sha256 (LFS) or git blob sha1: what the Hub's ETag / X-Linked-Etag says. */
  etag: string;
}

export function gitBlobId(data: Buffer): string {
  return createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Safetensors and anything over 1 MiB are LFS files (as on the Hub); the rest are plain git blobs. */
export function describeFile(name: string, data: Buffer): FakeFile {
  const lfs = name.endsWith('.safetensors') || name.endsWith('.bin') || data.length > 2 ** 20;
  return { data, lfs, etag: lfs ? sha256(data) : gitBlobId(data) };
}

/** A 40-hex commit id made from a seed. */
export function fakeCommit(seed: string): string {
  return createHash('sha1').update(seed).digest('hex');
}

export class FakeHub {
  readonly repos = new Map<string, FakeRepo>();
  readonly seen: SeenRequest[] = [];
  /** One-shot: the next GET of this blob (by etag) is cut after this many body bytes. */
  readonly cutAfter = new Map<string, number>();
  /** One-shot: the next GET of this blob (by etag) sends this many body bytes, then nothing, keeping the connection open. */
  readonly stallAfter = new Map<string, number>();
  /** Files (by etag) whose body is sent with one byte changed (headers unchanged). */
  readonly corrupt = new Set<string>();
  /** Renamed repositories: old id -> new id (answered with a relative 307, as the Hub does). */
  readonly renamed = new Map<string, string>();
  /** Delay between 64 KiB chunks of CDN bodies (to let rates be measured). */
  chunkDelayMs = 0;
  /** File bodies (GETs of resolve/ and the CDN) being sent now, and the most sent at once. */
  inFlight = 0;
  maxInFlight = 0;
  /**
   * When > 0, CDN bodies wait to be sent until this many of them are in flight at once (or 3 s
   * passed): a client that downloads in parallel is then seen to, however slow the machine.
   */
  get overlapGate(): number {
    return this.gate;
  }
  set overlapGate(n: number) {
    this.gate = n;
    this.gateOpen = false;
  }
  private gate = 0;
  private cdnInFlight = 0;
  private gateOpen = false;
  private gateWaiters: (() => void)[] = [];
  private hub!: Server;
  private cdn!: Server;
  endpoint = '';
  private cdnBase = '';

  /** Listens on loopback; with `tls` (a key and certificate for 127.0.0.1) both servers speak https. */
  async start(tls?: { key: string; cert: string }): Promise<this> {
    const make = (fn: (req: IncomingMessage, res: ServerResponse) => void): Server => (tls ? createTlsServer(tls, fn) : createServer(fn));
    this.hub = make((req, res) => void this.onHub(req, res));
    this.cdn = make((req, res) => void this.onCdn(req, res));
    for (const s of [this.hub, this.cdn]) await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const scheme = tls ? 'https' : 'http';
    this.endpoint = `${scheme}://127.0.0.1:${(this.hub.address() as AddressInfo).port}`;
    this.cdnBase = `${scheme}://127.0.0.1:${(this.cdn.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of [this.hub, this.cdn]) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }

  /** Requests seen since `from` (an index into `seen`), optionally of one server. */
  since(from: number, server?: 'hub' | 'cdn'): SeenRequest[] {
    return this.seen.slice(from).filter((r) => server === undefined || r.server === server);
  }

  /**
   * Counts a file body in flight until its last byte is written (`done`, called just before
   * `end`: the client cannot have it all, and start its next request, before that) or its
   * connection closes; CDN bodies wait at the overlap gate.
   */
  private async body(res: ServerResponse, server: 'hub' | 'cdn'): Promise<() => void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    if (server === 'cdn') this.cdnInFlight++;
    let counted = true;
    const done = () => {
      if (!counted) return;
      counted = false;
      this.inFlight--;
      if (server === 'cdn') this.cdnInFlight--;
    };
    res.once('close', done);
    if (this.gate === 0 || server === 'hub' || this.gateOpen) return done;
    if (this.cdnInFlight >= this.gate) {
      this.gateOpen = true;
      for (const w of this.gateWaiters.splice(0)) w();
      return done;
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 3000);
      this.gateWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
    return done;
  }

  private record(server: 'hub' | 'cdn', req: IncomingMessage): void {
    const h = req.headers;
    this.seen.push({ server, method: req.method ?? '', path: req.url ?? '', range: h.range, authorization: h.authorization });
  }

  private blob(etag: string): Buffer | undefined {
    for (const r of this.repos.values()) {
      for (const [name, data] of r.files) if (describeFile(name, data).etag === etag) return data;
    }
    return undefined;
  }

  private fail(res: ServerResponse, status: number, code: string, message: string): void {
    res.writeHead(status, { 'x-error-code': code, 'x-error-message': message, 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: message }));
  }

  /** The repository, after the token check; undefined when an error was sent. */
  private repo(req: IncomingMessage, res: ServerResponse, id: string): FakeRepo | undefined {
    const repo = this.repos.get(id);
    const auth = req.headers.authorization;
    if (!repo) {
      // Like the Hub: an anonymous caller cannot tell a missing repository from a private one.
      this.fail(res, auth ? 404 : 401, 'RepoNotFound', 'Repository not found');
      return undefined;
    }
    if (repo.gatedToken !== undefined && auth !== `Bearer ${repo.gatedToken}`) {
      this.fail(res, 401, 'GatedRepo', 'Access to this model is restricted');
      return undefined;
    }
    return repo;
  }

  private async onHub(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.record('hub', req);
    const url = new URL(req.url ?? '/', this.endpoint);
    for (const [from, to] of this.renamed) {
      for (const prefix of [`/api/models/${from}/`, `/${from}/resolve/`]) {
        if (url.pathname.startsWith(prefix)) {
          res.writeHead(307, { location: `${prefix.replace(from, to)}${url.pathname.slice(prefix.length)}${url.search}` });
          res.end();
          return;
        }
      }
    }
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (api && req.method === 'GET') {
      const repo = this.repo(req, res, api[1]!);
      if (!repo) return;
      const rev = decodeURIComponent(api[2]!);
      if (rev !== 'main' && rev !== repo.commit) return this.fail(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      const blobs = url.searchParams.get('blobs') === 'true';
      const siblings = [...repo.files].map(([name, data]) => {
        const f = describeFile(name, data);
        if (!blobs) return { rfilename: name };
        return {
          rfilename: name,
          size: data.length,
          blobId: f.lfs ? gitBlobId(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${f.etag}\nsize ${data.length}\n`)) : f.etag,
          ...(f.lfs ? { lfs: { sha256: f.etag, size: data.length, pointerSize: 130 } } : {}),
        };
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: api[1], modelId: api[1], sha: repo.commit, siblings }));
      return;
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (resolve && (req.method === 'GET' || req.method === 'HEAD')) {
      const repo = this.repo(req, res, resolve[1]!);
      if (!repo) return;
      const rev = decodeURIComponent(resolve[2]!);
      if (rev !== 'main' && rev !== repo.commit) return this.fail(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      const name = resolve[3]!.split('/').map(decodeURIComponent).join('/');
      const data = repo.files.get(name);
      if (!data) {
        res.setHeader('x-repo-commit', repo.commit);
        return this.fail(res, 404, 'EntryNotFound', `${name} does not exist`);
      }
      const f = describeFile(name, data);
      if (f.lfs) {
        res.writeHead(302, {
          location: `${this.cdnBase}/cdn/${f.etag}?signature=x`,
          'x-repo-commit': repo.commit,
          'x-linked-etag': `"${f.etag}"`,
          'x-linked-size': String(data.length),
          etag: `"${gitBlobId(Buffer.from(f.etag))}"`,
          'content-length': '0',
        });
        res.end();
        return;
      }
      let body = data;
      if (this.corrupt.has(f.etag)) {
        body = Buffer.from(data);
        body[body.length >> 1] ^= 0xff;
      }
      res.writeHead(200, { 'x-repo-commit': repo.commit, etag: `"${f.etag}"`, 'content-length': String(data.length) });
      if (req.method === 'HEAD') return void res.end();
      const done = await this.body(res, 'hub');
      // Paced like CDN bodies, so that small files can be seen downloading at once too.
      if (this.chunkDelayMs > 0) await new Promise((r) => setTimeout(r, this.chunkDelayMs));
      done();
      res.end(body);
      return;
    }
    this.fail(res, 404, 'NotFound', 'no such endpoint');
  }

  private async onCdn(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.record('cdn', req);
    const m = /^\/cdn\/([0-9a-f]{64})$/.exec(new URL(req.url ?? '/', this.cdnBase).pathname);
    const data = m ? this.blob(m[1]!) : undefined;
    if (!m || !data) {
      res.writeHead(404);
      res.end();
      return;
    }
    const etag = m[1]!;
    let body = data;
    if (this.corrupt.has(etag)) {
      body = Buffer.from(data);
      body[body.length >> 1] ^= 0xff;
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` });
        res.end();
        return;
      }
      res.writeHead(206, { 'content-length': String(body.length - start), 'content-range': `bytes ${start}-${body.length - 1}/${body.length}`, etag: `"${etag}"` });
    } else {
      res.writeHead(200, { 'content-length': String(body.length), etag: `"${etag}"`, 'accept-ranges': 'bytes' });
    }
    if (req.method === 'HEAD') return void res.end();
    const done = await this.body(res, 'cdn');
    const stall = this.stallAfter.get(etag);
    if (stall !== undefined) this.stallAfter.delete(etag);
    const cut = this.cutAfter.get(etag) ?? stall;
    if (cut !== undefined) this.cutAfter.delete(etag);
    const end = cut !== undefined ? Math.min(body.length, start + cut) : body.length;
    for (let at = start; at < end; at += 65536) {
      const chunk = body.subarray(at, Math.min(end, at + 65536));
      if (cut === undefined && at + 65536 >= end) done(); // the last bytes: see body()
      if (!res.write(chunk)) await drainOrClose(res);
      if (res.destroyed) return;
      if (this.chunkDelayMs > 0) await new Promise((r) => setTimeout(r, this.chunkDelayMs));
    }
    if (stall !== undefined) {
      // Silence, the connection left open: only the client can end it.
      await new Promise((r) => res.once('close', r));
      return;
    }
    if (cut !== undefined) {
      // The connection dies mid-body: the client sees fewer bytes than Content-Length.
      await new Promise((r) => setTimeout(r, 20));
      res.socket?.destroy();
      return;
    }
    done();
    res.end();
  }
}

/** Waits for the response to drain or close, leaving no listener behind (one a chunk piled up). */
function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}
