import { memo, useEffect, useRef } from 'react';
import type { TranscriptEntry } from '../session/transcript.js';

// Memoised: App re-renders on every stats report (4 a second), which leaves these props unchanged.
export const TranscriptView = memo(function TranscriptView({ entries }: { entries: TranscriptEntry[] }) {
  const end = useRef<HTMLLIElement>(null);
  useEffect(() => {
    end.current?.scrollIntoView({ block: 'nearest' });
  }, [entries]);
  return (
    <section className="panel transcript" aria-labelledby="transcript-title">
      <h2 id="transcript-title">Transcript</h2>
      {entries.length === 0 ? (
        <p className="muted">The model’s words appear here as it speaks, and yours when the engine transcribes them.</p>
      ) : (
        <ol className="transcript-list" aria-live="polite" aria-relevant="additions">
          {entries.map((e) => (
            <li key={e.id} className={`line line-${e.role}${e.final ? '' : ' line-open'}`}>
              <span className="line-who">{e.role === 'user' ? 'You' : 'Model'}</span>
              <span className="line-text">{e.text}</span>
            </li>
          ))}
          <li ref={end} aria-hidden="true" className="transcript-end" />
        </ol>
      )}
    </section>
  );
});
