import { useEffect, useState } from 'react';
import type { Phase } from '../session/session-types.js';

function useSecondsUntil(endsAt: number | undefined): number | undefined {
  const [now, setNow] = useState(() => performance.now());
  useEffect(() => {
    if (endsAt === undefined) return;
    const timer = setInterval(() => setNow(performance.now()), 1000);
    return () => clearInterval(timer);
  }, [endsAt]);
  return endsAt === undefined ? undefined : Math.max(0, Math.round((endsAt - now) / 1000));
}

const clock = (s: number) => `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;

/** The phase of the conversation, announced politely to screen readers. */
export function StatusBanner({ phase, endsAt }: { phase: Phase; endsAt?: number }) {
  const left = useSecondsUntil(endsAt);
  let tone = 'neutral';
  let title: string;
  let detail: string | undefined;
  switch (phase.name) {
    case 'idle':
      title = 'Ready';
      detail = 'Press Connect and start talking. The model listens while it speaks: just talk over it.';
      break;
    case 'connecting':
      tone = 'busy';
      title = phase.step === 'microphone' ? 'Starting the microphone…' : 'Connecting…';
      break;
    case 'queued':
      tone = 'busy';
      title = `Waiting in line: you are number ${phase.position}`;
      detail = `${phase.queued} waiting. You will be connected as soon as a conversation slot frees up.`;
      break;
    case 'warming-up':
      tone = 'busy';
      title = 'Warming up the model…';
      detail = [phase.message, phase.fraction !== undefined ? `${Math.round(phase.fraction * 100)}%` : undefined].filter(Boolean).join(' · ') || undefined;
      break;
    case 'live':
      tone = 'live';
      title = 'Live';
      detail = left !== undefined ? `${clock(left)} left in this conversation` : 'Talk whenever you like.';
      break;
    case 'ending-soon':
      tone = 'warn';
      title = 'Ending soon';
      detail = `${clock(left ?? 0)} left. Download the conversation below if you want to keep it.`;
      break;
    case 'ended':
      title = 'Conversation ended';
      detail = `${phase.reason} Press Connect to start a new one.`;
      break;
    case 'error':
      tone = 'error';
      title = phase.problem.title;
      detail = phase.problem.action;
  }
  return (
    <section className={`status status-${tone}`} role={phase.name === 'error' ? 'alert' : 'status'} aria-live="polite" data-phase={phase.name}>
      <h2 className="status-title">
        <span className="status-dot" aria-hidden="true" />
        {title}
      </h2>
      {detail && <p className="status-detail">{detail}</p>}
      {phase.name === 'error' && phase.problem.detail && <p className="status-extra">Details: {phase.problem.detail}</p>}
    </section>
  );
}
