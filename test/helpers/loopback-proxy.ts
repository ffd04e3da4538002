/**
 * A tiny forwarding HTTP proxy on loopback: absolute-URI requests (`GET http://host/path`, what a
 * client sends for http addresses) are forwarded, CONNECT opens a tunnel (what a client does for
 * https). It records what it was asked, so a test can tell a request went through it.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

export interface ProxiedRequest {
  method: string;
  /** The absolute URI, or `host:port` for CONNECT. */
  target: string;
  proxyAuthorization: string | undefined;
}

export class LoopbackProxy {
  readonly seen: ProxiedRequest[] = [];
  private server!: Server;
  private sockets = new Set<Socket>();
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      this.record(req);
      let target: URL;
      try {
        target = new URL(req.url ?? '');
      } catch {
        res.writeHead(400);
        res.end('not an absolute URI');
        return;
      }
      const headers = { ...req.headers };
      delete headers['proxy-authorization'];
      delete headers['proxy-connection'];
      const upstream = request(target, { method: req.method, headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    this.server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
      this.record(req);
      const [host, port] = (req.url ?? '').split(':');
      const up = connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        up.write(head);
        up.pipe(client);
        client.pipe(up);
      });
      up.on('error', () => client.destroy());
      client.on('error', () => up.destroy());
    });
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  private record(req: IncomingMessage): void {
    this.seen.push({ method: req.method ?? '', target: req.url ?? '', proxyAuthorization: req.headers['proxy-authorization'] });
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
