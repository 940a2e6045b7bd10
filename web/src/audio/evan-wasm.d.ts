/** The browser build of libopus that @evan/opus's author publishes (the same API as @evan/opus). */
declare module '@evan/wasm/target/opus/deno.js' {
  type Application = 'voip' | 'audio' | 'restricted_lowdelay';
  export class Encoder {
    constructor(options: { channels: 1 | 2; sample_rate: 8000 | 12000 | 16000 | 24000 | 48000; application?: Application });
    /** 16-bit PCM in, one Opus packet out. */
    encode(pcm: ArrayBufferView): Uint8Array;
    set bitrate(value: number | 'auto' | 'max');
    drop(): void;
  }
  export class Decoder {
    constructor(options: { channels: 1 | 2; sample_rate: 8000 | 12000 | 16000 | 24000 | 48000 });
    /** One Opus packet in, 16-bit PCM bytes out. */
    decode(packet: ArrayBufferView): Uint8Array;
    drop(): void;
  }
}
