/**
 * Fuzz targets: everything that parses bytes or text a stranger controls.
 * Each target is a fast-check arbitrary (inputs both random and derived from
 * valid data, so they get past the first checks) and a property: the parser
 * answers with a result or its own typed error, never any other exception,
 * and what it buffers stays within its stated bounds.
 *
 * Used twice: a short run of each in the test suite (test/fuzz/fuzz.test.ts)
 * and a million inputs each from `test/fuzz/long-run.ts` (docs/security.md).
 * No vitest import here, so the long run needs no test runner.
 */
import fc from 'fast-check';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSettings, SettingsError } from '../../src/config/settings.js';
import { mintToken, verifyToken } from '../../src/gateway/access/tokens.js';
import { findCredential } from '../../src/gateway/access/credentials.js';
import { ClientInputValidator } from '../../src/gateway/client-input.js';
import { decodeFrame, encodeFrame, type Frame } from '../../src/protocol/frames.js';
import { encodePage, MAX_PAGE_BYTES, OggError, OggOpusDemuxer, PageFlag } from '../../src/protocol/ogg.js';
import { decodeOpusHead, encodeOpusHead, encodeOpusTags, opusPacketDuration } from '../../src/protocol/opus-packet.js';
import { parseSamplingParams, SAMPLING_PARAMS, samplingToQuery, type ParamSpec } from '../../src/protocol/sampling.js';

export interface FuzzTarget<T = unknown> {
  name: string;
  /** What is checked, for the docs table. */
  covers: string;
  arbitrary: fc.Arbitrary<T>;
  /** Throws when a property does not hold. */
  check(input: T): void;
}

class PropertyError extends Error {}
function ensure(condition: unknown, message: string): asserts condition {
  if (!condition) throw new PropertyError(message);
}

// ---------------------------------------------------------------- frames

const validFrame: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ kind: fc.constant('handshake' as const), protocolVersion: fc.nat(), modelVersion: fc.nat() }),
  fc.record({ kind: fc.constant('audio' as const), data: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant('text' as const), text: fc.string({ unit: 'binary', maxLength: 40 }) }),
  fc.record({ kind: fc.constant('control' as const), action: fc.constantFrom(0 as const, 1 as const, 2 as const, 3 as const) }),
  fc.record({ kind: fc.constant('metadata' as const), data: fc.jsonValue({ maxDepth: 3 }) }),
  fc.record({ kind: fc.constant('error' as const), message: fc.string({ maxLength: 40 }) }),
  fc.constant({ kind: 'ping' as const }),
);

/** A frame's bytes with a few bytes changed, cut short or extended. */
const mutated = (base: fc.Arbitrary<Uint8Array>) =>
  fc.tuple(base, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.option(fc.nat(), { nil: undefined }), fc.uint8Array({ maxLength: 8 })).map(([bytes, flips, cut, tail]) => {
    const out = Uint8Array.from(bytes);
    for (const [at, value] of flips) if (out.length) out[at % out.length] = value;
    const kept = cut === undefined ? out : out.subarray(0, cut % (out.length + 1));
    const result = new Uint8Array(kept.length + tail.length);
    result.set(kept);
    result.set(tail, kept.length);
    return result;
  });

const frameBytes = fc.oneof(fc.uint8Array({ maxLength: 200 }), validFrame.map(encodeFrame), mutated(validFrame.map(encodeFrame)));

export const frameTarget: FuzzTarget<{ messages: { bytes: Uint8Array; binary: boolean }[]; legacy: boolean }> = {
  name: 'frame decoder',
  covers: 'decodeFrame, and the gateway\'s whole client-input check (frames, Ogg, Opus, rate) over a message sequence',
  arbitrary: fc.record({ messages: fc.array(fc.record({ bytes: frameBytes, binary: fc.boolean() }), { maxLength: 8 }), legacy: fc.boolean() }),
  check({ messages, legacy }) {
    const validator = new ClientInputValidator(legacy, { maxMessageBytes: 128, maxAudioLeadMs: 5000 });
    let now = 0;
    for (const { bytes, binary } of messages) {
      const decoded = decodeFrame(bytes);
      if (decoded.ok && decoded.frame.kind !== 'unknown' && decoded.frame.kind !== 'handshake') {
        // What decodes encodes back to an equivalent frame.
        const again = decodeFrame(encodeFrame(decoded.frame));
        ensure(again.ok && JSON.stringify(again.frame, replacer) === JSON.stringify(decoded.frame, replacer), 'decode(encode(frame)) differs');
      }
      const verdict = validator.check(bytes, binary, (now += 20));
      ensure(['forward', 'ignore', 'reject'].includes(verdict.action), 'unknown verdict');
      if (verdict.action === 'reject') ensure(verdict.message.length > 0 && verdict.code >= 1000, 'a rejection without a reason or code');
      if (verdict.action === 'reject') break;
    }
  },
};

