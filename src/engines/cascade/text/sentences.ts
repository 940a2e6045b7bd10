/**
 * Cuts a streamed reply into sentences for the synthesiser, so the first
 * sentence can be spoken while the model is still writing the rest.
 */

const ABBREVIATIONS = new Set(['mr', 'mrs', 'ms', 'dr', 'prof', 'sr', 'jr', 'st', 'vs', 'etc', 'e.g', 'i.e', 'approx', 'no', 'fig', 'mt']);

/** A long first clause is cut at a comma so speech starts sooner. */
const SOFT_LIMIT = 140;
/** Nothing unspoken grows beyond this: cut at the last space. */
const HARD_LIMIT = 400;

export class SentenceSplitter {
  private buffer = '';

  /** Adds streamed text; returns the sentences it completed. */
  push(text: string): string[] {
    this.buffer += text;
    const out: string[] = [];
    for (;;) {
      const cut = this.findCut();
      if (cut < 0) break;
      const sentence = this.buffer.slice(0, cut).trim();
      this.buffer = this.buffer.slice(cut);
      if (sentence) out.push(sentence);
    }
    return out;
  }

  /** The rest, at the end of the reply. */
  flush(): string[] {
    const rest = this.buffer.trim();
    this.buffer = '';
    return rest ? [rest] : [];
  }

  private findCut(): number {
    const b = this.buffer;
    for (let i = 0; i < b.length; i++) {
      const c = b[i];
      if (c === '\n') return i + 1;
      if (c === '.' || c === '!' || c === '?' || c === '…' || c === ';' || c === ':') {
        // Need the next character to know it is a boundary ("3.5", "e.g.").
        if (i + 1 >= b.length) return -1;
        let j = i + 1;
        while (j < b.length && /["')\]]/.test(b[j])) j++;
        if (j >= b.length) return -1;
        if (!/\s/.test(b[j])) continue;
        if (c === '.') {
          const word = b.slice(0, i).split(/\s+/).pop()?.toLowerCase() ?? '';
          if (ABBREVIATIONS.has(word) || /^[a-z]$/i.test(word)) continue;
        }
        if ((c === ';' || c === ':') && i < 20) continue;
        return j;
      }
    }
    if (b.length > SOFT_LIMIT) {
      const comma = b.lastIndexOf(', ', HARD_LIMIT);
      if (comma > 40) return comma + 1;
    }
    if (b.length > HARD_LIMIT) {
      const space = b.lastIndexOf(' ', HARD_LIMIT);
      return space > 0 ? space : HARD_LIMIT;
    }
    return -1;
  }
}

/** What a voice should say: no markdown, no emoji, no stage directions. */
export function speakable(text: string): string {
  return text
    .replace(/```[\s\S]*?```/g, ' ')
    .replace(/`([^`]*)`/g, '$1')
    .replace(/\*\*?|__|#+\s|^\s*[-*+]\s+/gm, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\p{Extended_Pictographic}/gu, '')
    .replace(/\s+/g, ' ')
    .trim();
}

export function words(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}
