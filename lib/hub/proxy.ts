/**
 * Proxies for the Hub client, chosen from the environment the way Python's `requests` (and so
 * `huggingface_hub`) chooses them, since Node's own fetch ignores these variables:
 * `https_proxy` / `HTTPS_PROXY` for https addresses, `http_proxy` / `HTTP_PROXY` for http ones (the
 * lower-case name wins), `all_proxy` / `ALL_PROXY` for either, and `no_proxy` / `NO_PROXY` for the
 * hosts to reach directly (`*`, host names matching as a domain suffix with or without a leading
 * dot, `host:port`, IP addresses and CIDR ranges). An https address goes through a CONNECT tunnel;
 * an http address is sent to the proxy as an absolute-URI request, as `requests` does.
 * @internal
 * @module
 */
import { BlockList, isIP } from 'node:net';
import { ProxyAgent, fetch as undiciFetch } from 'undici';
import { QwenVLError } from '../errors.js';

function env(e: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = e[name.toLowerCase()] ?? e[name.toUpperCase()];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function defaultPort(protocol: string): string {
  return protocol === 'https:' ? '443' : '80';
}

/** Whether `url`'s host is one `NO_PROXY` lists. */
export function bypassesProxy(url: URL, noProxy: string | undefined): boolean {
  if (noProxy === undefined) return false;
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  const port = url.port || defaultPort(url.protocol);
  const family = isIP(host);
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    const cidr = /^([^/]+)\/(\d{1,3})$/.exec(entry);
    if (cidr && family !== 0 && isIP(cidr[1]!) === family) {
      const list = new BlockList();
      const type = family === 6 ? 'ipv6' : 'ipv4';
      const prefix = Number(cidr[2]);
      if (prefix > (family === 6 ? 128 : 32)) continue;
      list.addSubnet(cidr[1]!, prefix, type);
      if (list.check(host, type)) return true;
      continue;
    }
    // `host:port` (or `[v6]:port`) matches that port only.
    const withPort = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(entry);
    const name = (withPort ? withPort[1]! : entry).replace(/^\[(.*)\]$/, '$1');
    if (withPort && withPort[2] !== port) continue;
    if (isIP(name) !== 0) {
      if (name === host) return true;
      continue;
    }
    const domain = name.replace(/^\*?\./, '');
    if (host === domain || host.endsWith(`.${domain}`)) return true;
  }
  return false;
}

/** The proxy address for `url` from the environment, or undefined for a direct connection. */
export function proxyFor(url: URL, e: NodeJS.ProcessEnv = process.env): string | undefined {
  const scheme = url.protocol === 'https:' ? 'https_proxy' : 'http_proxy';
  const proxy = env(e, scheme) ?? env(e, 'all_proxy');
  if (proxy === undefined || bypassesProxy(url, env(e, 'no_proxy'))) return undefined;
  return proxy;
}

/** A proxy address without its user name and password, for messages. */
export function redactProxy(proxy: string): string {
  try {
    const u = new URL(proxy);
    u.username = '';
    u.password = '';
    return u.href.replace(/\/$/, '');
  } catch {
    return '(unparsable proxy address)';
  }
}

/** One agent per proxy address for the life of the process (they keep their connections alive). */
const agents = new Map<string, ProxyAgent>();

function agentFor(proxy: string): ProxyAgent {
  let agent = agents.get(proxy);
  if (agent) return agent;
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(proxy) ? proxy : `http://${proxy}`);
  } catch {
    throw new QwenVLError('E_INPUT', `proxy ${redactProxy(proxy)} (from HTTPS_PROXY / HTTP_PROXY / ALL_PROXY) is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new QwenVLError('E_UNSUPPORTED', `proxy ${redactProxy(proxy)}: only http:// and https:// proxies are supported, not ${url.protocol}//`);
  }
  agent = new ProxyAgent({ uri: url.href, proxyTunnel: false });
  agents.set(proxy, agent);
  return agent;
}

/**
 * `fetch` of the Hub client: Node's own fetch when no proxy applies to `url`, else undici's (the
 * version whose agent it is handed) through the proxy. Failures that happen at the proxy name it.
 */
export async function hubFetch(url: string, init: RequestInit): Promise<Response> {
  const proxy = proxyFor(new URL(url));
  if (proxy === undefined) return fetch(url, init);
  const dispatcher = agentFor(proxy);
  try {
    return (await undiciFetch(url, { ...(init as object), dispatcher } as Parameters<typeof undiciFetch>[1])) as unknown as Response;
  } catch (e) {
    if (e instanceof Error && e.name !== 'AbortError' && e.name !== 'TimeoutError') {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const detail = cause?.code ?? cause?.message ?? e.message;
      // Shaped like fetch's own failure (requestFailed reads the cause), naming the proxy.
      throw new TypeError('fetch failed', { cause: new Error(`${detail} (through proxy ${redactProxy(proxy)})`, { cause: e }) });
    }
    throw e;
  }
}
