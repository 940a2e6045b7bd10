/**
 * Part of the Modal control-plane STAND-IN (see stand-in.ts): the credential
 * check. The SDK sends its token pair as `x-modal-token-id` /
 * `x-modal-token-secret` on every call, exchanges it once through AuthTokenGet
 * for a short-lived JWT, and sends that JWT as `x-modal-auth-token` on every
 * other call (it reads only the `exp` claim, to schedule the refresh).
 * A wrong pair or a missing/forged JWT is UNAUTHENTICATED, which the SDK
 * does not retry.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { status, type Metadata } from '@grpc/grpc-js';
import { RpcError } from './rpc-error.js';

export interface Credentials {
  tokenId: string;
  tokenSecret: string;
}

const AUTH_TOKEN_LIFETIME_S = 3600;

export function randomCredentials(): Credentials {
  return { tokenId: `ak-${randomBytes(12).toString('hex')}`, tokenSecret: `as-${randomBytes(16).toString('hex')}` };
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The SDK decodes the JWT payload with `atob`, which rejects base64url's `-`
 * and `_`: a payload that needs them would lose its `exp` (and the SDK warns).
 * A nonce claim is varied until the encoding needs neither.
 */
function encodeClaims(claims: Record<string, unknown>): string {
  for (let nonce = 0; ; nonce++) {
    const encoded = Buffer.from(JSON.stringify({ ...claims, n: nonce })).toString('base64url');
    if (!/[-_]/.test(encoded)) return encoded;
  }
}

export class AuthGate {
  #credentials: Credentials;
  readonly #signingKey = randomBytes(32);

  constructor(credentials: Credentials) {
    this.#credentials = { ...credentials };
  }

  get credentials(): Credentials {
    return { ...this.#credentials };
  }

  /** Rotating the pair revokes it: calls made with the old one, and JWTs minted for it, are refused. */
  setCredentials(credentials: Credentials): void {
    this.#credentials = { ...credentials };
  }

  /** Throws UNAUTHENTICATED unless the call carries the current token pair (and, except for AuthTokenGet, a valid JWT). */
  check(metadata: Metadata, method: string): void {
    const id = String(metadata.get('x-modal-token-id')[0] ?? '');
    const secret = String(metadata.get('x-modal-token-secret')[0] ?? '');
    if (!id || !secret) throw new RpcError(status.UNAUTHENTICATED, 'Token missing: set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET (Modal stand-in)');
    if (!sameText(id, this.#credentials.tokenId) || !sameText(secret, this.#credentials.tokenSecret)) {
      throw new RpcError(status.UNAUTHENTICATED, `Invalid token id or secret for token ${id} (Modal stand-in)`);
    }
    if (method === 'AuthTokenGet') return;
    const jwt = String(metadata.get('x-modal-auth-token')[0] ?? '');
    if (!this.#validJwt(jwt)) throw new RpcError(status.UNAUTHENTICATED, 'Missing or invalid x-modal-auth-token (Modal stand-in)');
  }

  mintJwt(): string {
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const payload = encodeClaims({ sub: this.#credentials.tokenId, iat: now, exp: now + AUTH_TOKEN_LIFETIME_S });
    return `${header}.${payload}.${this.#sign(`${header}.${payload}`)}`;
  }

  #sign(input: string): string {
    return createHmac('sha256', this.#signingKey).update(input).digest('base64url');
  }

  #validJwt(jwt: string): boolean {
    const parts = jwt.split('.');
    if (parts.length !== 3) return false;
    const [header, payload, signature] = parts as [string, string, string];
    if (!sameText(signature, this.#sign(`${header}.${payload}`))) return false;
    try {
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { sub?: string; exp?: number };
      return claims.sub === this.#credentials.tokenId && typeof claims.exp === 'number' && claims.exp > Date.now() / 1000;
    } catch {
      return false;
    }
  }
}
