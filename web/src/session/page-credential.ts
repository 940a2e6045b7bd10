/**
 * A key or conversation token handed to the app in its own address
 * (https://gateway/#token=… or ?token=…, e.g. by a site that minted it), sent
 * to the page's own gateway as a websocket subprotocol, the one place a
 * browser can put a credential on a websocket besides the URL. It is taken out
 * of the address bar at once, so it is not bookmarked or shared, and kept for
 * this tab only.
 */
import { APP_SUBPROTOCOL, AUTH_QUERY_PARAM as PARAM, AUTH_SUBPROTOCOL_PREFIX } from '../../../src/protocol/auth.js';

const KEY = 'quillman.credential';
/** A subprotocol is an HTTP token: no spaces or separators. Other credentials go in the query instead. */
const TOKEN_CHARS = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

export interface PageLocation {
  href: string;
}

export function takePageCredential(location: PageLocation, storage: Pick<Storage, 'getItem' | 'setItem'>, replace: (url: string) => void): string | undefined {
  const url = new URL(location.href);
  const hash = new URLSearchParams(url.hash.replace(/^#/, ''));
  const found = hash.get(PARAM) ?? url.searchParams.get(PARAM) ?? undefined;
  if (found) {
    storage.setItem(KEY, found);
    hash.delete(PARAM);
    url.searchParams.delete(PARAM);
    url.hash = hash.toString();
    replace(url.toString());
    return found;
  }
  return storage.getItem(KEY) ?? undefined;
}

/** How to present `credential` on a socket to `socketUrl`: a subprotocol when it fits in one, else the query. */
export function withCredential(socketUrl: string, credential: string | undefined): { url: string; protocols: string[] } {
  if (!credential) return { url: socketUrl, protocols: [] };
  if (TOKEN_CHARS.test(credential)) return { url: socketUrl, protocols: [APP_SUBPROTOCOL, AUTH_SUBPROTOCOL_PREFIX + credential] };
  const url = new URL(socketUrl);
  url.searchParams.set(PARAM, credential);
  return { url: url.toString(), protocols: [] };
}
