/**
 * Writes a tiny llama-architecture GGUF (random F32 weights, a byte-level
 * SentencePiece vocabulary) so tests can run node-llama-cpp for real without
 * downloading a model. Format: github.com/ggml-org/ggml/blob/master/docs/gguf.md.
 */
import { writeFileSync } from 'node:fs';

const enum T {
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  STRING = 8,
  ARRAY = 9,
}

type Value = { t: T.UINT32 | T.INT32 | T.FLOAT32; v: number } | { t: T.STRING; v: string } | { t: T.ARRAY; of: T.STRING | T.FLOAT32 | T.INT32; v: (string | number)[] };

class Writer {
  private parts: Buffer[] = [];
  size = 0;
  push(b: Buffer) {
    this.parts.push(b);
    this.size += b.length;
  }
  u32(n: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    this.push(b);
  }
  i32(n: number) {
    const b = Buffer.alloc(4);
    b.writeInt32LE(n);
    this.push(b);
  }
  u64(n: number) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    this.push(b);
  }
  f32(n: number) {
    const b = Buffer.alloc(4);
    b.writeFloatLE(n);
    this.push(b);
  }
  str(s: string) {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  scalar(t: T, v: string | number) {
    if (t === T.STRING) this.str(v as string);
    else if (t === T.FLOAT32) this.f32(v as number);
    else if (t === T.INT32) this.i32(v as number);
    else this.u32(v as number);
  }
  pad(align: number) {
    const n = (align - (this.size % align)) % align;
    if (n) this.push(Buffer.alloc(n));
  }
  buffer() {
    return Buffer.concat(this.parts);
  }
}

/** Deterministic pseudo-random numbers (tests must not depend on Math.random). */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

export interface TinyModelOptions {
  embd?: number;
  layers?: number;
  heads?: number;
  ff?: number;
  context?: number;
  seed?: number;
}

export function writeTinyLlamaGguf(path: string, opts: TinyModelOptions = {}): void {
  const embd = opts.embd ?? 64;
  const layers = opts.layers ?? 2;
  const heads = opts.heads ?? 4;
  const ff = opts.ff ?? 128;
  const ctx = opts.context ?? 512;
  const rand = rng(opts.seed ?? 42);

  // Vocabulary: control tokens, the SentencePiece space, lowercase letters and a little punctuation, plus all 256 byte tokens.
  const tokens: string[] = ['<unk>', '<s>', '</s>', '▁'];
  const types: number[] = [2, 3, 3, 1];
  for (const c of 'abcdefghijklmnopqrstuvwxyz.,!?') {
    tokens.push(c);
    types.push(1);
  }
  for (const w of ['▁the', '▁a', '▁hello', '▁is', '▁it']) {
    tokens.push(w);
    types.push(1);
  }
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
  }
  const vocab = tokens.length;
  const scores = tokens.map((_, i) => -i);

  const kv: [string, Value][] = [
    ['general.architecture', { t: T.STRING, v: 'llama' }],
    ['general.name', { t: T.STRING, v: 'quillman-test-tiny' }],
    ['llama.context_length', { t: T.UINT32, v: ctx }],
    ['llama.embedding_length', { t: T.UINT32, v: embd }],
    ['llama.block_count', { t: T.UINT32, v: layers }],
    ['llama.feed_forward_length', { t: T.UINT32, v: ff }],
    ['llama.attention.head_count', { t: T.UINT32, v: heads }],
    ['llama.attention.head_count_kv', { t: T.UINT32, v: heads }],
    ['llama.rope.dimension_count', { t: T.UINT32, v: embd / heads }],
    ['llama.attention.layer_norm_rms_epsilon', { t: T.FLOAT32, v: 1e-5 }],
    ['general.file_type', { t: T.UINT32, v: 0 }],
    ['tokenizer.ggml.model', { t: T.STRING, v: 'llama' }],
    ['tokenizer.ggml.tokens', { t: T.ARRAY, of: T.STRING, v: tokens }],
    ['tokenizer.ggml.scores', { t: T.ARRAY, of: T.FLOAT32, v: scores }],
    ['tokenizer.ggml.token_type', { t: T.ARRAY, of: T.INT32, v: types }],
    ['tokenizer.ggml.bos_token_id', { t: T.UINT32, v: 1 }],
    ['tokenizer.ggml.eos_token_id', { t: T.UINT32, v: 2 }],
    ['tokenizer.ggml.unknown_token_id', { t: T.UINT32, v: 0 }],
  ];

  // Tensor shapes are given innermost dimension first, as ggml stores them.
  const tensors: { name: string; dims: number[]; init: 'rand' | 'ones' }[] = [
    { name: 'token_embd.weight', dims: [embd, vocab], init: 'rand' },
    { name: 'output_norm.weight', dims: [embd], init: 'ones' },
    { name: 'output.weight', dims: [embd, vocab], init: 'rand' },
  ];
  for (let l = 0; l < layers; l++) {
    tensors.push(
      { name: `blk.${l}.attn_norm.weight`, dims: [embd], init: 'ones' },
      { name: `blk.${l}.attn_q.weight`, dims: [embd, embd], init: 'rand' },
      { name: `blk.${l}.attn_k.weight`, dims: [embd, embd], init: 'rand' },
      { name: `blk.${l}.attn_v.weight`, dims: [embd, embd], init: 'rand' },
      { name: `blk.${l}.attn_output.weight`, dims: [embd, embd], init: 'rand' },
      { name: `blk.${l}.ffn_norm.weight`, dims: [embd], init: 'ones' },
      { name: `blk.${l}.ffn_gate.weight`, dims: [embd, ff], init: 'rand' },
      { name: `blk.${l}.ffn_up.weight`, dims: [embd, ff], init: 'rand' },
      { name: `blk.${l}.ffn_down.weight`, dims: [ff, embd], init: 'rand' },
    );
  }

  const ALIGN = 32;
  const w = new Writer();
  w.push(Buffer.from('GGUF', 'ascii'));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(kv.length);
  for (const [key, value] of kv) {
    w.str(key);
    w.u32(value.t);
    if (value.t === T.ARRAY) {
      w.u32(value.of);
      w.u64(value.v.length);
      for (const item of value.v) w.scalar(value.of, item);
    } else {
      w.scalar(value.t, value.v);
    }
  }
  let offset = 0;
  const sizes: number[] = [];
  for (const t of tensors) {
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(0); // GGML_TYPE_F32
    w.u64(offset);
    const bytes = t.dims.reduce((a, b) => a * b, 1) * 4;
    sizes.push(bytes);
    offset += Math.ceil(bytes / ALIGN) * ALIGN;
  }
  w.pad(ALIGN);
  tensors.forEach((t, i) => {
    const data = Buffer.alloc(Math.ceil(sizes[i] / ALIGN) * ALIGN);
    for (let j = 0; j < sizes[i] / 4; j++) data.writeFloatLE(t.init === 'ones' ? 1 : rand() * 0.5, j * 4);
    w.push(data);
  });
  writeFileSync(path, w.buffer());
}
