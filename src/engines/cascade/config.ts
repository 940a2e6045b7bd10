import { z } from 'zod';

export const DEFAULT_PERSONA =
  'You are QuiLLMan, a friendly voice assistant. You are having a spoken conversation, so answer in one to three short sentences of plain speech: ' +
  'no lists, no markdown, no emoji. If you did not understand, say so briefly.';

const ms = (min: number, max: number) => z.number().int().min(min).max(max);

export const CascadeConfigSchema = z
  .object({
    /** Which implementation serves each stage; 'auto' picks the best one available here. */
    vad: z.enum(['auto', 'silero', 'energy']).default('auto'),
    stt: z.enum(['auto', 'sherpa', 'pocketsphinx']).default('auto'),
    lm: z.enum(['auto', 'llama', 'openai']).default('auto'),
    tts: z.enum(['auto', 'sherpa', 'flite', 'espeak-ng', 'festival']).default('auto'),

    /** Silence after speech that ends the user's turn when the words give no hint (none recognised yet). */
    hangMs: ms(200, 5000).default(600),
    /** Silence that ends the turn after a word a sentence or question can end on. See docs/cascade.md (End of turn). */
    hangAfterCompleteMs: ms(160, 5000).default(320),
    /**
     * …or this much, when the reply to those very words already has its first audio (speculation): ending the turn
     * sooner only pays when the reply can play at once, and waiting the longer time otherwise costs nothing.
     */
    hangWhenReadyMs: ms(160, 5000).default(240),
    /** Silence that ends the turn after a function word or a hesitation ("the", "and", "um"): people pause there mid-sentence. */
    hangAfterIncompleteMs: ms(160, 5000).default(900),
    /** Utterances of fewer words are too short to judge complete: they get hangMs. */
    judgeAfterWords: z.number().int().min(1).max(20).default(4),
    /**
     * The language model starts on the words so far this long before the turn would end after them, so that its reply
     * is ready when it does (320: as soon as the speech ends, after a complete sentence)…
     */
    speculativeLeadMs: ms(0, 5000).default(320),
    /** …but never before this much silence (20: Silero's first quiet window after speech). 0 disables speculation. */
    speculativeAfterMs: ms(0, 5000).default(20),
    /**
     * The recogniser's utterance is closed this long before hangAfterCompleteMs would end the turn, but not before
     * speculativeAfterMs, so its final pass is done when the turn ends (240: at 80 ms of silence; closed sooner, it
     * loses the end of the last word).
     */
    finalPassLeadMs: ms(0, 5000).default(240),
    /** User speech needed, while the bot talks, before it stops (echo guard). */
    minBargeInMs: ms(80, 2000).default(240),
    /** Microphone must be at least this loud relative to the bot's own recent output to count as the user. */
    echoMarginDb: z.number().min(0).max(60).default(12),
    /** How far back the bot's output is compared against (playout buffer + acoustic delay). */
    echoWindowMs: ms(80, 3000).default(720),
    /** Silero probability that starts speech; speech continues above threshold − 0.15. */
    vadThreshold: z.number().min(0.05).max(0.95).default(0.5),
    /** Audio kept from before the detected onset so the first word is not clipped. */
    preRollMs: ms(0, 1000).default(320),
    /** Turn ends anyway after this much continuous speech (runaway noise). */
    maxUtteranceMs: ms(2000, 120_000).default(30_000),
    /** How much of the emitted audio is assumed still unplayed in the client when a barge-in lands. */
    playoutLeadMs: ms(0, 2000).default(200),

    /** Silence after which the bot checks in, once per silence. 0 disables. */
    idlePromptAfterMs: ms(0, 600_000).default(20_000),
    idlePrompt: z.string().min(1).max(500).default('Are you still there? Take your time.'),
    farewell: z.string().min(1).max(500).default('Goodbye! It was nice talking with you.'),
    /** Recognised phrases that end the conversation (whole words, in a short utterance). */
    goodbyePhrases: z.array(z.string().min(1).max(50)).max(50).default(['goodbye', 'good bye', 'bye bye', 'bye', 'see you later', 'talk to you later', 'good night']),

    persona: z.string().max(4000).default(DEFAULT_PERSONA),
    /** Tokens of conversation kept for the model (persona included). */
    tokenBudget: z.number().int().min(256).max(131_072).default(2048),
    maxReplyTokens: z.number().int().min(8).max(4096).default(160),

    openai: z
      .object({
        url: z.string().url().optional(),
        apiKey: z.string().max(500).optional(),
        model: z.string().min(1).max(200).default('gpt-4o-mini'),
        timeoutMs: ms(1000, 120_000).default(20_000),
      })
      .prefault({}),
    llama: z
      .object({
        /** A registry name (see `quillman models list`) or a path to a .gguf file. */
        model: z.string().min(1).max(1000).default('qwen2.5-0.5b-instruct'),
        contextSize: z.number().int().min(512).max(131_072).default(4096),
        threads: z.number().int().min(0).max(256).default(0),
        gpu: z.enum(['cpu', 'auto']).default('cpu'),
      })
      .prefault({}),
    sherpaStt: z.object({ model: z.string().min(1).default('zipformer-en-2023-06-26'), threads: z.number().int().min(1).max(64).default(2) }).prefault({}),
    sherpaTts: z
      .object({
        model: z.string().min(1).default('piper-en_US-amy-medium'),
        speaker: z.number().int().min(0).default(0),
        speed: z.number().min(0.5).max(2).default(1),
        threads: z.number().int().min(1).max(64).default(2),
      })
      .prefault({}),
    /** Voice for the command-line synthesisers (flite: slt; espeak-ng: en-us; festival: cmu_us_slt_arctic_hts). */
    commandVoice: z.string().regex(/^[A-Za-z0-9_+-]{1,60}$/).optional(),

    /** Model cache; defaults to QUILLMAN_CACHE_DIR or ~/.cache/quillman/models. */
    cacheDir: z.string().optional(),
    /** Download missing neural models on first use (warm-up). Off: use what is cached, else the offline stages. */
    autoDownload: z.boolean().default(true),
  })
  .strict();

export type CascadeConfig = z.output<typeof CascadeConfigSchema>;
export type CascadeConfigInput = z.input<typeof CascadeConfigSchema>;

export function parseCascadeConfig(raw: unknown): CascadeConfig {
  const result = CascadeConfigSchema.safeParse(raw ?? {});
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`Invalid cascade engine settings: ${issues}`);
  }
  return result.data;
}
