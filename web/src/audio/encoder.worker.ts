/**
 * Microphone PCM in (straight from the capture worklet), Ogg pages out
 * (straight to the connection worker). Nothing is encoded until the
 * connection worker says `start` (the server's handshake): every
 * conversation gets a fresh stream that begins with its header pages.
 */
import { pageGranule } from '../../../src/protocol/index.js';
import type { EncodedPage, EncoderCommand, EncoderControl, EncoderReport, MicFrame } from './messages.js';
import { createEncoderFactory, type Codec, type PacketEncoder, type PacketEncoderFactory } from './opus-codecs.js';
import { OggPageWriter } from './ogg-page-writer.js';

const report = (message: EncoderReport) => postMessage(message);
const fail = (message: string) => report({ type: 'error', message });

let codec: Promise<Codec<PacketEncoderFactory>> | undefined;
let encoder: PacketEncoder | undefined;
let pages: MessagePort | undefined;

function stop(): void {
  encoder?.close();
  encoder = undefined;
}

async function start(): Promise<void> {
  stop();
  const { create } = await codec!;
  const writer = new OggPageWriter('quillman-web');
  encoder = create((packet) => {
    for (const page of writer.write(packet)) {
      const message: EncodedPage = { page, granule: pageGranule(page) };
      pages?.postMessage(message, [page.buffer]);
    }
  }, fail);
}

onmessage = (e: MessageEvent<EncoderCommand>) => {
  const { forceWasm, capture, connection } = e.data;
  codec = createEncoderFactory(forceWasm);
  codec.then(({ backend }) => report({ type: 'ready', backend }), (err: Error) => fail(`No Opus encoder could be loaded: ${err.message}`));
  capture.onmessage = (m: MessageEvent<MicFrame>) => encoder?.encode(m.data.pcm);
  pages = connection;
  connection.onmessage = (m: MessageEvent<EncoderControl>) => {
    if (m.data.type === 'start') start().catch((err: Error) => fail(`The Opus encoder could not start: ${err.message}`));
    else stop();
  };
};