function replacer(_key: string, value: unknown) {
  return value instanceof Uint8Array ? Array.from(value) : value;
}

// ---------------------------------------------------------------- Ogg

const opusLikePacket = fc.oneof(
  fc.uint8Array({ maxLength: 600 }),
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 300 })).map(([toc, rest]) => Uint8Array.from([toc, ...rest])),
  fc.record({ channels: fc.integer({ min: 0, max: 255 }), preSkip: fc.nat(65535), mappingFamily: fc.integer({ min: 0, max: 255 }) }).map((h) => encodeOpusHead(h)),
  fc.string({ maxLength: 30 }).map((v) => encodeOpusTags(v)),
);

/** Lacing values for a list of packets, as a muxer lays them out (at most 255 segments). */
function lace(packets: Uint8Array[]): { segments: Uint8Array; body: Uint8Array } {
  const segments: number[] = [];
  const parts: Uint8Array[] = [];
  for (const p of packets) {
    let at = 0;
    for (;;) {
      if (segments.length === 255) break;
      const len = Math.min(255, p.length - at);
      segments.push(len);
      parts.push(p.subarray(at, at + len));
      at += len;
      if (len < 255) break;
    }
  }
  const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    body.set(p, at);
    at += p.length;
  }
  return { segments: Uint8Array.from(segments), body };
}

/** Pages with valid CRCs (so parsing goes past the checksum), random structure and flags. */
const page = fc
  .record({
    flags: fc.oneof(fc.constantFrom(0, PageFlag.BeginningOfStream, PageFlag.Continued, PageFlag.EndOfStream), fc.integer({ min: 0, max: 255 })),
    serial: fc.constantFrom(1, 2, 0xffffffff),
    sequence: fc.nat(),
    granule: fc.oneof(fc.constant(-1), fc.nat()),
    packets: fc.array(opusLikePacket, { maxLength: 4 }),
    rawSegments: fc.option(fc.uint8Array({ maxLength: 20 }), { nil: undefined }),
  })
  .map(({ flags, serial, sequence, granule, packets, rawSegments }) => {
    const laced = lace(packets);
    // Sometimes lacing that does not match the body: the parser must cope.
    const segments = rawSegments ?? laced.segments;
    const wanted = segments.reduce((n, s) => n + s, 0);
    const body = rawSegments ? Uint8Array.from({ length: wanted }, (_, i) => laced.body[i % Math.max(1, laced.body.length)] ?? 0) : laced.body;
    return encodePage({ flags, granule, serial, sequence, segments, body });
  });

/** A valid stream's start: BOS OpusHead, OpusTags; fuzzed pages follow. */
const streamStart = [
  encodePage({ flags: PageFlag.BeginningOfStream, granule: 0, serial: 1, sequence: 0, ...lace([encodeOpusHead()]) }),
  encodePage({ flags: 0, granule: 0, serial: 1, sequence: 1, ...lace([encodeOpusTags('fuzz')]) }),
];

const oggStream = fc
  .record({
    validStart: fc.boolean(),
    pages: fc.array(fc.oneof({ weight: 4, arbitrary: page }, { weight: 1, arbitrary: mutated(page) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 100 }) }), { maxLength: 6 }),
    cuts: fc.array(fc.nat(), { maxLength: 6 }),
  })
  .map(({ validStart, pages, cuts }) => {
    const all = [...(validStart ? streamStart : []), ...pages];
    const bytes = new Uint8Array(all.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of all) {
      bytes.set(p, at);
      at += p.length;
    }
    // Delivered in arbitrary pieces, as a network may.
    const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
    const chunks: Uint8Array[] = [];
    let from = 0;
    for (const p of [...points, bytes.length]) {
      chunks.push(bytes.subarray(from, p));
      from = p;
    }
    return chunks;
  });

const MAX_PACKET = 4096;

export const oggTarget: FuzzTarget<Uint8Array[]> = {
  name: 'Ogg demuxer',
  covers: 'OggOpusDemuxer, strict and tolerant, fed valid-CRC pages of random structure, mutated pages and garbage in random chunks',
  arbitrary: oggStream,
  check(chunks) {
    for (const tolerant of [false, true]) {
      const demuxer = new OggOpusDemuxer({ tolerant, maxPacketBytes: MAX_PACKET });
      const internals = demuxer as unknown as { pendingBytes: number; partialBytes: number };
      for (const chunk of chunks) {
        try {
          for (const event of demuxer.push(chunk)) {
            if (event.type === 'packet') {
              ensure(event.data.length <= MAX_PACKET, 'a packet over maxPacketBytes');
              ensure(event.samples48k >= 0 && event.samples48k <= 5760, 'a packet duration out of range');
            }
          }
        } catch (err) {
          if (err instanceof PropertyError) throw err;
          ensure(!tolerant, `the tolerant demuxer threw: ${(err as Error).message}`);
          ensure(err instanceof OggError, `not an OggError: ${(err as Error).stack}`);
          break;
        }
        ensure(internals.pendingBytes <= MAX_PAGE_BYTES, 'more than one page buffered');
        ensure(internals.partialBytes <= MAX_PACKET, 'more than one packet buffered');
      }
    }
  },
};

