/**
 * Conversation memory: the persona plus as many recent turns as fit the
 * token budget. Old turns are dropped in user/assistant pairs so the model
 * never sees a reply without its question.
 */
import type { ChatMessage } from './types.js';

export class ConversationMemory {
  private readonly turns: ChatMessage[] = [];
  /** Hard cap on stored turns whatever their size, so memory stays bounded. */
  private static readonly MAX_TURNS = 200;

  constructor(
    private readonly persona: string,
    private readonly budget: number,
    private readonly countTokens: (text: string) => number,
  ) {}

  add(role: 'user' | 'assistant', content: string): void {
    const text = content.trim();
    if (!text) return;
    const last = this.turns[this.turns.length - 1];
    // Two user turns in a row (the reply was cut before any word played): merge them.
    if (last && last.role === role) last.content = `${last.content} ${text}`;
    else this.turns.push({ role, content: text });
    while (this.turns.length > ConversationMemory.MAX_TURNS) this.turns.shift();
  }

  /** The messages to send: system prompt, then the newest turns within the budget. */
  messages(extraUser?: string): ChatMessage[] {
    const system: ChatMessage = { role: 'system', content: this.persona };
    const all = extraUser ? [...this.turns, { role: 'user' as const, content: extraUser }] : [...this.turns];
    let used = this.countTokens(system.content);
    const kept: ChatMessage[] = [];
    for (let i = all.length - 1; i >= 0; i--) {
      const cost = this.countTokens(all[i].content) + 4;
      // The newest message always goes in, however long: without it there is nothing to answer.
      if (kept.length > 0 && used + cost > this.budget) break;
      used += cost;
      kept.unshift(all[i]);
    }
    // Never start on an assistant turn: its question was dropped.
    while (kept.length > 1 && kept[0].role === 'assistant') kept.shift();
    return [system, ...kept];
  }

  /** Stored turns, oldest first (for tests and debugging). */
  history(): readonly ChatMessage[] {
    return this.turns;
  }
}
