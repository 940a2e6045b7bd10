import { memo } from 'react';
import type { ConversationRecorder } from '../audio/recorder.js';
import { transcriptAsText, type TranscriptEntry } from '../session/transcript.js';

function save(name: string, blob: Blob): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** wavefile is loaded on first download: most conversations are never saved. */
async function wavOf(pcm: Float32Array, sampleRate: number): Promise<Blob> {
  const { WaveFile } = await import('wavefile');
  const wav = new WaveFile();
  wav.fromScratch(1, sampleRate, '32f', pcm);
  wav.toBitDepth('16');
  return new Blob([wav.toBuffer() as Uint8Array<ArrayBuffer>], { type: 'audio/wav' });
}

const stamp = () => new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');

// Memoised: App re-renders on every stats report (4 a second), which leaves these props unchanged.
export const Downloads = memo(function Downloads({ recorder, transcript, available }: { recorder?: ConversationRecorder; transcript: TranscriptEntry[]; available: boolean }) {
  return (
    <section className="panel downloads" aria-labelledby="downloads-title">
      <h2 id="downloads-title">Keep the conversation</h2>
      <div className="row">
        <button type="button" className="secondary" disabled={!available || !recorder} onClick={async () => recorder && save(`quillman-${stamp()}.wav`, await wavOf(recorder.mix(), recorder.sampleRate))}>
          Download audio (WAV)
        </button>
        <button type="button" className="secondary" disabled={transcript.length === 0} onClick={() => save(`quillman-${stamp()}.txt`, new Blob([transcriptAsText(transcript)], { type: 'text/plain' }))}>
          Download transcript
        </button>
      </div>
      <p className="muted">Audio: both sides mixed, as you heard them, 24 kHz mono.</p>
    </section>
  );
});
