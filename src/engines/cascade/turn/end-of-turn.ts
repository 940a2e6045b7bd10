/**
 * How long a pause must last before the turn is the bot's, judged from the
 * words so far. People pause mid-sentence after a function word or a
 * hesitation ("tell me about the… history of Rome", "I'd like um… a
 * table"), rarely after the last word of a complete sentence or question.
 * So the wait is short after a word that can end a sentence and long after
 * one that cannot. A fragment of fewer than `judgeAfterWords` words is too
 * little to judge by (a short utterance is often the start of a longer one,
 * and it is where a recogniser guesses worst: "can you recommend a" heard
 * as "yeah"): it gets the plain hang time, as does an utterance with no
 * words yet.
 */
import { normaliseTranscript } from '../stt/types.js';

export interface EndOfTurnSettings {
  /** No words to judge by. */
  hangMs: number;
  /** After a word that can end a sentence or question. */
  hangAfterCompleteMs: number;
  /** The same, once the reply to those words has its first audio ready. */
  hangWhenReadyMs: number;
  /** After a function word or a hesitation. */
  hangAfterIncompleteMs: number;
  /** The model starts on the words so far this long before the turn would end… */
  speculativeLeadMs: number;
  /** …but not before this much silence. 0: never speculate (nor close the recogniser early). */
  speculativeAfterMs: number;
  /** The recogniser's utterance is closed this long before the turn would end, so its final pass is in when it does. */
  finalPassLeadMs: number;
  /** Fewer words than this are not judged: the plain hang time. */
  judgeAfterWords: number;
}

export type Ending = 'complete' | 'incomplete' | 'unknown';

/**
 * Words an English sentence almost never ends on: articles and possessives,
 * prepositions, conjunctions, copulas, subject pronouns and hesitations.
 * Closed classes, so the list is short; any other word counts as one a
 * sentence may end on. Words that often do end one stay out ("that", "this",
 * "so", "like", "before", "no", "you" as in "thank you"). A question with a
 * stranded preposition ("where are you from") waits the longer time: slower,
 * never cut off.
 */
const CONTINUES_AFTER = new Set(
  (
    'a an the my your his its our their every ' +
    'of to in on at for with about from by into onto under between through during as than without within upon toward towards across against among ' +
    'and or but nor because if when while although though unless until since whether whose ' +
    'is are was were am be been being ' +
    "i we they he she i'm we're they're you're it's there's what's " +
    'um uh er erm ah hmm mm'
  ).split(' '),
);

/** 'complete' only from `minWords` words on: a shorter fragment ending on a content word is 'unknown'. */
export function classifyEnding(words: string, minWords = 1): Ending {
  const normal = normaliseTranscript(words);
  if (!normal) return 'unknown';
  const list = normal.split(' ');
  if (CONTINUES_AFTER.has(list[list.length - 1])) return 'incomplete';
  return list.length >= minWords ? 'complete' : 'unknown';
}

export class EndOfTurnPolicy {
  constructor(private readonly settings: EndOfTurnSettings) {}

  /**
   * Silence that ends the turn after these words (undefined: not known yet, e.g. a final pass still running);
   * `replyReady`: a reply to these very words has its first audio ready.
   */
  waitMs(words: string | undefined, replyReady = false): number {
    const s = this.settings;
    switch (words === undefined ? 'unknown' : classifyEnding(words, s.judgeAfterWords)) {
      case 'complete':
        return replyReady ? Math.min(s.hangWhenReadyMs, s.hangAfterCompleteMs) : s.hangAfterCompleteMs;
      case 'incomplete':
        return s.hangAfterIncompleteMs;
      case 'unknown':
        return s.hangMs;
    }
  }

  /** Silence at which to start a speculative reply on these words (Infinity: never). */
  speculateAtMs(words: string): number {
    const s = this.settings;
    if (s.speculativeAfterMs <= 0) return Infinity;
    return Math.max(s.speculativeAfterMs, this.waitMs(words) - s.speculativeLeadMs);
  }

  /**
   * Silence at which to close the recogniser's utterance, so that its final
   * pass runs while the pause goes on (Infinity: never). Early enough for the
   * short wait whatever the partial words say: their last word is where a
   * partial hypothesis is least sure ("good book" shows as "good but" for a
   * while), and the turn's end is judged on the final words.
   */
  closeRecogniserAtMs(): number {
    const s = this.settings;
    if (s.speculativeAfterMs <= 0) return Infinity;
    return Math.max(s.speculativeAfterMs, s.hangAfterCompleteMs - s.finalPassLeadMs);
  }
}
