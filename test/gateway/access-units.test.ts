/**
 * The pieces of access control on their own: address keys, the per-address
 * allowance and its memory bound, tokens and secret rotation, credential
 * places and subprotocol choice.
 */
import { describe, expect, it } from 'vitest';
import { AddressLimits, addressKey } from '../../src/gateway/access/address-limits.js';
import { ApiKeys, chooseSubprotocol, findCredential } from '../../src/gateway/access/credentials.js';
import { mintToken, verifyToken } from '../../src/gateway/access/tokens.js';

const OLD = 'the-old-secret-that-is-long-enough-to-sign';
const NEW = 'the-new-secret-that-is-long-enough-to-sign';

describe('address keys', () => {
  it('counts IPv4 as is, IPv4-mapped IPv6 as IPv4, and IPv6 by its /64', () => {
    expect(addressKey('203.0.113.9')).toBe('203.0.113.9');
    expect(addressKey('::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(addressKey('2001:db8:1:2::5')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey(undefined)).toBe('unknown');
  });
});

describe('per-address allowance', () => {
  it('lets a burst through, then refills steadily', () => {
    let now = 0;
    const limits = new AddressLimits({ maxConnections: 0, maxQueued: 0, perMinute: 6 }, () => now);
    for (let i = 0; i < 6; i++) expect(limits.takeConversation('a')).toBe(true);
    expect(limits.takeConversation('a')).toBe(false);
    expect(limits.retryAfterSeconds('a')).toBe(10);
    expect(limits.takeConversation('b')).toBe(true);
    now += 10_000;
    expect(limits.takeConversation('a')).toBe(true);
    expect(limits.takeConversation('a')).toBe(false);
    limits.dispose();
  });

  it('counts connections and places in the queue, and forgets an address that holds nothing', () => {
    let now = 0;
    const limits = new AddressLimits({ maxConnections: 2, maxQueued: 1, perMinute: 5 }, () => now);
    expect(limits.openConnection('a')).toBe(true);
    expect(limits.openConnection('a')).toBe(true);
    expect(limits.openConnection('a')).toBe(false);
    expect(limits.enterQueue('a')).toBe(true);
    expect(limits.enterQueue('a')).toBe(false);
    expect(limits.usage('a')).toEqual({ connections: 2, queued: 1 });
    limits.closeConnection('a');
    limits.closeConnection('a');
    limits.leaveQueue('a');
    limits.takeConversation('a');
    limits.sweep();
    expect(limits.trackedAddresses).toBe(1); // its allowance is not full yet
    now += 60_000;
    limits.sweep();
    expect(limits.trackedAddresses).toBe(0);
    limits.dispose();
  });

  it('tracks at most 100 000 addresses, however many spray it', () => {
    const limits = new AddressLimits({ maxConnections: 0, maxQueued: 0, perMinute: 1 }, () => 0);
    for (let i = 0; i < 150_000; i++) limits.takeConversation(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    expect(limits.trackedAddresses).toBeLessThanOrEqual(100_000);
    limits.dispose();
  });
});

describe('tokens', () => {
  it('verifies with any configured secret, so a new secret can be rolled in', () => {
    const old = mintToken(OLD, { ttlSeconds: 60, sub: 'u1' });
    expect(verifyToken(old, [NEW, OLD])).toMatchObject({ ok: true, claims: { sub: 'u1' } });
    expect(verifyToken(old, [NEW])).toMatchObject({ ok: false, reason: 'bad_signature' });
  });

  it('expires, with a minute of clock skew allowed', () => {
    const now = 1_800_000_000;
    const token = mintToken(OLD, { ttlSeconds: 30 }, now);
    expect(verifyToken(token, [OLD], now + 80)).toMatchObject({ ok: true });
    expect(verifyToken(token, [OLD], now + 91)).toMatchObject({ ok: false, reason: 'expired' });
    expect(verifyToken(mintToken(OLD, { ttlSeconds: 30 }, now + 600), [OLD], now)).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('refuses unknown claims, so a typo in a limit is not silently ignored', () => {
    const body = Buffer.from(JSON.stringify({ exp: 2_000_000_000, maxSecs: 5 })).toString('base64url');
    const forged = `qt1.${body}.${mintToken(OLD, {}).split('.')[2]}`;
    expect(verifyToken(forged, [OLD])).toMatchObject({ ok: false });
  });
});

describe('credentials', () => {
  it('are taken from the header, then a subprotocol, then the query', () => {
    const q = new URLSearchParams('token=from-query');
    expect(findCredential({ authorization: 'Bearer from-header', 'sec-websocket-protocol': 'quillman, quillman.bearer.from-protocol' }, q)).toEqual({ value: 'from-header', via: 'header' });
    expect(findCredential({ 'sec-websocket-protocol': 'quillman, quillman.bearer.from-protocol' }, q)).toEqual({ value: 'from-protocol', via: 'subprotocol' });
    expect(findCredential({}, q)).toEqual({ value: 'from-query', via: 'query' });
    expect(findCredential({ authorization: 'Basic abc' }, new URLSearchParams())).toBeUndefined();
  });

  it('answer a browser with a subprotocol it offered, not the credential when it offered another', () => {
    expect(chooseSubprotocol(new Set(['quillman.bearer.x', 'quillman']))).toBe('quillman');
    expect(chooseSubprotocol(new Set(['quillman.bearer.x']))).toBe('quillman.bearer.x');
    expect(chooseSubprotocol(new Set())).toBe(false);
  });

  it('match API keys exactly', () => {
    const keys = new ApiKeys(['key-aaaaaaaaaaaaaaaa', 'key-bbbbbbbbbbbbbbbb']);
    expect(keys.matches('key-bbbbbbbbbbbbbbbb')).toBe(true);
    expect(keys.matches('key-bbbbbbbbbbbbbbb')).toBe(false);
    expect(keys.matches('')).toBe(false);
  });
});
