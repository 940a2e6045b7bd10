/**
 * Turns what a user types in the server field into a websocket URL. Empty
 * means this page's own gateway; a bare host or an http(s) address gets
 * Kyutai's `/api/chat` path and the matching ws(s) scheme.
 */
export const DEFAULT_CHAT_PATH = '/api/chat';

export function socketUrl(address: string, page: { protocol: string; host: string }, query: URLSearchParams): string {
  const secure = page.protocol === 'https:';
  const trimmed = address.trim();
  let url: URL;
  if (trimmed === '') url = new URL(DEFAULT_CHAT_PATH, `${secure ? 'wss' : 'ws'}://${page.host}`);
  else if (trimmed.startsWith('/')) url = new URL(trimmed, `${secure ? 'wss' : 'ws'}://${page.host}`);
  else {
    const withScheme = /^[a-z]+:\/\//i.test(trimmed) ? trimmed : `${secure ? 'wss' : 'ws'}://${trimmed}`;
    url = new URL(withScheme.replace(/^http(s?):/i, 'ws$1:'));
    if (url.pathname === '/' || url.pathname === '') url.pathname = DEFAULT_CHAT_PATH;
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new Error(`"${address}" is not a websocket address: use ws://, wss://, http(s):// or a host name`);
  for (const [k, v] of query) url.searchParams.append(k, v);
  return url.toString();
}
