import { describe, expect, it } from 'vitest';
import { ConversationMemory } from '../../src/engines/cascade/lm/memory.js';
import { estimateTokens } from '../../src/engines/cascade/lm/types.js';
import { SentenceSplitter, speakable } from '../../src/engines/cascade/text/sentences.js';

function split(stream: string[]): string[] {
  const s = new SentenceSplitter();
  return [...stream.flatMap((p) => s.push(p)), ...s.flush()];
}

describe('sentence splitting of a streamed reply', () => {
  it('emits each sentence as soon as it is complete', () => {
    const s = new SentenceSplitter();
    expect(s.push('Hello there')).toEqual([]);
    expect(s.push('! How are')).toEqual(['Hello there!']);
    expect(s.push(' you? I')).toEqual(['How are you?']);
    expect(s.flush()).toEqual(['I']);
  });

  it('does not cut at decimals, abbreviations or initials', () => {
    expect(split(['Pi is 3.14 roughly. Dr. Smith met J. R. R. Tolkien, e.g. at tea. ', 'Done'])).toEqual([
      'Pi is 3.14 roughly.',
      'Dr. Smith met J. R. R. Tolkien, e.g. at tea.',
      'Done',
    ]);
  });

  it('cuts a long first clause at a comma, and anything huge at a space', () => {
    const long = `${'word '.repeat(30)}and then, ${'more '.repeat(20)}`;
    const parts = split([long]);
    expect(parts.length).toBeGreaterThan(1);
    expect(parts[0].endsWith(',')).toBe(true);
    const huge = split(['x'.repeat(50) + ' ' + 'y '.repeat(300)]);
    expect(huge.every((p) => p.length <= 400)).toBe(true);
  });

  it('strips what should not be read aloud', () => {
    expect(speakable('**Bold** and `code` 🎉 [link](http://x)\n- item')).toBe('Bold and code link item');
  });
});

describe('conversation memory', () => {
  it('keeps the persona and the newest turns within the token budget', () => {
    const m = new ConversationMemory('persona', 60, estimateTokens);
    for (let i = 0; i < 10; i++) {
      m.add('user', `question number ${i} ${'x'.repeat(40)}`);
      m.add('assistant', `answer number ${i}`);
    }
    const msgs = m.messages('latest question');
    expect(msgs[0]).toEqual({ role: 'system', content: 'persona' });
    expect(msgs[msgs.length - 1]).toEqual({ role: 'user', content: 'latest question' });
    const total = msgs.reduce((n, x) => n + estimateTokens(x.content) + 4, 0);
    expect(total).toBeLessThanOrEqual(60 + 4);
    expect(msgs[1].role).toBe('user'); // never starts with an orphaned answer
    expect(msgs.some((x) => x.content.startsWith('question number 9'))).toBe(true);
    expect(msgs.some((x) => x.content.startsWith('question number 0'))).toBe(false);
  });

  it('merges consecutive turns of the same speaker and ignores empty ones', () => {
    const m = new ConversationMemory('p', 1000, estimateTokens);
    m.add('user', 'tell me');
    m.add('user', 'a story');
    m.add('assistant', '   ');
    expect(m.history()).toEqual([{ role: 'user', content: 'tell me a story' }]);
  });

  it('always sends the newest message even when it alone exceeds the budget', () => {
    const m = new ConversationMemory('p', 10, estimateTokens);
    const msgs = m.messages('y'.repeat(400));
    expect(msgs).toHaveLength(2);
  });
});

