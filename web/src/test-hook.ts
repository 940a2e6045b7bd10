/**
 * `window.__quillman`: what browser tests and the benchmark read back. Copies
 * only, so nothing outside can disturb a running conversation.
 */
import type { VoiceSession } from './session/voice-session.js';
import type {} from './test-hook-types.js';

export function installTestHook(session: VoiceSession): void {
  window.__quillman = {
    snapshot: () => session.getSnapshot(),
    playout: () => session.lastPlayout && { ...session.lastPlayout },
    mic: () => session.conversation?.micTrack(),
    played: () => session.conversation?.playedTrack(),
    arrivals: () => session.arrivals.slice(),
    sampleRate: () => session.audioEngine?.context.sampleRate,
    outputLatency: () => session.audioEngine?.outputLatency,
  };
}
