/**
 * Where a client may put its API key or conversation token. Terminal clients
 * and servers send a header; browsers cannot set headers on a websocket, so
 * they offer a subprotocol or, last resort, a query parameter (which proxies
 * may log: prefer the subprotocol).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

import { AUTH_QUERY_PARAM, AUTH_SUBPROTOCOL_PREFIX } from '../../protocol/auth.js';

export interface Credential {
  value: string;
  via: 'header' | 'subprotocol' | 'query';
}

export function offeredSubprotocols(headers: IncomingHttpHeaders): string[] {
  const raw = headers['sec-websocket-protocol'];
  return (Array.isArray(raw) ? raw.join(',') : (raw ?? '')).split(',').map((p) => p.trim()).filter(Boolean);
}

export function findCredential(headers: IncomingHttpHeaders, query: URLSearchParams): Credential | undefined {
  const auth = headers.authorization;
  const bearer = typeof auth === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
  if (bearer) return { value: bearer[1], via: 'header' };
  const offered = offeredSubprotocols(headers).find((p) => p.startsWith(AUTH_SUBPROTOCOL_PREFIX));
  if (offered) return { value: offered.slice(AUTH_SUBPROTOCOL_PREFIX.length), via: 'subprotocol' };
  const fromQuery = query.get(AUTH_QUERY_PARAM);
  if (fromQuery) return { value: fromQuery, via: 'query' };
  return undefined;
}

/**
 * The subprotocol the gateway answers with. A browser that offered any must
 * get one of them back or it drops the connection, so an offer of only the
 * credential is answered with the credential (the client sent it anyway).
 */
export function chooseSubprotocol(offered: Set<string>): string | false {
  const list = [...offered];
  return list.find((p) => !p.startsWith(AUTH_SUBPROTOCOL_PREFIX)) ?? list[0] ?? false;
}

/** API keys, compared in constant time (by their SHA-256, so lengths leak nothing either). */
export class ApiKeys {
  readonly #digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.#digests = keys.map(digest);
  }

  get size(): number {
    return this.#digests.length;
  }

  matches(candidate: string): boolean {
    const d = digest(candidate);
    let found = false;
    for (const key of this.#digests) found = timingSafeEqual(key, d) || found;
    return found;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
