/**
 * Conversation tokens: short-lived, signed permissions that a web site's
 * backend mints for its users, so a browser never holds an API key.
 *
 *   qt1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(secret, "qt1." + claims))>
 *
 * Claims: `exp` (required, Unix seconds), and optionally `sub` (who, for the
 * log), `maxSeconds` (a shorter conversation cap) and `origin` (the only web
 * origin the token works from). The format is small on purpose: any backend
 * can mint one with its language's HMAC in a few lines (docs/security.md).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

const PREFIX = 'qt1';
/** Longer is not a token of ours; refusing early bounds the work an attacker can cause. */
const MAX_TOKEN_CHARS = 2048;
/** Clocks of the minting backend and the gateway may differ this much. */
const CLOCK_SKEW_SECONDS = 60;

const ClaimsSchema = z
  .object({
    exp: z.number().int().positive(),
    iat: z.number().int().positive().optional(),
    sub: z.string().max(200).optional(),
    maxSeconds: z.number().positive().optional(),
    origin: z.string().max(500).optional(),
  })
  .strict();

export type TokenClaims = z.infer<typeof ClaimsSchema>;

export type TokenCheck =
  | { ok: true; claims: TokenClaims }
  | { ok: false; reason: 'malformed' | 'bad_signature' | 'expired'; message: string };

export function looksLikeToken(credential: string): boolean {
  return credential.startsWith(`${PREFIX}.`);
}

function sign(secret: string, signed: string): Buffer {
  return createHmac('sha256', secret).update(signed).digest();
}

/** A token for `claims`, signed with `secret`. `ttlSeconds` sets `exp` when the claims lack it. */
export function mintToken(secret: string, claims: Partial<TokenClaims> & { ttlSeconds?: number }, nowSeconds = Math.floor(Date.now() / 1000)): string {
  const { ttlSeconds = 300, ...rest } = claims;
  const full = ClaimsSchema.parse({ iat: nowSeconds, exp: nowSeconds + ttlSeconds, ...rest });
  const payload = Buffer.from(JSON.stringify(full)).toString('base64url');
  return `${PREFIX}.${payload}.${sign(secret, `${PREFIX}.${payload}`).toString('base64url')}`;
}

/** Checks the signature against each secret (rotation), then the claims and the time. */
export function verifyToken(token: string, secrets: readonly string[], nowSeconds = Math.floor(Date.now() / 1000)): TokenCheck {
  const malformed = (why: string): TokenCheck => ({ ok: false, reason: 'malformed', message: `The conversation token is malformed (${why}); ask the site for a new one.` });
  if (token.length > MAX_TOKEN_CHARS) return malformed('too long');
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== PREFIX || !parts[1] || !parts[2]) return malformed(`expected ${PREFIX}.<claims>.<signature>`);
  const given = Buffer.from(parts[2], 'base64url');
  const signed = `${PREFIX}.${parts[1]}`;
  const valid = secrets.some((secret) => {
    const expected = sign(secret, signed);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!valid) return { ok: false, reason: 'bad_signature', message: 'The conversation token is not signed by this gateway; ask the site for a new one.' };
  let claims: TokenClaims;
  try {
    const parsed = ClaimsSchema.safeParse(JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')));
    if (!parsed.success) return malformed(parsed.error.issues.map((i) => `${i.path.join('.') || 'claims'}: ${i.message}`).join('; '));
    claims = parsed.data;
  } catch {
    return malformed('the claims are not JSON');
  }
  if (claims.exp + CLOCK_SKEW_SECONDS <= nowSeconds) {
    return { ok: false, reason: 'expired', message: `The conversation token expired ${nowSeconds - claims.exp} s ago; ask the site for a new one.` };
  }
  if (claims.iat !== undefined && claims.iat - CLOCK_SKEW_SECONDS > nowSeconds) return malformed('issued in the future: check the clocks');
  return { ok: true, claims };
}
