import { describe, expect, it } from 'vitest';
import { takePageCredential, withCredential } from '../../web/src/session/page-credential.js';

function memoryStorage() {
  const map = new Map<string, string>();
  return { getItem: (k: string) => map.get(k) ?? null, setItem: (k: string, v: string) => void map.set(k, v) };
}

describe("the page's own credential", () => {
  it('is taken from #token= or ?token=, removed from the address bar, and kept for the tab', () => {
    const storage = memoryStorage();
    const replaced: string[] = [];
    expect(takePageCredential({ href: 'https://gw.example/?trace=1#token=abc.def-1' }, storage, (u) => replaced.push(u))).toBe('abc.def-1');
    expect(replaced).toEqual(['https://gw.example/?trace=1']);
    // A reload (the token is gone from the address) still has it.
    expect(takePageCredential({ href: 'https://gw.example/?trace=1' }, storage, (u) => replaced.push(u))).toBe('abc.def-1');
    expect(takePageCredential({ href: 'https://gw.example/?token=xyz' }, memoryStorage(), (u) => replaced.push(u))).toBe('xyz');
    expect(replaced.at(-1)).toBe('https://gw.example/');
    expect(takePageCredential({ href: 'https://gw.example/' }, memoryStorage(), () => undefined)).toBeUndefined();
  });

  it('goes in a subprotocol when it is a valid one, else in the query', () => {
    expect(withCredential('wss://gw/api/chat?text_topk=25', 'abc.def')).toEqual({ url: 'wss://gw/api/chat?text_topk=25', protocols: ['quillman', 'quillman.bearer.abc.def'] });
    expect(withCredential('wss://gw/api/chat', 'with space/slash')).toEqual({ url: 'wss://gw/api/chat?token=with+space%2Fslash', protocols: [] });
    expect(withCredential('wss://gw/api/chat', undefined)).toEqual({ url: 'wss://gw/api/chat', protocols: [] });
  });
});
