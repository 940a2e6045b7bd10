/** Speech probability for 16 kHz audio, in small fixed windows. */
export interface VoiceActivityDetector {
  readonly name: string;
  /** Window length in samples at 16 kHz. */
  readonly windowSamples: number;
  /** Feeds 16 kHz PCM of any length; returns one probability per window completed by this call. Await each call before the next: windows carry state. */
  process(pcm16k: Float32Array): Promise<number[]>;
  /** Forgets the recurrent state (new conversation). */
  reset(): void;
  dispose(): void;
}

/** Process-wide part of a VAD (loaded model); hands out per-conversation detectors. */
export interface VadStage {
  readonly name: string;
  create(): VoiceActivityDetector;
  dispose?(): Promise<void>;
}
