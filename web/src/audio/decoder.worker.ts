/**
 * Ogg Opus from the server in, PCM out straight to the playout worklet
 * through its own MessagePort, so decoding and delivery never wait on the
 * main thread.
 */
import type { DecoderCommand, DecoderReport, PlayoutCommand } from './messages.js';
import { createDecoderFactory } from './opus-codecs.js';
import { OggOpusStreamDecoder } from './ogg-opus-stream-decoder.js';

const post = (report: DecoderReport) => postMessage(report);
const fail = (message: string) => post({ type: 'error', message });

let playout: MessagePort | undefined;
let stream: OggOpusStreamDecoder | undefined;
/** Audio that arrived while the codec was loading, decoded once it is ready. */
let pending: Uint8Array[] = [];

function deliver(pcm: Float32Array): void {
  const command: PlayoutCommand = { type: 'audio', pcm };
  playout?.postMessage(command, [pcm.buffer]);
}

onmessage = (e: MessageEvent<DecoderCommand>) => {
  const command = e.data;
  switch (command.type) {
    case 'init':
      createDecoderFactory(fail, command.forceWasm).then(
        ({ backend, create }) => {
          // Copy: a view into a shared buffer must not be transferred to the worklet.
          stream = new OggOpusStreamDecoder(create, (pcm) => deliver(pcm.slice()));
          for (const bytes of pending) stream.push(bytes);
          pending = [];
          post({ type: 'ready', backend });
        },
        (err: Error) => fail(`No Opus decoder could be loaded: ${err.message}`),
      );
      return;
    case 'connect':
      playout = command.port;
      return;
    case 'ogg':
      if (stream) stream.push(command.bytes);
      else pending.push(command.bytes);
      return;
    case 'reset':
      stream?.reset();
      pending = [];
  }
};
