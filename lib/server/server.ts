/**
 * The OpenAI-compatible HTTP server of `qwenvl serve`, on fastify: it parses JSON safely
 * (prototype-poisoning keys refused), enforces the body size limit (413) and the time to receive a
 * request, and routes errors through one handler, so this file only says what each endpoint does.
 *
 * Endpoints: `POST /v1/chat/completions`, `GET /v1/models`, `GET /v1/models/:id`, `GET /health`,
 * `GET /metrics`. With an API key, every `/v1/` request needs `Authorization: Bearer <key>` (401
 * otherwise); `/health` and `/metrics` stay open to the operator's probes. Every error is OpenAI's
 * JSON error shape.
 * @internal
 * @module
 */
import { timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Model } from '../model/model.js';
import { OpenAIError, toOpenAIError } from '../openai/errors.js';
import type { MediaResolver } from '../openai/media.js';
import { Admission, shuttingDown } from './admission.js';
import { handleChat, type ChatContext, type InFlight } from './chat-handler.js';
import { createServerMetrics, type ServerMetrics } from './server-metrics.js';

/** Settings of {@link createServer}. @internal */
export interface ServerOptions {
  model: Model;
  /** The model name clients use; requests naming another get 404. */
  modelId: string;
  resolver: MediaResolver;
  /** Requires `Authorization: Bearer <apiKey>` on `/v1/`. */
  apiKey?: string;
  /** Requests handed to the model at once. Default 16. */
  maxRunning?: number;
  /** Requests waiting beyond those; one more gets 429. Default 64. */
  maxQueue?: number;
  /** Largest request body in bytes (413 beyond). Default 50 MiB. */
  bodyLimit?: number;
  /** Milliseconds to receive a whole request (408 beyond). Default 60 s. */
  requestTimeoutMs?: number;
  /** Milliseconds a streaming client may stop reading before it is cut off. Default 30 s. */
  stallMs?: number;
}

/** A server made by {@link createServer}. @internal */
export interface QwenVLServer {
  readonly app: FastifyInstance;
  readonly metrics: ServerMetrics;
  readonly admission: Admission;
  /** Starts listening; resolves to the address (`http://host:port`). */
  listen(host: string, port: number): Promise<string>;
  /**
   * Stops: no new connections or requests (503), waiting requests refused (503), running ones
   * given `graceMs` to finish and then aborted (streams end with an error event), then closes.
   */
  drain(graceMs: number): Promise<void>;
}

const FASTIFY_ERRORS: Record<string, [number, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'request_too_large'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'invalid_json'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'invalid_json'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'invalid_content_length'],
};

/** An OpenAIError for what fastify itself refused (body size, JSON, content type, timeouts). */
function fromFastify(err: FastifyError): OpenAIError | undefined {
  const known = FASTIFY_ERRORS[err.code];
  if (known) {
    const [status, code] = known;
    const message = status === 413 ? 'the request body is over the server limit' : status === 415 ? 'send the body as application/json' : `malformed request body: ${err.message}`;
    return new OpenAIError(status, message, 'invalid_request_error', null, code);
  }
  // JSON syntax errors and prototype-poisoning keys come through as 400s without one of the codes.
  if (err.statusCode === 400 && (err instanceof SyntaxError || /JSON|__proto__|constructor/.test(err.message))) {
    return new OpenAIError(400, `malformed JSON body: ${err.message}`, 'invalid_request_error', null, 'invalid_json');
  }
  if (err.statusCode === 408) return new OpenAIError(408, 'the request took too long to arrive', 'invalid_request_error', null, 'request_timeout');
  return undefined;
}

/** Errors Node raises before a request exists (timeouts, malformed HTTP): answered on the socket. */
function clientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (socket.destroyed) return;
  const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
  const status = timeout ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
  const e = timeout
    ? new OpenAIError(408, 'the request took too long to arrive', 'invalid_request_error', null, 'request_timeout')
    : new OpenAIError(status, 'malformed HTTP request', 'invalid_request_error', null, 'bad_request');
  const body = JSON.stringify(e.body());
  const reason = timeout ? 'Request Timeout' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  }
  socket.destroy();
}

