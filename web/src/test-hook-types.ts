/** The shape of `window.__quillman`, importable by Node-side tests without the app's browser modules. */
import type { RecordedTrack } from './audio/recorder.js';
import type { PlayoutStats } from './playout/playout-buffer.js';
import type { SessionSnapshot } from './session/session-types.js';

export interface QuillmanTestHook {
  snapshot(): SessionSnapshot;
  /** The playout worklet's latest counters, in samples. */
  playout(): PlayoutStats | undefined;
  mic(): RecordedTrack | undefined;
  played(): RecordedTrack | undefined;
  /** Every (clock, samples) arrival at the playout buffer, when tracing (`?trace=1`). */
  arrivals(): [number, number][];
  sampleRate(): number | undefined;
  outputLatency(): number | undefined;
}

declare global {
  interface Window {
    __quillman?: QuillmanTestHook;
  }
}
