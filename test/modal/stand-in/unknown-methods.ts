/**
 * Part of the Modal control-plane STAND-IN (see stand-in.ts): every other
 * method of Modal's API answers UNIMPLEMENTED, loudly. Their names and
 * streaming kinds are read from the service definition inside the installed
 * SDK, so a call the stand-in lacks is reported by name (and counted) instead
 * of vanishing into grpc-js's generic reply.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { status, type Server, type ServerErrorResponse } from '@grpc/grpc-js';

export interface SdkMethod {
  name: string;
  requestStream: boolean;
  responseStream: boolean;
}

/** The methods of `modal.client.ModalClient` as the installed SDK defines them; empty if its bundle cannot be read. */
export function sdkMethods(): SdkMethod[] {
  let source: string;
  try {
    source = readFileSync(createRequire(import.meta.url).resolve('modal'), 'utf8');
  } catch {
    return [];
  }
  const start = source.indexOf('fullName: "modal.client.ModalClient"');
  if (start < 0) return [];
  const found: SdkMethod[] = [];
  const pattern = /name: "(\w+)",\s*requestType: \w+,\s*requestStream: (true|false),\s*responseType: \w+,\s*responseStream: (true|false)/g;
  pattern.lastIndex = start;
  for (let m = pattern.exec(source); m; m = pattern.exec(source)) {
    // The definition ends where another service's starts.
    if (source.lastIndexOf('fullName: "', m.index) > start) break;
    found.push({ name: m[1]!, requestStream: m[2] === 'true', responseStream: m[3] === 'true' });
  }
  return found;
}

const passThrough = (value: Buffer) => value;

export function registerUnknownMethods(server: Server, implemented: ReadonlySet<string>, report: (method: string) => void): number {
  let count = 0;
  for (const method of sdkMethods()) {
    if (implemented.has(method.name)) continue;
    const refusal = (): ServerErrorResponse => {
      report(method.name);
      return Object.assign(new Error(`Modal stand-in does not implement ${method.name}`), { code: status.UNIMPLEMENTED, details: `Modal stand-in does not implement ${method.name}` });
    };
    const path = `/modal.client.ModalClient/${method.name}`;
    const kind = method.requestStream ? (method.responseStream ? 'bidi' : 'clientStream') : method.responseStream ? 'serverStream' : 'unary';
    const handler =
      kind === 'unary' || kind === 'clientStream'
        ? (_call: unknown, callback: (err: ServerErrorResponse) => void) => callback(refusal())
        : (call: { emit(event: 'error', err: ServerErrorResponse): void }) => call.emit('error', refusal());
    server.register(path, handler as never, passThrough, passThrough, kind);
    count++;
  }
  return count;
}
