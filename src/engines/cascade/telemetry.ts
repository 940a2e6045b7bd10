/**
 * The events that tell a client (and the benchmarks) where a reply's time
 * went: `timings` when a reply is first heard, `stats` after each reply.
 */
import type { EngineEvent } from '../engine.js';
import type { ActiveReply } from './reply-output.js';
import type { StageUsage } from './stage-meter.js';

const since = (from: number | undefined, to: number | undefined) => (from !== undefined && to !== undefined ? Math.round(to - from) : undefined);

/** Each stage's share of a reply's latency; see docs/cascade.md (Timings). */
export function timingsEvent(a: ActiveReply): EngineEvent {
  const t = a.reply.timings;
  return {
    type: 'timings',
    turn: a.turn,
    kind: a.kind,
    speculative: a.speculative,
    redone: a.redone,
    vadEndOfTurnMs: a.vadEndOfTurnMs,
    sttFinalMs: a.sttFinalMs !== undefined ? Math.round(a.sttFinalMs) : undefined,
    sttFinalEarly: a.sttFinalEarly,
    lmFirstTokenMs: since(t.lmStartAt, t.lmFirstTokenAt),
    firstSentenceMs: since(t.lmStartAt ?? t.ttsFirstRequestAt, t.firstSentenceAt),
    firstTtsChunkMs: since(t.ttsFirstRequestAt, t.firstTtsChunkAt),
    /** Turn decided → first reply audio out; negative parts were hidden by speculation. */
    responseMs: since(a.turnEndAt, a.firstAudioAt),
    lmStartedBeforeTurnEndMs: t.lmStartAt !== undefined && a.turnEndAt !== undefined ? Math.max(0, Math.round(a.turnEndAt - t.lmStartAt)) : undefined,
  };
}

/** What each stage has cost over the conversation so far, with real-time factors (busy time / audio time). */
export function statsEvent(turn: number, streamMs: number, usage: StageUsage): EngineEvent {
  const { vad, stt, lm, tts } = usage;
  const round = (v: number, digits = 1) => Math.round(v * 10 ** digits) / 10 ** digits;
  const rtf = (busy: number, audio: number) => (audio > 0 ? round(busy / audio, 3) : undefined);
  return {
    type: 'stats',
    turn,
    streamMs,
    vad: { busyMs: round(vad.busyMs), audioMs: vad.audioMs, rtf: rtf(vad.busyMs, vad.audioMs) },
    stt: { busyMs: round(stt.busyMs), audioMs: stt.audioMs, rtf: rtf(stt.busyMs, stt.audioMs) },
    lm: { busyMs: round(lm.busyMs), pieces: lm.pieces, requests: lm.requests, msPerPiece: lm.pieces > 0 ? round(lm.busyMs / lm.pieces, 2) : undefined },
    tts: { busyMs: round(tts.busyMs), audioMs: round(tts.audioMs), sentences: tts.sentences, rtf: rtf(tts.busyMs, tts.audioMs) },
  };
}
