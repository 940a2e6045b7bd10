/**
 * Keeps both sides of the conversation on the AudioContext's clock: what the
 * microphone captured and what was played, each stamped with its frame.
 * Mixed, they are the conversation as the user heard it; apart, they let a
 * test line up what was spoken with what came back.
 */
import { int16ToFloat } from '../../../src/audio/pcm.js';
import { SAMPLE_RATE } from './messages.js';

interface Track {
  chunks: Int16Array[];
  start: number;
  length: number;
}

function emptyTrack(): Track {
  return { chunks: [], start: -1, length: 0 };
}

function append(track: Track, pcm: Float32Array, frame: number): void {
  if (track.start < 0) track.start = frame;
  // Frames are contiguous on one clock; a gap (a dropped message) is filled with silence.
  const gap = frame - (track.start + track.length);
  if (gap > 0) {
    track.chunks.push(new Int16Array(gap));
    track.length += gap;
  }
  const int16 = new Int16Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) int16[i] = Math.max(-32768, Math.min(32767, Math.round(pcm[i] * 32767)));
  track.chunks.push(int16);
  track.length += int16.length;
}

function flatten(track: Track): Float32Array {
  const out = new Float32Array(track.length);
  let at = 0;
  for (const chunk of track.chunks) {
    out.set(int16ToFloat(chunk), at);
    at += chunk.length;
  }
  return out;
}

export interface RecordedTrack {
  /** AudioContext frame of the first sample, −1 when empty. */
  start: number;
  pcm: Float32Array;
}

export class ConversationRecorder {
  private mic = emptyTrack();
  private played = emptyTrack();
  readonly sampleRate = SAMPLE_RATE;

  addMic(pcm: Float32Array, frame: number): void {
    append(this.mic, pcm, frame);
  }

  addPlayed(pcm: Float32Array, frame: number): void {
    append(this.played, pcm, frame);
  }

  micTrack(): RecordedTrack {
    return { start: this.mic.start, pcm: flatten(this.mic) };
  }

  playedTrack(): RecordedTrack {
    return { start: this.played.start, pcm: flatten(this.played) };
  }

  /** Both sides summed on their shared clock, clipped to [−1, 1]. */
  mix(): Float32Array {
    const tracks = [this.micTrack(), this.playedTrack()].filter((t) => t.start >= 0);
    if (tracks.length === 0) return new Float32Array(0);
    const start = Math.min(...tracks.map((t) => t.start));
    const end = Math.max(...tracks.map((t) => t.start + t.pcm.length));
    const out = new Float32Array(end - start);
    for (const t of tracks) for (let i = 0; i < t.pcm.length; i++) out[t.start - start + i] += t.pcm[i];
    for (let i = 0; i < out.length; i++) out[i] = Math.max(-1, Math.min(1, out[i]));
    return out;
  }
}
