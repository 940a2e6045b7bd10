/**
 * The cascade engine end to end in-process: Silero VAD, PocketSphinx, flite
 * and a scripted language model (so the reply's words are known), driven with
 * 80 ms frames of generated speech. Times are stream times (frames × 80 ms)
 * unless said otherwise.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ENGINE_FRAME_SAMPLES } from '../../src/engines/engine.js';
import type { ChatMessage, TtsStage } from '../../src/engines/cascade/index.js';
import { commandTts } from '../../src/engines/cascade/tts/command.js';
import { echoOf, mix, openHarness, run, type Harness } from './driver.js';
import { scriptedLm, speak, toFrames, type ScriptedLm } from './helpers.js';

const FRAME_MS = 80;
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function lastUser(messages: ChatMessage[]): string {
  return [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
}

describe('cascade engine', () => {
  it('answers a spoken question with audio and text in step, transcripts and timings', async () => {
    const reply = 'Hello there! I am a test bot. This is my third sentence.';
    const lm = scriptedLm(() => reply);
    h = await openHarness(lm);
    const user = toFrames(await speak('hello, how are you today?'));
    const onset = 6;
    await run(h, 200, (i) => (i >= onset ? user[i - onset] : undefined), {
      until: () => h!.sink.eventsOf('turn').some((e) => e.state === 'listening' && e.turn === 1),
    });
    const { sink } = h;

    expect(sink.events[0]).toMatchObject({ type: 'engine', name: 'cascade', stages: { vad: 'silero-v5', stt: 'pocketsphinx', lm: 'scripted', tts: 'flite-slt' } });
    const partials = sink.eventsOf('transcript').filter((e) => e.role === 'user' && !e.final);
    const finals = sink.eventsOf('transcript').filter((e) => e.role === 'user' && e.final);
    expect(partials.length).toBeGreaterThan(0);
    expect(finals).toHaveLength(1);
    expect(finals[0].text).toMatch(/hello/);
    expect(lastUser(lm.calls[lm.calls.length - 1])).toBe(finals[0].text);

    // The whole reply went out as text, sentence by sentence, each with the frame its audio starts in.
    expect(sink.replyText()).toBe(reply);
    expect(sink.texts).toHaveLength(3);
    const voiced = sink.voicedFrames();
    expect(voiced.length * FRAME_MS).toBeGreaterThan(2000);
    expect(sink.texts[0].frame).toBe(voiced[0]);
    for (const t of sink.texts) expect(voiced).toContain(t.frame);
    // No reply audio before the user's turn ended.
    expect(voiced[0]).toBeGreaterThanOrEqual(finals[0].frame);
    // Every output frame is a whole 80 ms frame.
    expect(sink.frames.every((f) => f.length === ENGINE_FRAME_SAMPLES)).toBe(true);

    const timings = sink.eventsOf('timings');
    expect(timings).toHaveLength(1);
    expect(timings[0]).toMatchObject({ turn: 1, kind: 'answer' });
    for (const k of ['vadEndOfTurnMs', 'sttFinalMs', 'lmFirstTokenMs', 'firstSentenceMs', 'firstTtsChunkMs', 'responseMs']) {
      expect(typeof timings[0][k], k).toBe('number');
    }
    // "…how are you today" ends on a word a sentence can end on: the short wait.
    expect(timings[0].vadEndOfTurnMs).toBeGreaterThanOrEqual(320);
    expect(h.conv.memory.history()).toEqual([
      { role: 'user', content: finals[0].text },
      { role: 'assistant', content: reply },
    ]);
  });

  it('stops at once on detecting the user talking over it, flushes, and remembers only what was heard', async () => {
    const sentences = [
      'Sure.',
      'Let me tell you a rather long story about a lighthouse keeper.',
      'He lived alone on a rocky island for forty years.',
      'Every night he climbed the stairs to light the lamp.',
      'One winter a terrible storm broke the great window.',
      'The ships kept sailing by all the same.',
    ];
    // The first two sentences come fast; then the model is slow, so it is still generating when the user cuts in.
    const lm = scriptedLm((m) => (m.filter((x) => x.role === 'user').length === 1 ? sentences.join(' ') : 'Of course, go ahead.'), (i) => (i < 14 ? 2 : 40));
    // flite, watched: when does each synthesis end, and was it cut short?
    const flite = commandTts({ kind: 'flite' });
    const synthEnds: { text: string; at: number; aborted: boolean }[] = [];
    const tts: TtsStage = {
      name: 'flite-watched',
      async *synthesize(text, signal) {
        try {
          yield* flite.synthesize(text, signal);
        } finally {
          synthEnds.push({ text, at: performance.now(), aborted: signal.aborted });
        }
      },
    };
    h = await openHarness(lm, { hangMs: 600 }, undefined, { tts });
    const question = toFrames(await speak('tell me a story'));
    const interruption = toFrames(await speak('wait, stop please, I have a question'));
    await run(h, 300, (i) => (i >= 3 ? question[i - 3] : undefined), { until: () => h!.conv.state === 'speaking' });
    // Let the bot talk for about 2.4 s, with its voice leaking back into the microphone at -20 dB. Counted in voiced
    // frames: the stream runs far faster than real time here, and a busy machine's synthesiser may fall behind it.
    const talking = h.sink.voicedFrames().length;
    await run(h, 300, (i) => echoOf(h!, i, 3, -20), { until: () => h!.sink.voicedFrames().length - talking >= 30 });
    const onset = h.sink.frames.length;
    await run(h, 200, (i) => mix(echoOf(h!, i, 3, -20), interruption[i - onset]), {
      until: () => h!.sink.eventsOf('turn').some((e) => e.state === 'listening' && e.turn === 2),
    });
    const { sink } = h;
    const flush = sink.eventsOf('flush');
    expect(flush).toHaveLength(1);
    expect(flush[0].reason).toBe('barge-in');
    const detected = flush[0].frame;
    // Detection needs ~240 ms of speech (echo guard) plus VAD latency.
    expect((detected - onset) * FRAME_MS).toBeLessThanOrEqual(800);

    // From the detection frame on, no reply audio until the next answer starts.
    const nextThinking = sink.eventsOf('turn').find((e) => e.state === 'thinking' && e.turn === 2)!;
    expect(nextThinking).toBeDefined();
    const lateAudio = sink.voicedFrames().filter((f) => f >= detected && f < nextThinking.frame);
    expect(lateAudio).toEqual([]);
    // Generation and synthesis stopped right away: the model (one piece per 40 ms by then) handed out at most one more
    // piece after the flush, and every sentence of the story still being synthesised was cut, none ran on. Ordering
    // only: durations belong to the benchmarks.
    const flushAt = flush[0].at;
    expect(lm.aborts).toBeGreaterThanOrEqual(1);
    expect(lm.yieldedAt.filter((t) => t > flushAt && t < lm.abortedAt[0]).length).toBeLessThanOrEqual(1);
    const story = synthEnds.filter((e) => sentences.includes(e.text));
    expect(story.filter((e) => e.at > flushAt).every((e) => e.aborted)).toBe(true);

    // Memory holds what the user could have heard, not the whole story.
    const assistant = h.conv.memory.history().filter((m) => m.role === 'assistant');
    const heard = assistant[0].content;
    expect(heard.startsWith('Sure. Let me'), heard).toBe(true);
    expect(heard).toMatch(/…$/);
    expect(heard.length).toBeLessThan(sentences.join(' ').length / 2);
    expect(heard).not.toContain('forty years');
    expect(flush[0].played).toBe(heard);
    // The next request carries the truncated reply and the interruption.
    const second = lm.calls[lm.calls.length - 1];
    expect(second.find((m) => m.role === 'assistant')?.content).toBe(heard);
    expect(lastUser(second)).toMatch(/question|stop|wait/);
  });

  it('is not interrupted by its own voice leaking back into the microphone', async () => {
    const reply = 'I will now talk for a while. My own voice comes back through your speakers. That must not stop me. Here is one more sentence for good measure.';
    const lm = scriptedLm(() => reply);
    h = await openHarness(lm);
    const question = toFrames(await speak('can you hear yourself'));
    for (const [delay, gainDb] of [
      [3, -20],
      [5, -16],
    ] as const) {
      const start = h.sink.frames.length;
      await run(h, 600, (i) => (i - start < question.length ? question[i - start] : echoOf(h!, i, delay, gainDb)), {
        until: () => h!.conv.state === 'listening' && h!.sink.frames.length - start > question.length + 40 && h!.sink.eventsOf('turn').filter((e) => e.state === 'listening').length >= (delay === 3 ? 1 : 2),
      });
    }
    const { sink } = h;
    expect(sink.eventsOf('flush')).toEqual([]);
    expect(sink.replyText()).toBe(`${reply} ${reply}`);
    // Both replies were spoken to the end and remembered whole; the echo never became a user turn.
    const assistants = h.conv.memory.history().filter((m) => m.role === 'assistant');
    expect(assistants.map((m) => m.content)).toEqual([reply, reply]);
    expect(sink.eventsOf('transcript').filter((e) => e.role === 'user' && e.final)).toHaveLength(2);
  });

  it('(control) the same -20 dB leak does interrupt when the echo guard is switched off', async () => {
    const reply = 'I will now talk for a while. My own voice comes back through your speakers. That must not stop me.';
    // A 40 dB margin lets anything through: only the VAD decides, and Silero hears the leak as speech.
    h = await openHarness(scriptedLm(() => reply), { echoMarginDb: 40 });
    const question = toFrames(await speak('can you hear yourself'));
    await run(h, 400, (i) => (i < question.length ? question[i] : echoOf(h!, i, 3, -20)), {
      until: () => h!.sink.eventsOf('flush').length > 0,
    });
    expect(h.sink.eventsOf('flush').length).toBeGreaterThan(0);
  });

  it('says goodbye and ends the conversation when the user does', async () => {
    const lm = scriptedLm(() => 'This should not be said.');
    h = await openHarness(lm, { farewell: 'Goodbye! Talk soon.' });
    const bye = toFrames(await speak('goodbye'));
    await run(h, 300, (i) => (i >= 3 ? bye[i - 3] : undefined), { until: () => h!.sink.eventsOf('end').length > 0 });
    const { sink } = h;
    expect(lm.calls).toHaveLength(0);
    expect(sink.replyText()).toBe('Goodbye! Talk soon.');
    const end = sink.eventsOf('end');
    expect(end).toEqual([expect.objectContaining({ type: 'end', reason: 'user-goodbye' })]);
    // The farewell was played before the end event.
    const voiced = sink.voicedFrames();
    expect(voiced.length).toBeGreaterThan(5);
    expect(voiced[voiced.length - 1]).toBeLessThanOrEqual(end[0].frame);
    // Afterwards the engine is done: further frames are silent and nothing more is said.
    const before = sink.frames.length;
    const events = sink.events.length;
    await run(h, 5, () => undefined);
    expect(sink.voicedFrames().filter((f) => f >= before)).toEqual([]);
    expect(sink.events.length).toBe(events);
    expect(h.conv.state).toBe('ended');
  });

  it('checks in once after a long silence', async () => {
    const lm = scriptedLm(() => 'unused');
    h = await openHarness(lm, { idlePromptAfterMs: 2000, idlePrompt: 'Are you still there?' });
    await run(h, Math.round(9000 / FRAME_MS), () => undefined);
    expect(h.sink.replyText()).toBe('Are you still there?');
    expect(h.sink.texts[0].frame * FRAME_MS).toBeGreaterThanOrEqual(2000);
    expect(lm.calls).toHaveLength(0);
  });

  it('starts the model on the partial transcript, and restarts it when the user goes on talking', async () => {
    // The speculative answer must still be running when the user goes on, however slowly this machine
    // feeds frames: the first request's first word never comes before it is aborted.
    const lm: ScriptedLm = scriptedLm(() => 'Okay, here is one about a cat.', (index) => (lm.calls.length <= 1 && index === 0 ? 60_000 : 100));
    // An 800 ms wait whatever the words, the model and the recogniser's early close at 240 ms of silence.
    h = await openHarness(lm, { hangMs: 800, hangAfterCompleteMs: 800, hangAfterIncompleteMs: 800, speculativeAfterMs: 240, speculativeLeadMs: 560, finalPassLeadMs: 560 });
    const part1 = toFrames(await speak('tell me'));
    const part2 = toFrames(await speak('a joke about cats'));
    // "tell me" … 480 ms pause (past the speculative point, short of the hang time) … "a joke about cats".
    const gap = 6;
    const input = [...part1, ...Array.from({ length: gap }, () => undefined), ...part2];
    await run(h, 300, (i) => (i >= 3 ? input[i - 3] : undefined), {
      until: () => h!.sink.eventsOf('turn').some((e) => e.state === 'listening' && e.turn === 1),
    });
    expect(lm.calls.length).toBeGreaterThanOrEqual(2);
    expect(lm.aborts).toBeGreaterThanOrEqual(1);
    expect(lastUser(lm.calls[0])).not.toMatch(/joke/);
    expect(lastUser(lm.calls[lm.calls.length - 1])).toMatch(/joke/);
    expect(h.sink.replyText()).toBe('Okay, here is one about a cat.');
  });

  it('apologises out loud and reports the error when the language model fails', async () => {
    const failing = scriptedLm(() => '');
    failing.createSession = async () => ({
      // eslint-disable-next-line require-yield
      async *generate() {
        throw new Error('model exploded');
      },
      async dispose() {},
    });
    h = await openHarness(failing);
    const q = toFrames(await speak('hello there'));
    await run(h, 200, (i) => (i >= 3 ? q[i - 3] : undefined), {
      until: () => h!.sink.eventsOf('turn').filter((e) => e.state === 'listening').length >= 1 && h!.sink.texts.length > 0 && h!.conv.state === 'listening',
    });
    expect(h.sink.errors.some((e) => /Language model failed: model exploded/.test(e.message) && !e.fatal)).toBe(true);
    expect(h.sink.replyText()).toMatch(/Sorry/);
  });

  it('ignores malformed frames and keeps going', async () => {
    h = await openHarness(scriptedLm(() => 'Fine.'));
    h.conv.pushFrame(new Float32Array(10));
    h.conv.pushFrame(new Float32Array(ENGINE_FRAME_SAMPLES).fill(Number.NaN));
    h.conv.pushFrame(new Float32Array(ENGINE_FRAME_SAMPLES).fill(5));
    await h.conv.whenIdle();
    await run(h, 5, () => undefined);
    expect(h.sink.frames.length).toBe(5);
    expect(h.sink.frames.every((f) => f.length === ENGINE_FRAME_SAMPLES)).toBe(true);
    expect(h.sink.errors.filter((e) => e.fatal)).toEqual([]);
    expect(h.conv.state).toBe('listening');
  });
});
