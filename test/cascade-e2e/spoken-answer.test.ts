/**
 * A spoken question through the gateway to a real cascade worker process and
 * a spoken answer back: what the user said arrives as partial and final
 * transcripts, the model is asked exactly that, and the reply audio, run
 * through an independent recogniser, says what the model wrote.
 */
import { describe, expect, it } from 'vitest';
import { speak } from '../helpers/speech.js';
import { useCascadeSystem } from './use-system.js';
import { converse, ms, recognise, samplesOf, Script, trimSilence, wordOverlap, words } from './voice.js';

const QUESTION = 'What is the capital of France?';
const ANSWER = 'The capital of France is Paris. It sits on the river Seine and is famous for its museums.';
const UNRELATED = 'Bananas grow in warm tropical gardens beside quiet lakes.';

const system = useCascadeSystem({ lm: { reply: () => ANSWER, wordDelayMs: 30 } });

describe('a spoken question through the gateway to a cascade worker', () => {
  it('answers aloud with what the model said, with transcripts of the user and the text of the reply', async () => {
    const question = trimSilence(await speak(QUESTION));
    const script = new Script();
    const speechStart = samplesOf(600);
    const speechEnd = script.put(speechStart, question);
    let doneAt: number | undefined;

    const { heard, result } = await converse({
      url: system().chatUrl,
      maxMs: 20_000,
      mic: (at, h) => {
        // Keep listening until the reply has been spoken to its end, then a little more.
        const done = h.events.find((e) => e.value.type === 'transcript' && e.value.role === 'assistant' && e.value.final === true);
        if (done && doneAt === undefined) doneAt = at;
        if (doneAt !== undefined && at > doneAt + samplesOf(500)) return undefined;
        return script.chunk(at);
      },
    });
    expect(result.errors).toEqual([]);
    expect(doneAt, 'the reply was spoken to its end').toBeDefined();

    // The user's words: partial transcripts while speaking, then one final one after the speech ended.
    const userTranscripts = heard.eventsOf('transcript').filter((e) => e.value.role === 'user');
    const partials = userTranscripts.filter((e) => e.value.final === false);
    const finals = userTranscripts.filter((e) => e.value.final === true);
    expect(partials.length).toBeGreaterThanOrEqual(2);
    expect(partials[0].atSample).toBeLessThan(speechEnd);
    expect(finals).toHaveLength(1);
    const finalText = String(finals[0].value.text);
    expect(wordOverlap(QUESTION, finalText), `final transcript "${finalText}"`).toBeGreaterThanOrEqual(0.6);
    expect(finals[0].atSample).toBeGreaterThanOrEqual(speechEnd);

    // The model was asked what the user said (the last request: a speculative one may have been cancelled before).
    const asked = system().lm.requests.at(-1)!;
    expect(asked.abortedByClient).toBe(false);
    expect(words(asked.messages.at(-1)!.content)).toEqual(words(finalText));
    expect(asked.messages[0].role).toBe('system');

    // Its words arrive as text pieces, in step with the audio that speaks them.
    expect(heard.text().replace(/\s+/g, ' ').trim()).toBe(ANSWER);
    const firstSound = heard.firstSound(speechEnd);
    expect(firstSound).toBeGreaterThan(speechEnd);
    expect(Math.abs(ms(heard.texts[0].atSample - firstSound))).toBeLessThan(250);

    // The reply audio says the model's words (an independent PocketSphinx run on what the client received).
    const replyAudio = heard.audio(firstSound, heard.lastSound(firstSound) + samplesOf(200));
    const recognised = await recognise(replyAudio);
    const overlap = wordOverlap(ANSWER, recognised);
    expect(overlap, `recognised "${recognised}"`).toBeGreaterThanOrEqual(0.5);
    // The measure tells texts apart: the same audio does not match an unrelated sentence.
    expect(wordOverlap(UNRELATED, recognised)).toBeLessThan(overlap / 2);

    // Per-turn timings and per-stage costs are reported.
    const timings = heard.event('timings')?.value;
    expect(timings).toMatchObject({ turn: 1, kind: 'answer' });
    for (const key of ['vadEndOfTurnMs', 'sttFinalMs', 'lmFirstTokenMs', 'firstSentenceMs', 'firstTtsChunkMs', 'responseMs']) {
      expect(typeof timings?.[key], key).toBe('number');
    }
    const stats = heard.event('stats')?.value as Record<string, { rtf?: number }> | undefined;
    expect(stats?.vad.rtf).toBeGreaterThan(0);
    expect(stats?.tts.rtf).toBeGreaterThan(0);
  });
});
