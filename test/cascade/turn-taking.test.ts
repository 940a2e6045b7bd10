/**
 * Turn-taking, speculation and barge-in in stream time, on the scripted
 * stand-ins of timeline.ts: the user's speech is a script of segments, the
 * models take their time in stream time, and every expectation is about
 * frames (80 ms each). Deterministic, and quick: no model runs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../src/engines/cascade/lm/types.js';
import { classifyEnding } from '../../src/engines/cascade/turn/end-of-turn.js';
import { FRAME_MS, openScene, type Scene } from './timeline.js';

let scene: Scene | undefined;
afterEach(async () => {
  await scene?.close();
  scene = undefined;
});

/** Settings the expectations below are worked out for (independent of the defaults). */
const TURNS = { hangMs: 600, hangAfterCompleteMs: 320, hangWhenReadyMs: 320, hangAfterIncompleteMs: 900, speculativeAfterMs: 160, speculativeLeadMs: 300, minBargeInMs: 240 };

const lastUser = (messages: ChatMessage[]) => [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
const eventFrame = (s: Scene, type: string, match: (e: Record<string, unknown>) => boolean = () => true) => s.sink.events.find((e) => e.type === type && match(e))?.frame;
const userFinals = (s: Scene) => s.sink.eventsOf('transcript').filter((e) => e.role === 'user' && e.final).map((e) => e.text);
const turnOver = (turn: number) => () => scene!.sink.eventsOf('turn').some((e) => e.state === 'listening' && e.turn === turn && e.reason === undefined);

describe('judging the words so far', () => {
  it('calls a sentence complete on a content word, incomplete on a function word or hesitation, and does not judge short fragments', () => {
    for (const words of ['what is the capital of france', 'can you recommend a good book', 'thank you very much', 'is it going to rain today']) expect(classifyEnding(words, 4), words).toBe('complete');
    for (const words of ['tell me about the', 'i went to the market and', 'my favourite colour is', 'what is the capital of', 'so i was thinking um', "and then i'm"]) expect(classifyEnding(words, 4), words).toBe('incomplete');
    // Fewer than four words ending on a content word: too little to go on.
    for (const words of ['yeah', 'set a timer', 'play some music', '']) expect(classifyEnding(words, 4), words).toBe('unknown');
    expect(classifyEnding('set a timer', 1)).toBe('complete');
  });
});

describe('turn-taking in stream time (scripted stages)', () => {
  it('ends the turn soon after a complete question, with the speculative reply ready to play on that very frame', async () => {
    scene = await openScene({ segments: [{ from: 400, to: 1600, words: 'what is the capital of france' }], config: TURNS });
    await scene.play(8000, turnOver(1));
    const s = scene;

    expect(userFinals(s)).toEqual(['what is the capital of france']);
    expect(s.sink.eventsOf('transcript').filter((e) => e.role === 'user' && !e.final).length).toBeGreaterThan(0);
    // Decided once 320 ms of silence followed the last word (within a frame: the VAD's windows straddle frames).
    const decided = eventFrame(s, 'turn', (e) => e.state === 'thinking')!;
    expect(s.frameEnd(decided) - 1600).toBeGreaterThanOrEqual(320);
    expect(s.frameEnd(decided) - 1600).toBeLessThanOrEqual(320 + FRAME_MS);
    // The model started at 160 ms of silence, so the first words were ready: they play in the frame the turn ended.
    const voiced = s.sink.voicedFrames();
    expect(voiced[0]).toBe(decided);
    expect(s.sink.eventsOf('timings')[0]).toMatchObject({ turn: 1, speculative: true, sttFinalEarly: true });
    expect(s.lm.calls).toHaveLength(1);
    expect(lastUser(s.lm.calls[0])).toBe('what is the capital of france');
    expect(s.sink.replyText()).toBe('Sure. Here is my answer to that.');
  });

  it('ends the turn at the shorter wait when the reply to the final words is ready, and at the longer one when it is not', async () => {
    const config = { ...TURNS, hangWhenReadyMs: 240, speculativeAfterMs: 20, speculativeLeadMs: 320 };
    // The model starts where the speech ends and its first words are ready well within 240 ms: the turn ends there.
    scene = await openScene({ segments: [{ from: 400, to: 1600, words: 'what is the capital of france' }], config });
    await scene.play(8000, turnOver(1));
    const quick = scene.sink.eventsOf('timings')[0];
    expect(quick.vadEndOfTurnMs).toBeGreaterThanOrEqual(240);
    expect(quick.vadEndOfTurnMs).toBeLessThan(240 + FRAME_MS);
    expect(scene.sink.voicedFrames()[0]).toBe(eventFrame(scene, 'turn', (e) => e.state === 'thinking'));
    await scene.close();

    // A slow model: nothing to play at 240 ms, so the turn waits the full 320 (the user had that long to go on).
    scene = await openScene({ segments: [{ from: 400, to: 1600, words: 'what is the capital of france' }], config, model: { firstMs: 400, perWordMs: 30 } });
    await scene.play(8000, turnOver(1));
    const slow = scene.sink.eventsOf('timings')[0];
    expect(slow.vadEndOfTurnMs).toBeGreaterThanOrEqual(320);
    expect(slow.vadEndOfTurnMs).toBeLessThan(320 + FRAME_MS);
  });

  it('waits through a pause after a function word, and answers the whole sentence once', async () => {
    scene = await openScene({
      segments: [
        { from: 400, to: 1200, words: 'tell me about the' },
        { from: 1700, to: 2500, words: 'history of rome' },
      ],
      config: TURNS,
    });
    await scene.play(8000, turnOver(1));
    const s = scene;
    expect(userFinals(s)).toEqual(['tell me about the history of rome']);
    // No reply of any kind began in the 500 ms pause: not even a speculative one (it would start at 900 - 300 ms).
    expect(s.lm.calls).toHaveLength(1);
    expect(lastUser(s.lm.calls[0])).toBe('tell me about the history of rome');
    expect(s.frameEnd(eventFrame(s, 'turn', (e) => e.state === 'thinking')!)).toBeGreaterThan(2500);
  });

  it('(control) the same pause after a word a sentence can end on is taken as the end of the turn', async () => {
    scene = await openScene({
      segments: [
        { from: 400, to: 1200, words: 'tell me about rome' },
        { from: 1700, to: 2500, words: 'and its history' },
      ],
      config: TURNS,
    });
    await scene.play(10_000, turnOver(2));
    expect(userFinals(scene)).toEqual(['tell me about rome', 'and its history']);
  });

  it('drops a speculative reply when the user goes on, unheard, and answers the whole turn', async () => {
    const story = 'Sure. Paris is sunny today. It will be warm all afternoon. Tomorrow brings rain. Then the weekend is bright again. Take a hat.';
    scene = await openScene({
      segments: [
        { from: 400, to: 1200, words: 'what is the weather' },
        { from: 1500, to: 2100, words: 'in paris today' },
      ],
      config: { ...TURNS, hangAfterCompleteMs: 400, hangWhenReadyMs: 400 },
      answer: () => story,
    });
    await scene.play(2100);
    const s = scene;
    // The guess on "what is the weather" was asked for at 160 ms of silence and dropped when the user went on.
    expect(s.lm.calls.length).toBeGreaterThanOrEqual(1);
    expect(lastUser(s.lm.calls[0])).toBe('what is the weather');
    expect(s.lm.aborts).toBe(1);
    // It was never heard, and had cost at most the ~2 s of audio an unconfirmed reply may synthesise.
    expect(s.sink.voicedFrames()).toEqual([]);
    expect(s.tts.requests.length).toBeGreaterThan(0);
    expect(s.tts.requests.map((r) => r.text).join(' ').split(' ').length * 250).toBeLessThanOrEqual(2000 + 6 * 250);
    await s.play(10_000, turnOver(1));
    expect(userFinals(s)).toEqual(['what is the weather in paris today']);
    expect(lastUser(s.lm.calls.at(-1)!)).toBe('what is the weather in paris today');
    expect(s.sink.replyText()).toBe(story);
  });

  it('starts the model on the partial words at a short pause without splitting the recognition', async () => {
    // The model may start at 80 ms of silence; the recogniser is only closed 160 ms before the turn would end.
    scene = await openScene({
      segments: [
        { from: 400, to: 1200, words: 'play me some music' },
        { from: 1320, to: 2200, words: 'by the beatles' },
      ],
      config: { ...TURNS, speculativeAfterMs: 80, speculativeLeadMs: 240, finalPassLeadMs: 160 },
    });
    await scene.play(8000, turnOver(1));
    const s = scene;
    expect(s.lm.calls.map(lastUser)).toEqual(['play me some music', 'play me some music by the beatles']);
    expect(s.lm.aborts).toBe(1);
    // One recogniser utterance for the whole sentence: the 120 ms pause closed nothing.
    expect(s.stt.finals).toEqual(['play me some music by the beatles']);
    expect(userFinals(s)).toEqual(['play me some music by the beatles']);
  });

  it('redoes the speculative reply on the final pass\'s words when they differ from the partial ones', async () => {
    scene = await openScene({
      segments: [{ from: 400, to: 1600, words: 'how far away is the moon', partial: 'half our new ways the moon' }],
      config: TURNS,
      recogniser: { finalPassMs: 120 },
    });
    await scene.play(8000, turnOver(1));
    const s = scene;
    expect(s.lm.calls.map(lastUser)).toEqual(['half our new ways the moon', 'how far away is the moon']);
    expect(s.lm.aborts).toBe(1);
    expect(userFinals(s)).toEqual(['how far away is the moon']);
    expect(s.sink.eventsOf('timings')[0]).toMatchObject({ speculative: true, sttFinalEarly: true, sttFinalMs: expect.any(Number) });
  });

  it('closes the recogniser in the frame the speech ends, and redoes a guess made on partial words before the final pass is in', async () => {
    // The speech ends 5 ms after the frame's middle: its last VAD window is quiet. The model starts at 80 ms of silence.
    scene = await openScene({
      segments: [{ from: 400, to: 1645, words: 'how far away is the moon', partial: 'half our new ways the moon' }],
      config: { ...TURNS, speculativeAfterMs: 20, speculativeLeadMs: 240, finalPassLeadMs: 320 },
      recogniser: { finalPassMs: 120 },
    });
    await scene.play(8000, turnOver(1));
    const s = scene;
    // Closed at the end of the frame the speech ended in, not a frame later.
    expect(s.stt.closedAt).toEqual([1680]);
    // The guess went out on the partial words at the next frame, while the pass ran, and was redone when it came in.
    expect(s.lm.calls.map(lastUser)).toEqual(['half our new ways the moon', 'how far away is the moon']);
    expect(s.lm.aborts).toBe(1);
    const decided = eventFrame(s, 'turn', (e) => e.state === 'thinking')!;
    expect(s.sink.voicedFrames()[0]).toBe(decided);
    expect(s.sink.eventsOf('timings')[0]).toMatchObject({ speculative: true, redone: 1 });
  });

  it('stops for a barge-in 240 ms into the interruption, drops what was queued, and remembers only what was heard', async () => {
    const story = 'Once upon a time there was a lighthouse keeper. He lived alone on an island for forty years. Every night he climbed the stairs to light the lamp.';
    scene = await openScene({
      segments: [
        { from: 400, to: 1200, words: 'tell me a story' },
        { from: 4000, to: 5000, words: 'wait stop please' },
      ],
      config: TURNS,
      answer: (m) => (lastUser(m).includes('story') ? story : 'Of course.'),
    });
    await scene.play(12_000, turnOver(2));
    const s = scene;
    const flush = s.sink.eventsOf('flush');
    expect(flush).toHaveLength(1);
    // The interruption's onset frame plus 240 ms of speech (three frames), within a frame.
    expect(s.frameEnd(flush[0].frame) - 4000).toBeGreaterThanOrEqual(240);
    expect(s.frameEnd(flush[0].frame) - 4000).toBeLessThanOrEqual(240 + 2 * FRAME_MS);
    // Nothing of the story after the flush: the next audio is the answer to the interruption.
    const next = eventFrame(s, 'turn', (e) => e.state === 'thinking' && e.turn === 2)!;
    expect(s.sink.voicedFrames().filter((f) => f >= flush[0].frame && f < next)).toEqual([]);
    const heard = s.conv.memory.history().find((m) => m.role === 'assistant')!.content;
    expect(heard).toMatch(/^Once upon a time.*…$/);
    expect(heard).not.toContain('forty years');
    expect(flush[0].played).toBe(heard);
    expect(lastUser(s.lm.calls.at(-1)!)).toBe('wait stop please');
  });

  it('keeps talking through a short back-channel over its voice, and does not take it as a turn', async () => {
    const reply = 'Once upon a time there was a lighthouse keeper. He lived alone on an island for forty years.';
    scene = await openScene({
      segments: [
        { from: 400, to: 1200, words: 'tell me a story' },
        { from: 3000, to: 3160, words: 'mm' },
      ],
      config: TURNS,
      answer: () => reply,
    });
    await scene.play(15_000, turnOver(1));
    const s = scene;
    expect(s.sink.eventsOf('flush')).toEqual([]);
    expect(s.sink.replyText()).toBe(reply);
    expect(userFinals(s)).toEqual(['tell me a story']);
    expect(s.conv.memory.history().map((m) => m.role)).toEqual(['user', 'assistant']);
  });

  it('keeps the reply playing while the input side is held up (here: a recogniser that takes 1.5 s to cancel)', async () => {
    const reply = 'Once upon a time there was a lighthouse keeper. He lived alone on an island for forty years. Every night he climbed the stairs to light the lamp.';
    scene = await openScene({
      segments: [
        { from: 400, to: 1200, words: 'tell me a story' },
        { from: 3000, to: 3160, words: 'mm' },
      ],
      config: TURNS,
      answer: () => reply,
      recogniser: { cancelMs: 1500 },
    });
    const s = scene;
    // The back-channel's utterance ends after the hang time, and the recogniser then takes 1.5 s to let it go: input processing falls behind.
    await s.play(8000, () => s.clock.now - s.conv.streamMs >= 2 * FRAME_MS);
    expect(s.clock.now).toBeLessThan(8000);
    const heldAt = s.conv.streamMs;
    const from = s.sink.frames.length;
    await s.play(1200);
    // Input processing did not move on, the output clock did: every frame it pulled carried the story.
    expect(s.conv.streamMs).toBe(heldAt);
    const pulled = s.sink.frames.length - from;
    expect(pulled).toBe(1200 / FRAME_MS);
    expect(s.sink.voicedFrames().filter((f) => f >= from)).toHaveLength(pulled);
    await s.play(15_000, turnOver(1));
    expect(s.sink.replyText()).toBe(reply);
  });
});
