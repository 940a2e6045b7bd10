/**
 * Who may open a conversation. Checked for every websocket before a
 * conversation exists; a refusal carries the close code and a sentence that
 * says what to do, and is counted under its reason.
 *
 * - Origin: the gateway's own pages and clients that send no Origin header
 *   (terminal clients, servers) are served; pages of other sites only when
 *   allowlisted, or with a token minted for their origin. This stops a page
 *   on another site from using a visitor's gateway (cross-site websocket
 *   hijacking), which matters most for gateways on a home network.
 * - Credentials: when API keys or token secrets are set, every conversation
 *   needs one or the other.
 * - New conversations per minute, per address.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { CloseCode } from '../../protocol/close-codes.js';
import type { GatewaySettings } from '../config.js';
import type { AddressLimits } from './address-limits.js';
import { ApiKeys, findCredential, type Credential } from './credentials.js';
import { looksLikeToken, verifyToken, type TokenClaims } from './tokens.js';

export type RefusalReason =
  | 'origin'
  | 'no_credential'
  | 'bad_credential'
  | 'expired_token'
  | 'rate_limited'
  | 'too_many_queued'
  | 'too_many_connections'
  | 'slow_request'
  | 'draining';

export interface Refusal {
  reason: RefusalReason;
  /** Websocket close code (HTTP status where the refusal happens before any websocket). */
  code: number;
  message: string;
}

export type Grant = { kind: 'open' } | { kind: 'key' } | { kind: 'token'; claims: TokenClaims };

export interface AccessRequest {
  headers: IncomingHttpHeaders;
  query: URLSearchParams;
  /** The client's address key (after trusted proxies), see addressKey(). */
  addressKey: string;
  /** The host the client asked for (Host, or X-Forwarded-Host from a trusted proxy). */
  host: string | undefined;
}

export class AccessControl {
  readonly #keys: ApiKeys;
  readonly #secrets: readonly string[];
  readonly #origins: Set<string>;
  readonly #anyOrigin: boolean;

  constructor(
    settings: Pick<GatewaySettings, 'apiKeys' | 'tokenSecrets' | 'allowedOrigins'>,
    private readonly limits: AddressLimits,
  ) {
    this.#keys = new ApiKeys(settings.apiKeys);
    this.#secrets = settings.tokenSecrets;
    this.#anyOrigin = settings.allowedOrigins.includes('*');
    this.#origins = new Set(settings.allowedOrigins.map((o) => o.replace(/\/$/, '').toLowerCase()));
  }

  /** True when conversations need an API key or a token. */
  get authRequired(): boolean {
    return this.#keys.size > 0 || this.#secrets.length > 0;
  }

  /** Checks a request that would open a conversation; takes from the address's allowance when it passes. */
  admit(request: AccessRequest): { ok: true; grant: Grant } | { ok: false; refusal: Refusal } {
    const credential = findCredential(request.headers, request.query);
    const grant = this.#authenticate(credential);
    if ('refusal' in grant) return { ok: false, refusal: grant.refusal };
    const origin = this.#checkOrigin(request, grant);
    if (origin) return { ok: false, refusal: origin };
    if (!this.limits.takeConversation(request.addressKey)) {
      const wait = this.limits.retryAfterSeconds(request.addressKey);
      return {
        ok: false,
        refusal: { reason: 'rate_limited', code: CloseCode.TooManyRequests, message: `Too many new conversations from your address; try again in ${wait} s.` },
      };
    }
    return { ok: true, grant };
  }

  /** Whether a request may read /health's full view and /metrics: anyone on an open gateway, else an API key. */
  mayReadInternals(headers: IncomingHttpHeaders): boolean {
    if (this.#keys.size === 0) return true;
    const credential = findCredential(headers, new URLSearchParams());
    return !!credential && this.#keys.matches(credential.value);
  }

  #authenticate(credential: Credential | undefined): Grant | { refusal: Refusal } {
    if (!this.authRequired) return { kind: 'open' };
    const unauthorized = (reason: RefusalReason, message: string) => ({ refusal: { reason, code: CloseCode.Unauthorized, message } });
    if (!credential) {
      return unauthorized(
        'no_credential',
        'This gateway needs an API key or a conversation token: send "Authorization: Bearer …", the subprotocol "quillman.bearer.…", or ?token=….',
      );
    }
    if (this.#secrets.length > 0 && looksLikeToken(credential.value)) {
      const check = verifyToken(credential.value, this.#secrets);
      if (check.ok) return { kind: 'token', claims: check.claims };
      return unauthorized(check.reason === 'expired' ? 'expired_token' : 'bad_credential', check.message);
    }
    if (this.#keys.matches(credential.value)) return { kind: 'key' };
    return unauthorized('bad_credential', 'The API key or token is not valid for this gateway. Check it, or ask for a new one.');
  }

  #checkOrigin(request: AccessRequest, grant: Grant): Refusal | undefined {
    const raw = request.headers.origin;
    // No Origin: not a browser page (terminal clients, servers), which cross-site attacks need.
    if (raw === undefined || this.#anyOrigin) return undefined;
    const origin = raw.replace(/\/$/, '').toLowerCase();
    if (this.#origins.has(origin)) return undefined;
    if (grant.kind === 'token' && grant.claims.origin?.replace(/\/$/, '').toLowerCase() === origin) return undefined;
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      // "null" (sandboxed frames, file://) and other opaque origins are never our own.
    }
    if (host && request.host && host === request.host.toLowerCase()) return undefined;
    return {
      reason: 'origin',
      code: CloseCode.Forbidden,
      message: `Pages from ${raw.slice(0, 100)} may not open conversations here. The gateway's owner can allow it with --allowed-origins.`,
    };
  }
}
