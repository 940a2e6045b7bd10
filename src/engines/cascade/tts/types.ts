/** Process-wide speech synthesiser. */
export interface TtsStage {
  readonly name: string;
  /**
   * Speaks one sentence. Yields engine-rate (24 kHz) mono chunks as they are
   * ready; stops promptly when `signal` aborts.
   */
  synthesize(text: string, signal: AbortSignal): AsyncIterable<Float32Array>;
  dispose?(): Promise<void>;
}
