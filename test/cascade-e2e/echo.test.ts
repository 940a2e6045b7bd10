/**
 * Echo through the gateway: the microphone hears the bot's own voice (what
 * the client received, 20 dB quieter and 240 ms later, as from a laptop's
 * speakers) and the bot must not take it for the user. A control run with
 * the echo guard opened up shows that this very leak does interrupt the bot
 * when nothing stops it, so the first test cannot pass by not leaking.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { speak } from '../helpers/speech.js';
import { newMarker, processesWithMarker } from '../helpers/processes.js';
import { startCascadeSystem, untilReady, type CascadeSystem } from './harness.js';
import { CHUNK, converse, samplesOf, Script, trimSilence, type Heard } from './voice.js';
import { rms } from '../../src/audio/pcm.js';

const QUESTION = 'Can you hear yourself?';
const ANSWER = 'I can hear my own voice coming back through your speakers. It is much quieter than you are. That must not stop me from finishing this answer.';
const ECHO_GAIN = 10 ** (-20 / 20);
const ECHO_DELAY = samplesOf(240);

const marker = newMarker();
let system: CascadeSystem | undefined;

afterEach(async () => {
  await system?.close();
  system = undefined;
  expect(processesWithMarker(marker)).toEqual([]);
});

/** Asks the question, then plays the bot's own voice back into the microphone until the reply ends (or 30 s pass: a loaded machine). */
async function talkWithEcho(cascade: Record<string, unknown>): Promise<{ heard: Heard; echoRms: number; errors: string[] }> {
  system = await startCascadeSystem({ lm: { reply: () => ANSWER, wordDelayMs: 30 }, cascade, marker });
  await untilReady(system);
  const question = trimSilence(await speak(QUESTION));
  const script = new Script();
  const questionEnd = script.put(samplesOf(500), question);
  let echoEnergy = 0;
  let echoSamples = 0;
  let doneAt: number | undefined;
  const { heard, result } = await converse({
    url: system.chatUrl,
    maxMs: 40_000,
    mic: (at, h) => {
      const ended = h.events.some((e) => (e.value.type === 'transcript' && e.value.role === 'assistant' && e.value.final === true) || e.value.type === 'flush');
      if (ended && doneAt === undefined) doneAt = at;
      if (doneAt !== undefined && at > doneAt + samplesOf(500)) return undefined;
      if (at > questionEnd + samplesOf(30_000)) return undefined;
      const chunk = script.chunk(at);
      // The speaker's sound reaches the microphone ECHO_DELAY after the bot emitted it.
      const echo = h.audio(at - ECHO_DELAY, at - ECHO_DELAY + CHUNK);
      for (let i = 0; i < echo.length; i++) chunk[i] += echo[i] * ECHO_GAIN;
      if (at > questionEnd) {
        echoEnergy += rms(echo) ** 2 * ECHO_GAIN ** 2 * echo.length;
        echoSamples += CHUNK;
      }
      return chunk;
    },
  });
  return { heard, echoRms: Math.sqrt(echoEnergy / Math.max(1, echoSamples)), errors: result.errors };
}

describe('echo through the gateway', () => {
  it('is not interrupted by its own voice leaking back at -20 dB', async () => {
    const { heard, echoRms, errors } = await talkWithEcho({});
    expect(errors).toEqual([]);
    // The leak was there, at a level Silero hears as speech (flite's voice is ~0.05-0.1 RMS; -20 dB of it ~0.005-0.01).
    expect(echoRms).toBeGreaterThan(0.002);
    expect(heard.eventsOf('flush')).toEqual([]);
    const assistant = heard.eventsOf('transcript').filter((e) => e.value.role === 'assistant');
    expect(assistant.map((e) => e.value)).toEqual([expect.objectContaining({ text: ANSWER, final: true })]);
    expect(assistant[0].value.interrupted).toBeUndefined();
    expect(heard.text().trim()).toBe(ANSWER);
    // Nor did the echo turn into a user turn of its own.
    expect(heard.eventsOf('transcript').filter((e) => e.value.role === 'user' && e.value.final === true)).toHaveLength(1);
    expect(system!.lm.requests.filter((r) => !r.abortedByClient)).toHaveLength(1);
  });

  it('(control) the same leak does interrupt when the echo guard lets everything through', async () => {
    const { heard, echoRms } = await talkWithEcho({ echoMarginDb: 40 });
    expect(echoRms).toBeGreaterThan(0.002);
    expect(heard.eventsOf('flush').length).toBeGreaterThan(0);
  });
});
