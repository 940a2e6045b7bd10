import { describe, expect, it } from 'vitest';
import { closeProblem } from '../../web/src/session/problems.js';
import { socketUrl } from '../../web/src/session/server-url.js';
import { addPiece, transcriptAsText, upsertUtterance, type TranscriptEntry } from '../../web/src/session/transcript.js';
import { defaultSettings, loadSettings, queryFor, saveSettings } from '../../web/src/settings/settings.js';

describe('transcript', () => {
  it('groups the model’s pieces into sentences', () => {
    let t: TranscriptEntry[] = [];
    for (const piece of ['Hello', ' there.', ' How', ' are', ' you?', ' Fine']) t = addPiece(t, piece);
    expect(t.map((e) => [e.text, e.final])).toEqual([
      ['Hello there.', true],
      ['How are you?', true],
      ['Fine', false],
    ]);
  });

  it('replaces a partial user utterance as it firms up, and keeps the order of turns', () => {
    let t: TranscriptEntry[] = addPiece([], 'I am');
    t = upsertUtterance(t, 'user', 'hel', false);
    t = upsertUtterance(t, 'user', 'hello model', true);
    t = addPiece(t, ' listening');
    expect(t.map((e) => `${e.role}:${e.text}`)).toEqual(['assistant:I am', 'user:hello model', 'assistant:listening']);
    expect(transcriptAsText(t)).toBe('Model: I am\nYou: hello model\nModel: listening\n');
  });
});

describe('socketUrl', () => {
  const page = { protocol: 'https:', host: 'chat.example:8443' };
  const q = new URLSearchParams([['text_topk', '25']]);
  it('defaults to this origin’s /api/chat with the matching scheme', () => {
    expect(socketUrl('', page, q)).toBe('wss://chat.example:8443/api/chat?text_topk=25');
    expect(socketUrl('', { protocol: 'http:', host: 'localhost:8000' }, new URLSearchParams())).toBe('ws://localhost:8000/api/chat');
  });
  it('accepts Kyutai server addresses in the forms people type', () => {
    expect(socketUrl('localhost:8998', { protocol: 'http:', host: 'x' }, q)).toBe('ws://localhost:8998/api/chat?text_topk=25');
    expect(socketUrl('https://moshi.example', page, q)).toBe('wss://moshi.example/api/chat?text_topk=25');
    expect(socketUrl('ws://10.0.0.2:8998/api/chat', page, q)).toBe('ws://10.0.0.2:8998/api/chat?text_topk=25');
  });
  it('refuses addresses that are not websockets', () => {
    expect(() => socketUrl('ftp://x', page, q)).toThrow(/not a websocket address/);
  });
});

describe('settings', () => {
  it('round-trips through storage and falls back to defaults on junk', () => {
    const store = new Map<string, string>();
    const storage = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => void store.set(k, v) };
    const s = { ...defaultSettings(), serverAddress: 'localhost:8998' };
    s.params.text_topk = '50';
    saveSettings(s, storage);
    expect(loadSettings(storage)).toEqual(s);
    store.set('quillman.settings.v1', '{not json');
    expect(loadSettings(storage)).toEqual(defaultSettings());
  });

  it('draws seeds when blank, and refuses out-of-range values', () => {
    const ok = queryFor(defaultSettings(), () => 0.5);
    expect(ok.ok && ok.query.get('text_seed')).toBe('500000');
    expect(ok.ok && ok.query.get('text_temperature')).toBe('0.7');
    const bad = defaultSettings();
    bad.params.text_topk = '5000';
    const r = queryFor(bad);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.issues[0].param).toBe('text_topk');
  });
});

describe('closeProblem', () => {
  it('tells the user what to do for each way a conversation can be cut', () => {
    expect(closeProblem(1013, '')?.title).toBe('The server is full');
    expect(closeProblem(1011, '', 'worker exited')).toMatchObject({ title: 'The conversation engine stopped', detail: 'worker exited' });
    expect(closeProblem(1006, '')?.action).toMatch(/Reconnect/);
    expect(closeProblem(4000, 'time limit')).toBeUndefined();
    expect(closeProblem(1000, '')).toBeUndefined();
  });
});
