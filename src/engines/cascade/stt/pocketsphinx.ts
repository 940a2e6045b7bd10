/**
 * Offline fallback recogniser: Debian's PocketSphinx 0.8 (libpocketsphinx.so.3)
 * through the koffi FFI, with the US English acoustic model, 3-gram LM and
 * CMU dictionary from pocketsphinx-en-us. Partial results come from
 * ps_get_hyp() while the utterance is still open.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { floatToInt16 } from '../../../audio/pcm.js';
import type { RecognizerSession, SttStage } from './types.js';

type Koffi = typeof import('koffi');
type NativeFn = ((...args: unknown[]) => unknown) & { async: (...args: unknown[]) => void };

export const POCKETSPHINX_MODEL_DIR = '/usr/share/pocketsphinx/model/en-us';
export const POCKETSPHINX_INSTALL_HINT = 'apt install pocketsphinx pocketsphinx-en-us';

interface Lib {
  ps_args: NativeFn;
  cmd_ln_init: NativeFn;
  cmd_ln_free_r: NativeFn;
  ps_init: NativeFn;
  ps_free: NativeFn;
  ps_start_utt: NativeFn;
  ps_process_raw: NativeFn;
  ps_end_utt: NativeFn;
  ps_get_hyp: NativeFn;
}

function loadFirst(koffi: Koffi, names: string[]): ReturnType<Koffi['load']> {
  const errors: string[] = [];
  for (const name of names) {
    try {
      return koffi.load(name);
    } catch (err) {
      errors.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new Error(`PocketSphinx library not found (${errors.join('; ')}). Install it: ${POCKETSPHINX_INSTALL_HINT}`);
}

async function bindLibrary(): Promise<Lib> {
  const koffi = (await import('koffi')).default as unknown as Koffi;
  const base = loadFirst(koffi, ['libsphinxbase.so.3', 'libsphinxbase.so', 'libsphinxbase.3.dylib']);
  const ps = loadFirst(koffi, ['libpocketsphinx.so.3', 'libpocketsphinx.so', 'libpocketsphinx.3.dylib']);
  return {
    ps_args: ps.func('void *ps_args(void)') as NativeFn,
    cmd_ln_init: base.func('void *cmd_ln_init(void *inout, void *defn, int strict, ...)') as NativeFn,
    cmd_ln_free_r: base.func('int cmd_ln_free_r(void *cmdln)') as NativeFn,
    ps_init: ps.func('void *ps_init(void *config)') as NativeFn,
    ps_free: ps.func('int ps_free(void *ps)') as NativeFn,
    ps_start_utt: ps.func('int ps_start_utt(void *ps)') as NativeFn,
    ps_process_raw: ps.func('int ps_process_raw(void *ps, const int16_t *data, size_t n, int no_search, int full_utt)') as NativeFn,
    ps_end_utt: ps.func('int ps_end_utt(void *ps)') as NativeFn,
    ps_get_hyp: ps.func('const char *ps_get_hyp(void *ps, _Out_ int *score)') as NativeFn,
  };
}

function callAsync<T>(fn: NativeFn, ...args: unknown[]): Promise<T> {
  return new Promise((resolve, reject) => fn.async(...args, (err: unknown, res: T) => (err ? reject(err) : resolve(res))));
}

export async function loadPocketsphinx(): Promise<SttStage> {
  const dir = POCKETSPHINX_MODEL_DIR;
  const hmm = join(dir, 'en-us');
  const lm = join(dir, 'en-us.lm.bin');
  const dict = join(dir, 'cmudict-en-us.dict');
  for (const p of [hmm, lm, dict]) {
    if (!existsSync(p)) throw new Error(`PocketSphinx model file ${p} is missing. Install it: ${POCKETSPHINX_INSTALL_HINT}`);
  }
  const lib = await bindLibrary();
  // No flat-lexicon second pass: the final pass then takes 25 ms rather than 100 (p50, docs/cascade.md), so the words are
  // final soon after the pause begins and a reply redone on them is still ready when the turn ends. The price, measured
  // on the benchmark's ten paused sentences: two came out with a word more misheard, one with a word less.
  const args: Record<string, string> = { '-hmm': hmm, '-lm': lm, '-dict': dict, '-fwdflat': 'no', '-logfn': '/dev/null' };
  const variadic: unknown[] = [];
  for (const [k, v] of Object.entries(args)) variadic.push('const char *', k, 'const char *', v);
  variadic.push('const char *', null);

  return {
    name: 'pocketsphinx',
    async create() {
      const config = lib.cmd_ln_init(null, lib.ps_args(), 1, ...variadic);
      if (!config) throw new Error('PocketSphinx rejected its configuration');
      // ps_init reads the acoustic model and LM (~0.3 s): off the event loop.
      const decoder = await callAsync<unknown>(lib.ps_init, config);
      if (!decoder) {
        lib.cmd_ln_free_r(config);
        throw new Error(`PocketSphinx could not load its model from ${dir}`);
      }
      return new PocketsphinxSession(lib, decoder, config);
    },
  };
}

class PocketsphinxSession implements RecognizerSession {
  private inUtt = false;
  private hyp = '';
  private disposed = false;
  private busy: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly lib: Lib,
    private readonly decoder: unknown,
    private readonly config: unknown,
  ) {}

  /** Decoder calls must not overlap; this queues them in order. */
  private serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.busy.then(task);
    this.busy = run.catch(() => undefined);
    return run;
  }

  begin(): Promise<void> {
    return this.serial(async () => {
      if (this.disposed) return;
      if (this.inUtt) this.lib.ps_end_utt(this.decoder);
      this.hyp = '';
      if ((this.lib.ps_start_utt(this.decoder) as number) < 0) throw new Error('ps_start_utt failed');
      this.inUtt = true;
    });
  }

  accept(pcm16k: Float32Array): Promise<void> {
    return this.serial(async () => {
      if (this.disposed || !this.inUtt || pcm16k.length === 0) return;
      const data = floatToInt16(pcm16k);
      await callAsync<number>(this.lib.ps_process_raw, this.decoder, data, data.length, 0, 0);
      const out = [0];
      const text = this.lib.ps_get_hyp(this.decoder, out) as string | null;
      this.hyp = text ?? '';
    });
  }

  partial(): string {
    return this.hyp;
  }

  finish(): Promise<string> {
    return this.serial(async () => {
      if (this.disposed || !this.inUtt) return this.hyp;
      this.inUtt = false;
      await callAsync<number>(this.lib.ps_end_utt, this.decoder);
      const out = [0];
      const text = (this.lib.ps_get_hyp(this.decoder, out) as string | null) ?? '';
      this.hyp = text;
      return text;
    });
  }

  cancel(): Promise<void> {
    return this.serial(async () => {
      if (this.disposed || !this.inUtt) return;
      this.inUtt = false;
      await callAsync<number>(this.lib.ps_end_utt, this.decoder);
      this.hyp = '';
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    // Wait for any queued native call before freeing what it uses.
    void this.busy.then(() => {
      this.lib.ps_free(this.decoder);
      this.lib.cmd_ln_free_r(this.config);
    });
  }
}
