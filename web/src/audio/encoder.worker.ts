/**
 * Microphone PCM in, Ogg pages out. Nothing is encoded until `start` (the
 * server's handshake): every conversation gets a fresh stream that begins
 * with its header pages.
 */
import type { EncoderCommand, EncoderReport } from './messages.js';
import { createEncoderFactory, type Codec, type PacketEncoder, type PacketEncoderFactory } from './opus-codecs.js';
import { OggPageWriter, pageGranule } from './ogg-page-writer.js';

const post = (report: EncoderReport, transfer: Transferable[] = []) => postMessage(report, { transfer });
const fail = (message: string) => post({ type: 'error', message });

let codec: Promise<Codec<PacketEncoderFactory>> | undefined;
let encoder: PacketEncoder | undefined;

function stop(): void {
  encoder?.close();
  encoder = undefined;
}

async function start(): Promise<void> {
  stop();
  const { create } = await codec!;
  const writer = new OggPageWriter('quillman-web');
  encoder = create((packet) => {
    for (const page of writer.write(packet)) post({ type: 'page', page, granule: pageGranule(page) }, [page.buffer]);
  }, fail);
}

onmessage = (e: MessageEvent<EncoderCommand>) => {
  const command = e.data;
  switch (command.type) {
    case 'init':
      codec = createEncoderFactory(command.forceWasm);
      codec.then(({ backend }) => post({ type: 'ready', backend }), (err: Error) => fail(`No Opus encoder could be loaded: ${err.message}`));
      return;
    case 'start':
      start().catch((err: Error) => fail(`The Opus encoder could not start: ${err.message}`));
      return;
    case 'stop':
      stop();
      return;
    case 'pcm':
      encoder?.encode(command.pcm);
  }
};