// ---------------------------------------------------------------- Opus

export const opusTarget: FuzzTarget<{ head: Uint8Array; packet: Uint8Array }> = {
  name: 'Opus header and packet parsers',
  covers: 'decodeOpusHead and opusPacketDuration (RFC 7845 header, RFC 6716 TOC and framing)',
  arbitrary: fc.record({
    head: fc.oneof(fc.uint8Array({ maxLength: 40 }), mutated(fc.record({ channels: fc.nat(255), preSkip: fc.nat(65535) }).map((h) => encodeOpusHead(h)))),
    packet: fc.oneof(fc.uint8Array({ maxLength: 40 }), opusLikePacket),
  }),
  check({ head, packet }) {
    const h = decodeOpusHead(head);
    if (h.ok) ensure(h.head.channels >= 1 && (h.head.mappingFamily !== 0 || h.head.channels <= 2), 'an impossible OpusHead accepted');
    else ensure(h.error.length > 0, 'an error without a message');
    const d = opusPacketDuration(packet);
    if (d.ok) ensure(Number.isInteger(d.samples48k) && d.samples48k >= 0 && d.samples48k <= 5760, `duration ${d.samples48k} out of range`);
  },
};

// ---------------------------------------------------------------- sampling parameters

const paramName = fc.oneof(fc.constantFrom(...Object.keys(SAMPLING_PARAMS)), fc.string({ maxLength: 12 }));
const paramValue = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.double().map(String),
  fc.integer().map(String),
  fc.constantFrom('', ' 1', '1e3', '0x10', 'NaN', 'Infinity', '-0', '.5', '5.', '1_0', '１'),
  fc.string({ maxLength: 5000 }),
);

export const samplingTarget: FuzzTarget<[string, string][]> = {
  name: 'sampling-parameter parser',
  covers: 'parseSamplingParams on any query string: values in range or every problem named, round trip through samplingToQuery',
  arbitrary: fc.array(fc.tuple(paramName, paramValue), { maxLength: 8 }),
  check(pairs) {
    const query = new URLSearchParams();
    for (const [k, v] of pairs) query.append(k, v);
    const parsed = parseSamplingParams(new URLSearchParams(query.toString()));
    if (!parsed.ok) {
      ensure(parsed.issues.length > 0 && parsed.issues.every((i) => i.message.length > 0), 'a refusal without reasons');
      return;
    }
    for (const [name, value] of Object.entries(parsed.params)) {
      const spec = (SAMPLING_PARAMS as Record<string, ParamSpec>)[name];
      if (spec.kind === 'string') ensure(typeof value === 'string' && value.length <= spec.maxLength, `${name} too long`);
      else ensure(typeof value === 'number' && value >= spec.min && value <= spec.max && (spec.kind === 'number' || Number.isInteger(value)), `${name} out of range: ${value}`);
    }
    const again = parseSamplingParams(samplingToQuery(parsed.params, parsed.passthrough));
    const canonical = (params: object) => JSON.stringify(Object.entries(params).sort(([a], [b]) => a.localeCompare(b)));
    ensure(again.ok && canonical(again.params) === canonical(parsed.params), 'parse(toQuery(params)) differs');
  },
};

// ---------------------------------------------------------------- config loader

const SETTING_KEYS = {
  gateway: ['port', 'host', 'maxConversationSeconds', 'warnBeforeEndSeconds', 'apiKeys', 'tokenSecrets', 'allowedOrigins', 'trustedProxies', 'maxConnectionsPerAddress', 'drainSeconds', 'tlsCert'],
  pool: ['provider', 'warm', 'maxWorkers', 'maxQueue', 'idleTimeoutSeconds', 'local', 'remote'],
  engine: ['name', 'loopback', 'cascade'],
};
const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('*', '10.0.0.0/8', 'https://a.example', '::1', -1, 0, 1e308, null));
const section = (keys: string[]) => fc.dictionary(fc.oneof(fc.constantFrom(...keys), fc.string({ maxLength: 8 })), anyValue, { maxKeys: 4 });
const configDoc = fc.record({ gateway: section(SETTING_KEYS.gateway), pool: section(SETTING_KEYS.pool), engine: section(SETTING_KEYS.engine) }, { requiredKeys: [] });

