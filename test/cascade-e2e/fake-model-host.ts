/**
 * A FAKE of the model hosts (Hugging Face, GitHub releases), served in the
 * layout of QUILLMAN_MODEL_MIRROR (<mirror>/<host>/<path>) on 127.0.0.1.
 * Real model files cannot be had here, so it serves stand-ins: files whose
 * registry checksum is pinned therefore fail verification (which the tests
 * want to see), and the Piper voice archive, which has no pinned checksum,
 * installs. It can send slowly (a first start over a slow link) or break off
 * once (an interrupted download), and honours Range requests for resuming.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { findModel } from '../../src/models/registry.js';
import { writeRangeHead } from '../helpers/http-range.js';

export interface HostRequest {
  path: string;
  range?: string;
}

export interface FakeModelHost {
  /** The value for QUILLMAN_MODEL_MIRROR. */
  mirror: string;
  readonly requests: HostRequest[];
  /** The bytes served for the Piper voice archive. */
  voiceArchive: Buffer;
  close(): Promise<void>;
}

export interface FakeModelHostOptions {
  /** Folder for the stand-in archive. */
  workDir: string;
  /** Size of the stand-in voice archive's payload (incompressible). */
  voiceBytes?: number;
  /** Send at most this many bytes every 100 ms (a slow link); unlimited by default. */
  bytesPer100Ms?: number;
  /** Cut the first archive response after this many bytes (an interrupted download). */
  breakFirstAfter?: number;
}

/** Where the registry says a model file lives, as a path on the mirror. */
export function mirrorPath(url: string): string {
  const u = new URL(url);
  return `/${u.host}${u.pathname}`;
}

export async function startFakeModelHost(options: FakeModelHostOptions): Promise<FakeModelHost> {
  const voice = findModel('piper-en_US-amy-medium')!.archive!;
  // Laid out like the real archive (one top folder) but without a usable voice: loading it fails, and the engine falls back to flite.
  const src = join(options.workDir, 'archive-src', voice.topFolder);
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'README.txt'), 'Stand-in for the Piper voice: the tests cannot download the real one.\n');
  writeFileSync(join(src, 'payload.bin'), randomBytes(options.voiceBytes ?? 200_000));
  const archivePath = join(options.workDir, 'voice.tar.bz2');
  execFileSync('tar', ['-cjf', archivePath, '-C', join(options.workDir, 'archive-src'), voice.topFolder]);
  const voiceArchive = readFileSync(archivePath);
  const voicePath = mirrorPath(voice.url);
  const zipformer = findModel('zipformer-en-2023-06-26')!.files!;
  const zipformerPaths = new Set(zipformer.map((f) => mirrorPath(f.url)));

  const requests: HostRequest[] = [];
  let broken = false;

  async function send(res: ServerResponse, body: Buffer, range: string | undefined, cutAfter?: number): Promise<void> {
    const start = writeRangeHead(res, body, range, { 'content-type': 'application/octet-stream' });
    if (start === undefined) return;
    const step = options.bytesPer100Ms ?? body.length;
    for (let pos = start; pos < body.length; pos += step) {
      if (res.destroyed) return;
      const end = Math.min(body.length, pos + step);
      if (cutAfter !== undefined && end >= cutAfter) {
        res.write(body.subarray(pos, cutAfter));
        await new Promise((r) => setTimeout(r, 50));
        res.destroy();
        return;
      }
      res.write(body.subarray(pos, end));
      if (end < body.length) await new Promise((r) => setTimeout(r, 100));
    }
    res.end();
  }

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push({ path, range: req.headers.range });
    if (path === voicePath) {
      const cut = options.breakFirstAfter !== undefined && !broken ? options.breakFirstAfter : undefined;
      if (cut !== undefined) broken = true;
      void send(res, voiceArchive, req.headers.range, cut);
      return;
    }
    // The recogniser's files: something, but not the bytes the registry's checksums pin.
    if (zipformerPaths.has(path)) return void send(res, Buffer.from(`stand-in for ${path}\n`), req.headers.range);
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not on this fake host\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    mirror: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    voiceArchive,
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
