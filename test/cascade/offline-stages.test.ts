/**
 * The offline stages, for real: PocketSphinx recognising generated speech,
 * the Debian voices producing 24 kHz audio, Silero telling speech from
 * silence, and the resampler.
 */
import { describe, expect, it } from 'vitest';
import { loadPocketsphinx } from '../../src/engines/cascade/stt/pocketsphinx.js';
import { commandAvailable, commandTts } from '../../src/engines/cascade/tts/command.js';
import { loadSileroVad } from '../../src/engines/cascade/vad/silero.js';
import { energyVad } from '../../src/engines/cascade/vad/energy.js';
import { StreamResampler, resampleClip } from '../../src/engines/cascade/audio/resample.js';
import { rms } from '../../src/audio/pcm.js';
import { concat, silence, speak } from './helpers.js';

async function recognise(pcm16k: Float32Array) {
  const stage = await loadPocketsphinx();
  const session = await stage.create();
  const partials: string[] = [];
  await session.begin();
  for (let i = 0; i < pcm16k.length; i += 1280) {
    await session.accept(pcm16k.subarray(i, i + 1280));
    if (session.partial()) partials.push(session.partial());
  }
  const final = await session.finish();
  session.dispose();
  return { final, partials };
}

describe('pocketsphinx (koffi → libpocketsphinx.so.3)', () => {
  it('recognises flite speech with partial results while the utterance is open', async () => {
    const speech = await speak('what is the weather like today', { rate: 16_000 });
    const { final, partials } = await recognise(concat(silence(300, 16_000), speech, silence(300, 16_000)));
    expect(partials.length).toBeGreaterThan(2);
    // Partials grow as audio arrives: an early one is shorter than the last.
    expect(partials[0].split(' ').length).toBeLessThan(partials[partials.length - 1].split(' ').length);
    expect(final).toContain('weather');
    expect(final).toContain('today');
  });

  it('recognises espeak-ng speech too', async () => {
    const speech = await speak('what is the weather like today', { rate: 16_000, tool: 'espeak-ng' });
    const { final } = await recognise(concat(silence(300, 16_000), speech, silence(300, 16_000)));
    expect(final).toContain('weather');
  });

  it('returns an empty result for silence and survives odd call orders', async () => {
    const stage = await loadPocketsphinx();
    const s = await stage.create();
    await s.accept(new Float32Array(1280)); // before begin: ignored
    expect(await s.finish()).toBe('');
    await s.begin();
    await s.accept(silence(500, 16_000));
    await s.cancel();
    await s.begin();
    await s.begin(); // restarting an open utterance is allowed
    expect(await s.finish()).toBe('');
    s.dispose();
    s.dispose();
  });
});

describe('command-line voices', () => {
  it('flite speaks a sentence as 24 kHz audio', async () => {
    const tts = commandTts({ kind: 'flite' });
    const chunks: Float32Array[] = [];
    for await (const c of tts.synthesize('Hello world, this is a test.', new AbortController().signal)) chunks.push(c);
    const pcm = concat(...chunks);
    // flite's slt voice speaks this in about two seconds; at 24 kHz that is ~48k samples.
    expect(pcm.length).toBeGreaterThan(24_000);
    expect(pcm.length).toBeLessThan(24_000 * 5);
    expect(rms(pcm)).toBeGreaterThan(0.01);
    // It is recognisable after the round trip through the resampler.
    const { final } = await recognise(await resampleClip(pcm, 24_000, 16_000));
    expect(final).toContain('hello');
    await tts.dispose?.();
  });

  it('text starting with a dash is spoken, not taken as an option', async () => {
    const tts = commandTts({ kind: 'flite' });
    const chunks: Float32Array[] = [];
    for await (const c of tts.synthesize('-voice kal is not an option here', new AbortController().signal)) chunks.push(c);
    expect(concat(...chunks).length).toBeGreaterThan(12_000);
  });

  it('an aborted synthesis yields nothing', async () => {
    const tts = commandTts({ kind: 'flite' });
    const ac = new AbortController();
    ac.abort();
    const chunks: Float32Array[] = [];
    for await (const c of tts.synthesize('This should never be heard.', ac.signal)) chunks.push(c);
    expect(chunks).toHaveLength(0);
  });

  it.runIf(commandAvailable('espeak-ng'))('espeak-ng speaks at 24 kHz', async () => {
    const tts = commandTts({ kind: 'espeak-ng' });
    const chunks: Float32Array[] = [];
    for await (const c of tts.synthesize('Testing espeak.', new AbortController().signal)) chunks.push(c);
    expect(concat(...chunks).length).toBeGreaterThan(12_000);
  });
});

describe('Silero VAD (onnxruntime-node)', () => {
  it('tells speech from silence and from steady noise', async () => {
    const vad = (await loadSileroVad()).create();
    const quiet = await vad.process(silence(1000, 16_000));
    expect(quiet.length).toBe(Math.floor(16_000 / 512));
    expect(Math.max(...quiet)).toBeLessThan(0.2);

    const speech = await speak('this is definitely somebody talking', { rate: 16_000 });
    const probs = await vad.process(speech);
    const voiced = probs.filter((p) => p > 0.5).length;
    expect(voiced / probs.length).toBeGreaterThan(0.5);

    vad.reset();
    let seed = 1;
    const noise = new Float32Array(16_000).map(() => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return (seed / 2 ** 32 - 0.5) * 0.05;
    });
    const noisy = await vad.process(noise);
    expect(noisy.filter((p) => p > 0.5).length / noisy.length).toBeLessThan(0.2);
    vad.dispose();
  });

  it('keeps the remainder between calls (windows of exactly 512 samples)', async () => {
    const vad = (await loadSileroVad()).create();
    const a = await vad.process(new Float32Array(1280));
    const b = await vad.process(new Float32Array(1280));
    // 2560 samples = 5 windows, split 2 + 3 across the calls.
    expect(a.length + b.length).toBe(5);
  });

  it('the energy fallback also separates speech from silence', async () => {
    const vad = energyVad().create();
    const quiet = await vad.process(silence(500, 16_000));
    const speech = await vad.process(await speak('hello there, how are you', { rate: 16_000 }));
    expect(Math.max(...quiet)).toBeLessThan(0.5);
    expect(speech.filter((p) => p > 0.5).length).toBeGreaterThan(10);
  });
});

describe('resampling (libsamplerate)', () => {
  it('streams 24 kHz frames to 16 kHz keeping the pitch', async () => {
    const r = await StreamResampler.create(24_000, 16_000);
    const tone = new Float32Array(24_000).map((_, i) => Math.sin((2 * Math.PI * 440 * i) / 24_000));
    const out: Float32Array[] = [];
    for (let i = 0; i < tone.length; i += 1920) out.push(r.process(tone.subarray(i, i + 1920)));
    const pcm = concat(...out);
    expect(Math.abs(pcm.length - 16_000)).toBeLessThan(200);
    let crossings = 0;
    for (let i = 2000; i < pcm.length - 1; i++) if (pcm[i] <= 0 && pcm[i + 1] > 0) crossings++;
    const seconds = (pcm.length - 2000) / 16_000;
    expect(crossings / seconds).toBeGreaterThan(430);
    expect(crossings / seconds).toBeLessThan(450);
    r.release();
  });
});