let scratch: string | undefined;
function scratchFile(name: string): string {
  // Memory-backed where the machine has it: a million files written.
  scratch ??= mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'quillman-fuzz-'));
  return join(scratch, name);
}

export const configTarget: FuzzTarget<{ text: string; json: boolean; env: Record<string, string>; flags: Record<string, string> }> = {
  name: 'config loader',
  covers: 'loadSettings: a YAML or JSON file (random text, or documents of random values under the real keys), environment variables and flags',
  arbitrary: fc.record({
    text: fc.oneof(fc.string({ maxLength: 200 }), configDoc.map((d) => JSON.stringify(d)), configDoc.map((d) => toYaml(d))),
    json: fc.boolean(),
    env: fc.dictionary(fc.constantFrom('QUILLMAN_PORT', 'QUILLMAN_WARM', 'QUILLMAN_API_KEYS', 'QUILLMAN_ALLOWED_ORIGINS', 'QUILLMAN_TRUSTED_PROXIES', 'QUILLMAN_PROVIDER', 'QUILLMAN_GPUS', 'QUILLMAN_STT'), fc.string({ maxLength: 30 }), { maxKeys: 3 }),
    flags: fc.dictionary(fc.constantFrom('port', 'maxWorkers', 'drainSeconds', 'tokenSecret', 'engine', 'maxQueue', 'idleTimeout'), fc.string({ maxLength: 30 }), { maxKeys: 3 }),
  }),
  check({ text, json, env, flags }) {
    const file = scratchFile(json ? 'settings.json' : 'settings.yaml');
    writeFileSync(file, text);
    // The YAML parser reports odd input through process warnings: noise here, and Node keeps memory for each one.
    const emitWarning = process.emitWarning;
    process.emitWarning = () => undefined;
    try {
      const settings = loadSettings({ configFile: file, env, flags, derive: (raw) => void ((raw.pool as Record<string, unknown>) ??= {}) });
      ensure(settings.gateway.port >= 0 && settings.gateway.port <= 65535, 'a port out of range accepted');
    } catch (err) {
      ensure(err instanceof SettingsError || (err as Error).name === 'PoolConfigError', `not a settings error: ${(err as Error)?.stack ?? String(err)}`);
      ensure((err as Error).message.length > 0, 'a settings error without a message');
    } finally {
      process.emitWarning = emitWarning;
    }
  },
};

function toYaml(doc: Record<string, unknown>): string {
  // JSON is YAML; mixing flow and block style exercises more of the parser.
  return Object.entries(doc)
    .map(([k, v]) => `${k}:\n${Object.entries((v ?? {}) as Record<string, unknown>).map(([kk, vv]) => `  ${JSON.stringify(kk)}: ${JSON.stringify(vv)}`).join('\n')}`)
    .join('\n');
}

// ---------------------------------------------------------------- credentials

const SECRET = 'fuzzing-secret-that-is-long-enough-to-sign';
const token = fc.record({ ttl: fc.integer({ min: -1000, max: 1000 }), maxSeconds: fc.option(fc.double({ min: 0.01, max: 1e6, noNaN: true }), { nil: undefined }), sub: fc.option(fc.string({ maxLength: 30 }), { nil: undefined }) }).map((c) => mintToken(SECRET, { ttlSeconds: c.ttl, maxSeconds: c.maxSeconds, sub: c.sub }));

export const credentialTarget: FuzzTarget<{ credential: string; header: string }> = {
  name: 'credentials and tokens',
  covers: 'verifyToken and the Authorization / subprotocol / query parsing, on tokens valid, tampered and random',
  arbitrary: fc.record({
    credential: fc.oneof(fc.string({ maxLength: 100 }), token, mutated(token.map((t) => new TextEncoder().encode(t))).map((b) => new TextDecoder().decode(b)), fc.string({ maxLength: 3000 }).map((s) => `qt1.${s}`)),
    header: fc.string({ maxLength: 60 }),
  }),
  check({ credential, header }) {
    const result = verifyToken(credential, [SECRET]);
    if (result.ok) ensure(result.claims.exp > 0, 'a token without expiry accepted');
    else ensure(result.message.length > 0, 'a refusal without a reason');
    findCredential({ authorization: header, 'sec-websocket-protocol': header }, new URLSearchParams(`token=${encodeURIComponent(credential)}`));
  },
};

export const TARGETS: FuzzTarget<never>[] = [frameTarget, oggTarget, opusTarget, samplingTarget, configTarget, credentialTarget] as FuzzTarget<never>[];
