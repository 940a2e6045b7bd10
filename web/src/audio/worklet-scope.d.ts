/**
 * The AudioWorkletGlobalScope, declared here because TypeScript's DOM library
 * does not describe it and @types/audioworklet cannot share a program with
 * the DOM library the rest of the app needs.
 */
declare abstract class AudioWorkletProcessor {
  readonly port: MessagePort;
  constructor(options?: AudioWorkletNodeOptions);
  abstract process(inputs: Float32Array[][], outputs: Float32Array[][], parameters: Record<string, Float32Array>): boolean;
}

declare function registerProcessor(name: string, processorCtor: new (options: AudioWorkletNodeOptions) => AudioWorkletProcessor): void;

/** Frame index of the quantum being processed, on the AudioContext's clock. */
declare const currentFrame: number;
declare const sampleRate: number;
