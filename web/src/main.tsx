import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { POLICY_NAMES, type PolicyName } from './playout/create-policy.js';
import { VoiceSession } from './session/voice-session.js';
import { installTestHook } from './test-hook.js';
import { App } from './ui/App.js';
import './styles.css';

// Diagnostics through the URL: ?policy=kyutai compares playout policies, ?codec=wasm forces the
// wasm codecs, ?trace=1 records playout arrivals for offline replay.
const params = new URLSearchParams(location.search);
const policy = params.get('policy');
const session = new VoiceSession({
  policy: (POLICY_NAMES as readonly string[]).includes(policy ?? '') ? (policy as PolicyName) : 'adaptive',
  forceWasm: params.get('codec') === 'wasm',
  traceArrivals: params.get('trace') === '1',
});
installTestHook(session);

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App session={session} />
  </StrictMode>,
);
