import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { get } from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OggOpusEncoder } from '../../src/audio/opus-stream.js';
import { encodeAudio } from '../../src/protocol/frames.js';
import { eventually, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { tempDir } from '../helpers/speech.js';
import { connectClient, isAudio, isHandshake } from '../helpers/ws-client.js';

describe('gateway over TLS', () => {
  let gw: TestGateway;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let ca: Buffer;

  beforeAll(async () => {
    dir = await tempDir();
    const cert = join(dir.path, 'cert.pem');
    const key = join(dir.path, 'key.pem');
    await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert]);
    ca = readFileSync(cert);
    gw = await startTestGateway({ gateway: { tlsCert: cert, tlsKey: key } });
  });
  afterAll(async () => {
    await gw?.close();
    await dir?.cleanup();
  });

  it('serves https and a wss conversation', { timeout: 150_000 }, async () => {
    expect(gw.gateway.url).toMatch(/^https:/);
    const health = () => new Promise<number>((resolve, reject) => get(`${gw.gateway.url}/health`, { ca }, (res) => resolve(res.statusCode ?? 0)).on('error', reject));
    await eventually(async () => (await health()) === 200, 20_000, 'https /health to answer 200');
    const client = connectClient(`wss://127.0.0.1:${gw.gateway.port}/api/chat`, { ca });
    // Generous: with the whole suite loading the machine, the TLS handshakes and the worker's may take a while.
    await client.waitFor(isHandshake, 60_000, 'the handshake');
    const encoder = new OggOpusEncoder();
    for (const page of encoder.encode(new Float32Array(4800).map((_, i) => 0.2 * Math.sin(i / 8)))) client.ws.send(encodeAudio(page));
    await client.waitFor(isAudio, 60_000, 'audio back');
    client.ws.close(1000);
    await client.closed;
  });
});
