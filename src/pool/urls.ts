/**
 * Worker addresses. The gateway connects to a worker's websocket chat URL;
 * the pool checks the worker over plain HTTP next to it. Both derive from one
 * base so that a worker behind a path prefix (a reverse proxy) works too.
 */

/** Puts brackets around IPv6 literals so they can sit in a URL. */
export function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

export function localChatUrl(host: string, port: number, chatPath: string): string {
  return `ws://${urlHost(host)}:${port}${chatPath}`;
}

export function localHealthUrl(host: string, port: number, healthPath: string): string {
  return `http://${urlHost(host)}:${port}${healthPath}`;
}

const WS_FOR: Record<string, string> = { 'ws:': 'ws:', 'wss:': 'wss:', 'http:': 'ws:', 'https:': 'wss:' };

/**
 * Normalises a worker address given as a base URL (`http://gpu-1:8998`,
 * `wss://host/prefix/`) or as the chat URL itself to the websocket chat URL.
 * Idempotent: a chat URL comes back unchanged.
 */
export function toChatUrl(raw: string, chatPath: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new Error(`"${raw}" is not a URL; write it like ws://10.0.0.5:8998 or https://gpu-1.example.com`);
  }
  const protocol = WS_FOR[url.protocol];
  if (!protocol) throw new Error(`"${raw}" must start with ws://, wss://, http:// or https://`);
  if (url.hash) throw new Error(`"${raw}" has a #fragment; remove it`);
  url.protocol = protocol;
  const path = url.pathname.replace(/\/+$/, '');
  if (!path.endsWith(chatPath)) url.pathname = path + chatPath;
  return url.toString();
}

/** The HTTP health URL next to a chat URL made by toChatUrl (query dropped: health needs no session settings). */
export function healthUrlOf(chatUrl: string, chatPath: string, healthPath: string): string {
  const url = new URL(chatUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  url.pathname = url.pathname.slice(0, url.pathname.length - chatPath.length) + healthPath;
  url.search = '';
  return url.toString();
}
