import { useEffect, useState } from 'react';
import { loadSettings, saveSettings, type Settings } from '../settings/settings.js';
import type { VoiceSession } from '../session/voice-session.js';
import { Downloads } from './Downloads.js';
import { LevelMeter } from './LevelMeter.js';
import { SettingsPanel } from './SettingsPanel.js';
import { StatsPanel } from './StatsPanel.js';
import { StatusBanner } from './StatusBanner.js';
import { TranscriptView } from './TranscriptView.js';
import { useSession } from './use-session.js';

const ACTIVE = new Set(['connecting', 'queued', 'warming-up', 'live', 'ending-soon']);

export function App({ session }: { session: VoiceSession }) {
  const snapshot = useSession(session);
  const [settings, setSettings] = useState<Settings>(() => loadSettings());
  useEffect(() => {
    saveSettings(settings);
  }, [settings]);
  const active = ACTIVE.has(snapshot.phase.name);
  const audio = session.audioEngine;
  const retry = snapshot.phase.name === 'error' || snapshot.phase.name === 'ended';

  return (
    <div className="app">
      <header className="header">
        <h1>QuiLLMan</h1>
        <p className="tagline">Full-duplex voice chat</p>
      </header>
      <main className="main">
        <div className="column">
          <StatusBanner phase={snapshot.phase} endsAt={snapshot.endsAt} />
          <div className="panel controls">
            <div className="row">
              {active ? (
                <button type="button" className="primary danger" onClick={() => session.disconnect()}>
                  Disconnect
                </button>
              ) : (
                <button type="button" className="primary" onClick={() => void session.connect(settings)}>
                  {retry ? 'Reconnect' : 'Connect'}
                </button>
              )}
              <button type="button" className="secondary" aria-pressed={snapshot.muted} onClick={() => session.setMuted(!snapshot.muted)}>
                {snapshot.muted ? 'Unmute' : 'Mute'}
              </button>
            </div>
            <div className="meters">
              <LevelMeter label={snapshot.muted ? 'You (muted)' : 'You'} analyser={active ? audio?.micAnalyser : undefined} />
              <LevelMeter label="Model" analyser={active ? audio?.outputAnalyser : undefined} />
            </div>
          </div>
          <TranscriptView entries={snapshot.transcript} />
        </div>
        <div className="column">
          <StatsPanel stats={snapshot.stats} codecs={snapshot.codecs} engine={snapshot.engine} />
          <SettingsPanel settings={settings} onChange={setSettings} locked={active} />
          <Downloads recorder={session.conversation} transcript={snapshot.transcript} available={snapshot.hasRecording} />
        </div>
      </main>
    </div>
  );
}
