import { useSyncExternalStore } from 'react';
import type { SessionSnapshot } from '../session/session-types.js';
import type { VoiceSession } from '../session/voice-session.js';

export function useSession(session: VoiceSession): SessionSnapshot {
  return useSyncExternalStore(session.subscribe, session.getSnapshot);
}
