/** One conversation's recogniser. Calls are made one at a time, in stream order. */
export interface RecognizerSession {
  /** Starts an utterance (the engine calls this at VAD onset, with pre-roll audio following). */
  begin(): Promise<void>;
  /** 16 kHz mono PCM. */
  accept(pcm16k: Float32Array): Promise<void>;
  /** Best hypothesis so far for the current utterance ('' when none). */
  partial(): string;
  /** Ends the utterance; resolves to its final text. */
  finish(): Promise<string>;
  /** Ends the utterance and forgets it (echo, noise). */
  cancel(): Promise<void>;
  dispose(): void;
}

export interface SttStage {
  readonly name: string;
  create(): Promise<RecognizerSession>;
  dispose?(): Promise<void>;
}

export function normaliseTranscript(text: string): string {
  return text
    .toLowerCase()
    .replace(/<[^>]*>|\[[^\]]*\]|\([^)]*\)/g, ' ')
    .replace(/[^a-z0-9' ]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}