function sameKey(given: string, key: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(key);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Builds the server (not listening yet). @internal */
export function createServer(options: ServerOptions): QwenVLServer {
  const admission = new Admission(options.maxRunning ?? 16, options.maxQueue ?? 64);
  const metrics = createServerMetrics(admission, options.model);
  const inflight = new Set<InFlight>();
  let draining = false;
  const requestTimeout = options.requestTimeoutMs ?? 60_000;
  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimit ?? 50 * 2 ** 20,
    requestTimeout,
    // Node arms its request-timeout checks only when the server is created with a timeout, and
    // checks every 30 s by default: often enough for short timeouts here.
    http: { requestTimeout, connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(requestTimeout / 4))) },
    clientErrorHandler: clientError,
    // Our own 503 in OpenAI's shape while draining, not fastify's.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
  });
  const ctx: ChatContext = {
    model: options.model,
    modelId: options.modelId,
    admission,
    resolver: options.resolver,
    metrics,
    stallMs: options.stallMs ?? 30_000,
    inflight,
  };

  // JSON only: fastify's text/plain parser would hand a string body to the handler.
  app.removeContentTypeParser('text/plain');
  app.addHook('onRequest', async (request, reply) => {
    if (draining && request.url.startsWith('/v1/')) {
      reply.header('connection', 'close');
      throw shuttingDown();
    }
    if (options.apiKey !== undefined && request.url.startsWith('/v1/')) {
      const auth = request.headers.authorization ?? '';
      const m = /^Bearer\s+(.+)$/i.exec(auth);
      if (!m || !sameKey(m[1].trim(), options.apiKey)) {
        throw new OpenAIError(401, m ? 'incorrect API key provided' : 'missing API key (send Authorization: Bearer <key>)', 'invalid_request_error', null, 'invalid_api_key');
      }
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    const endpoint = request.routeOptions.url ?? 'unknown';
    metrics.requests.inc({ endpoint, status: String(reply.statusCode) });
  });
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    const err = error instanceof OpenAIError ? error : (fromFastify(error) ?? toOpenAIError(error));
    if (reply.raw.destroyed) return;
    if (err.status === 429) reply.header('retry-after', '1');
    void reply.code(err.status).send(err.body());
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(new OpenAIError(404, `no route ${request.method} ${request.url.split('?')[0]}`, 'invalid_request_error', null, 'not_found').body());
  });

  const modelObject = () => ({ id: options.modelId, object: 'model', created: Math.floor(startedAt / 1000), owned_by: 'qwenvl', max_model_len: options.model.contextLength });
  const startedAt = Date.now();
  app.post('/v1/chat/completions', (request, reply) => handleChat(ctx, request, reply));
  app.get('/v1/models', async () => ({ object: 'list', data: [modelObject()] }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request) => {
    if (request.params.id !== options.modelId) throw new OpenAIError(404, `model '${request.params.id}' does not exist`, 'invalid_request_error', 'model', 'model_not_found');
    return modelObject();
  });
  app.get('/health', async (_request, reply) => {
    if (draining) return reply.code(503).send({ status: 'draining' });
    return { status: 'ok', running: admission.running, queued: admission.queued };
  });
  app.get('/metrics', async (_request, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(metrics.registry.render()));

  return {
    app,
    metrics,
    admission,
    async listen(host, port) {
      return app.listen({ host, port });
    },
    async drain(graceMs) {
      if (draining) return;
      draining = true;
      admission.close();
      // No new connections; idle keep-alive ones close now, busy ones when their reply ends.
      const closing = app.close();
      const deadline = Date.now() + graceMs;
      while (inflight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      for (const r of inflight) r.shutdown();
      while (inflight.size > 0) await new Promise((r) => setTimeout(r, 20));
      // Replies have ended; connections still open after a moment to flush (a client that never
      // finished sending its request, one that reads nothing) are cut.
      const flushed = await Promise.race([closing.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 1000).unref())]);
      if (!flushed) {
        app.server.closeAllConnections();
        await closing;
      }
    },
  };
}
