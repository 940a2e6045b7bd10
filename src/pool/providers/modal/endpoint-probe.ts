/**
 * One health check of a sandbox through its connect-token endpoint: an
 * HTTPS request with the probe's own token, read like any worker's health
 * answer (health.ts). Node's fetch cannot take extra certificate
 * authorities per request, hence node:https.
 *
 * Until the server in the sandbox listens, Modal's endpoint answers an error
 * of its own (the stand-in says 502; Modal's real answer is not documented):
 * any 5xx means "not yet". 401 and 403 are the endpoint refusing our token,
 * never the server's "no health endpoint".
 */
import { request } from 'node:https';
import { healthFromAnswer, MAX_HEALTH_BODY_BYTES, parseJsonObject, type Probe } from '../../health.js';

export interface EndpointProbe {
  url: string;
  headers: Record<string, string>;
  ca?: string[];
  timeoutMs: number;
}

export function probeEndpoint(probe: EndpointProbe, signal: AbortSignal): Promise<Probe> {
  if (signal.aborted) return Promise.resolve({ kind: 'down', reason: 'check cancelled' });
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: Probe) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      req.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done({ kind: 'down', reason: `no answer from ${probe.url} within ${probe.timeoutMs / 1000} s` }), probe.timeoutMs);
    const onAbort = () => done({ kind: 'down', reason: 'check cancelled' });
    const req = request(probe.url, { headers: { accept: 'application/json', ...probe.headers }, ...(probe.ca && { ca: probe.ca }) }, (res) => {
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_HEALTH_BODY_BYTES) return done(answer(status, undefined));
        chunks.push(chunk);
      });
      res.on('end', () => done(answer(status, parseJsonObject(Buffer.concat(chunks)))));
      res.on('error', (err) => done({ kind: 'down', reason: `${probe.url}: ${err.message}` }));
    });
    signal.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err) => done({ kind: 'down', reason: `${probe.url}: ${err.message}` }));
    req.end();
  });

  function answer(status: number, body: Record<string, unknown> | undefined): Probe {
    if (status === 401 || status === 403) return { kind: 'down', reason: `${probe.url} refused the gateway's connect token (HTTP ${status})` };
    if (status >= 500 && status !== 503) return { kind: 'down', reason: `${probe.url} answered HTTP ${status} (the server in the sandbox is not listening yet, or not running)` };
    return healthFromAnswer(probe.url, status, body);
  }
}

