/**
 * Persona and goodbye through the gateway. The worker runs with a default
 * persona given by its --persona flag; a client's `persona` query parameter
 * replaces it; either way the cloud model (the fake) sees it as the system
 * message. Saying goodbye gets the farewell, spoken to its end, then the
 * conversation closes with 4005 (ended by the engine).
 */
import { describe, expect, it } from 'vitest';
import { CloseCode } from '../../src/protocol/close-codes.js';
import { speak } from '../helpers/speech.js';
import { shellQuote } from '../../src/util/shell-quote.js';
import { useCascadeSystem } from './use-system.js';
import { converse, samplesOf, Script, trimSilence, words } from './voice.js';

const SERVER_PERSONA = 'You are Ada, a patient maths tutor.';
const CLIENT_PERSONA = 'You are Captain Hook, a pirate who loves the sea. Answer like a pirate.';
const FAREWELL = 'Goodbye! It was nice talking with you.';

const system = useCascadeSystem({
  lm: { reply: () => 'My name is Hook, and I sail the seven seas.', wordDelayMs: 30 },
  workerFlags: `--persona ${shellQuote(SERVER_PERSONA)}`,
});

/** Says each clip in turn, waiting for the bot to finish answering in between; stops when the server closes. */
function dialogue(clips: Float32Array[]) {
  const script = new Script();
  let next = 0;
  let at0 = samplesOf(500);
  let answered = 0;
  return (at: number, heard: { eventsOf(type: string): { value: Record<string, unknown> }[] }) => {
    const replies = heard.eventsOf('turn').filter((e) => e.value.state === 'listening' && e.value.reason === undefined).length;
    if (next < clips.length && (next === 0 ? at >= at0 : replies > answered)) {
      answered = replies;
      at0 = script.put(at + samplesOf(300), clips[next++]);
    }
    return script.chunk(at);
  };
}

describe('persona and goodbye through the gateway', () => {
  it('gives the model the --persona of the worker by default', async () => {
    const question = trimSilence(await speak('What is your name?'));
    const before = system().lm.requests.length;
    const mic = dialogue([question]);
    let doneAt: number | undefined;
    const { result } = await converse({
      url: system().chatUrl,
      maxMs: 15_000,
      mic: (at, h) => {
        if (doneAt === undefined && h.eventsOf('turn').some((e) => e.value.state === 'listening')) doneAt = at;
        return doneAt !== undefined && at > doneAt + samplesOf(300) ? undefined : mic(at, h);
      },
    });
    expect(result.errors).toEqual([]);
    const asked = system().lm.requests.slice(before);
    expect(asked.length).toBeGreaterThan(0);
    for (const r of asked) expect(r.messages[0]).toEqual({ role: 'system', content: SERVER_PERSONA });
  });

  it("uses the client's persona parameter instead, and ends with 4005 after the farewell when the user says goodbye", async () => {
    const question = trimSilence(await speak('What is your name?'));
    const goodbye = trimSilence(await speak('Goodbye.'));
    const before = system().lm.requests.length;
    const { heard, result } = await converse({
      url: system().chatUrl,
      params: { persona: CLIENT_PERSONA },
      maxMs: 25_000,
      mic: dialogue([question, goodbye]),
    });

    // The model saw the client's persona as its system message, and was not asked about the goodbye.
    const asked = system().lm.requests.slice(before);
    expect(asked.length).toBeGreaterThan(0);
    for (const r of asked) expect(r.messages[0]).toEqual({ role: 'system', content: CLIENT_PERSONA });
    expect(asked.some((r) => words(r.messages.at(-1)!.content).includes('goodbye'))).toBe(false);

    // The farewell was spoken to its end, then the engine ended the conversation and the gateway passed the close on.
    expect(heard.text()).toContain(FAREWELL);
    const end = heard.event('end');
    expect(end?.value).toMatchObject({ type: 'end', reason: 'user-goodbye' });
    const farewellText = heard.texts.find((t) => t.value.includes('Goodbye!'))!;
    const lastSound = heard.lastSound(farewellText.atSample);
    expect(lastSound).toBeGreaterThan(farewellText.atSample + samplesOf(1000));
    expect(lastSound).toBeLessThanOrEqual(end!.atSample + samplesOf(20));
    expect(result.closeCode).toBe(CloseCode.EndedByEngine);
    expect(heard.length).toBeLessThan(samplesOf(24_000)); // closed by the server, not by the test's time limit
  });
});
