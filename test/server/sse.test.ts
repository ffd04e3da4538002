// The SSE writer on a real socket: it waits while a slow client's socket is full, and cuts off a
// client that stops reading for longer than the stall limit.
import { createServer, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { SseWriter } from '../../lib/server/sse.js';

/** A server whose one response is handed to `body`; a raw client that reads nothing until told. */
async function setup(body: (res: ServerResponse) => Promise<void>) {
  let done!: Promise<void>;
  const server = createServer((_req, res) => {
    done = body(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const client = connect(port, '127.0.0.1');
  client.pause();
  client.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
  await new Promise<void>((r) => server.once('request', () => setImmediate(r)));
  return { server, client, done: () => done };
}

const BIG = 'x'.repeat(1 << 20);

describe('SseWriter', () => {
  it('cuts off a client that stops reading for the stall limit', async () => {
    let sent = 0;
    let last = true;
    const { server, client, done } = await setup(async (res) => {
      const sse = new SseWriter(res, 200);
      sse.start();
      // Far more than the socket buffers hold: a send must wait, then give up.
      for (let i = 0; i < 256 && last; i++) {
        last = await sse.send(BIG);
        if (last) sent++;
      }
      expect(sse.open).toBe(false);
    });
    await done();
    expect(last).toBe(false);
    expect(sent).toBeLessThan(256);
    client.destroy();
    server.close();
  });

  it('waits for a slow reader and delivers every event', async () => {
    const { server, client, done } = await setup(async (res) => {
      const sse = new SseWriter(res, 10_000);
      sse.start();
      for (let i = 0; i < 16; i++) expect(await sse.send({ i, pad: BIG })).toBe(true);
      sse.end();
    });
    let text = '';
    client.setEncoding('utf8');
    client.on('data', (d: string) => (text += d));
    await new Promise((r) => setTimeout(r, 300));
    client.resume();
    await done();
    await new Promise<void>((r) => {
      const check = () => (text.includes('"i":15') ? r() : setTimeout(check, 20));
      check();
    });
    expect(text.match(/^data: /gm)).toHaveLength(16);
    client.destroy();
    server.close();
  });
});
