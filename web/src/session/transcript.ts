/**
 * The conversation as text. The model's words arrive as pieces (kind-2
 * frames) and are grouped into sentences; the user's words arrive as
 * transcript events, partial ones replaced as they firm up.
 */
export type Role = 'user' | 'assistant';

export interface TranscriptEntry {
  id: number;
  role: Role;
  text: string;
  /** A finished sentence (model) or utterance (user). */
  final: boolean;
}

const SENTENCE_END = /[.!?…。！？]["'”’)\]]*\s*$/;
let nextId = 1;

/** Appends a piece of the model's words, starting a new sentence after one ends. */
export function addPiece(entries: TranscriptEntry[], piece: string): TranscriptEntry[] {
  const last = entries[entries.length - 1];
  if (last && last.role === 'assistant' && !last.final) {
    const text = last.text + piece;
    return [...entries.slice(0, -1), { ...last, text, final: SENTENCE_END.test(text) }];
  }
  const text = piece.trimStart();
  if (text === '') return entries;
  return [...entries, { id: nextId++, role: 'assistant', text, final: SENTENCE_END.test(text) }];
}

/** A transcript event: replaces the open entry of that role, or starts one. */
export function upsertUtterance(entries: TranscriptEntry[], role: Role, text: string, final: boolean): TranscriptEntry[] {
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = entries[i];
    if (entry.role === role && !entry.final) {
      const copy = entries.slice();
      copy[i] = { ...entry, text, final };
      return copy;
    }
  }
  if (text.trim() === '') return entries;
  // Close any open model sentence so its next piece lands after this utterance.
  const closed = entries.map((e) => (e.final ? e : { ...e, final: true }));
  return [...closed, { id: nextId++, role, text, final }];
}

export function transcriptAsText(entries: TranscriptEntry[]): string {
  return entries.map((e) => `${e.role === 'user' ? 'You' : 'Model'}: ${e.text.trim()}`).join('\n') + '\n';
}
