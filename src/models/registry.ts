/**
 * The neural models QuiLLMan can download, with where they come from and how
 * to check them.
 *
 * URLs pin a repository revision where the host allows it, so a checksum keeps
 * meaning the same file. Checksums are the SHA-256 values the hosts publish for
 * their Git LFS objects. Where no published checksum was available when this
 * list was written (GitHub release archives, small non-LFS files), `sha256` is
 * null: the downloader then records the hash it saw in the model's manifest
 * (trust on first use) and prints it, so it can be pinned here later.
 */

export type ModelKind = 'stt' | 'tts' | 'lm' | 'moshi';

export interface ModelFile {
  /** Path inside the model's cache folder. */
  path: string;
  url: string;
  /** Approximate size in bytes, for progress before the server says and for `models list`. */
  size: number;
  /** Lower-case hex SHA-256, or null when no published value could be pinned (see file comment). */
  sha256: string | null;
}

export interface ModelArchive {
  url: string;
  size: number;
  sha256: string | null;
  /** Folder the archive unpacks into; its contents become the model folder. */
  topFolder: string;
}

export interface ModelSpec {
  name: string;
  kind: ModelKind;
  description: string;
  license: string;
  /** Individually downloaded files... */
  files?: ModelFile[];
  /** ...or one .tar.bz2 unpacked with the system `tar`. */
  archive?: ModelArchive;
  /** Installed by `quillman models pull` with no names. */
  default: boolean;
}

const ZIPFORMER_REPO = 'https://huggingface.co/csukuangfj/sherpa-onnx-streaming-zipformer-en-2023-06-26/resolve/6037ea07e3abfe599ad00d418968bcf9656e7472';

export const MODELS: readonly ModelSpec[] = [
  {
    name: 'zipformer-en-2023-06-26',
    kind: 'stt',
    description: 'Streaming English Zipformer transducer (int8) for sherpa-onnx: partial results every ~320 ms',
    license: 'Apache-2.0',
    default: true,
    files: [
      {
        path: 'encoder.int8.onnx',
        url: `${ZIPFORMER_REPO}/encoder-epoch-99-avg-1-chunk-16-left-64.int8.onnx`,
        size: 71_100_000,
        sha256: '0d072fd4ef956294ba9db9e9a71a541ac70659095ec4934c8453d8b2fe740187',
      },
      {
        path: 'decoder.onnx',
        url: `${ZIPFORMER_REPO}/decoder-epoch-99-avg-1-chunk-16-left-64.onnx`,
        size: 2_090_000,
        sha256: '7bf787f90b194b307e5a4ad6a34fadb4e748304c35f78a8d66358a05b13ee6ef',
      },
      {
        path: 'joiner.int8.onnx',
        url: `${ZIPFORMER_REPO}/joiner-epoch-99-avg-1-chunk-16-left-64.int8.onnx`,
        size: 259_000,
        sha256: 'd944208d660d67c8d72cd2acaeac971fa5ceb8c80e76c1968148846fedd6e297',
      },
      {
        // A plain Git file, not LFS: the host publishes no SHA-256 for it.
        path: 'tokens.txt',
        url: `${ZIPFORMER_REPO}/tokens.txt`,
        size: 5_050,
        sha256: null,
      },
    ],
  },
  {
    name: 'piper-en_US-amy-medium',
    kind: 'tts',
    description: 'Piper (VITS) US English female voice for sherpa-onnx, 22.05 kHz, with its espeak-ng data',
    license: 'CC-BY-4.0 (voice) / GPL-3.0 (espeak-ng data)',
    default: true,
    archive: {
      // GitHub release assets publish no checksum we could pin offline.
      url: 'https://github.com/k2-fsa/sherpa-onnx/releases/download/tts-models/vits-piper-en_US-amy-medium.tar.bz2',
      size: 64_000_000,
      sha256: null,
      topFolder: 'vits-piper-en_US-amy-medium',
    },
  },
  {
    name: 'qwen2.5-0.5b-instruct',
    kind: 'lm',
    description: 'Qwen2.5 0.5B Instruct, Q4_K_M GGUF: fastest replies, fits any laptop (~0.6 GB RAM)',
    license: 'Apache-2.0',
    default: true,
    files: [
      {
        path: 'model.gguf',
        url: 'https://huggingface.co/bartowski/Qwen2.5-0.5B-Instruct-GGUF/resolve/b26a58accf53b1a19fbc555d52fdb224bec473f5/Qwen2.5-0.5B-Instruct-Q4_K_M.gguf',
        size: 398_000_000,
        sha256: '6eb923e7d26e9cea28811e1a8e852009b21242fb157b26149d3b188f3a8c8653',
      },
    ],
  },
  {
    name: 'qwen2.5-1.5b-instruct',
    kind: 'lm',
    description: 'Qwen2.5 1.5B Instruct, Q4_K_M GGUF: better answers, ~2x slower (~1.3 GB RAM)',
    license: 'Apache-2.0',
    default: false,
    files: [
      {
        path: 'model.gguf',
        url: 'https://huggingface.co/bartowski/Qwen2.5-1.5B-Instruct-GGUF/resolve/85553858e3522ce5b531285b2202bdb40fab1624/Qwen2.5-1.5B-Instruct-Q4_K_M.gguf',
        size: 986_000_000,
        sha256: '50961d9b7d3b89e46be230528fc66d38bbdda8ac3748323dd34f129a714124fc',
      },
    ],
  },
];

export function findModel(name: string, registry: readonly ModelSpec[] = MODELS): ModelSpec | undefined {
  return registry.find((m) => m.name === name);
}

export function defaultModels(registry: readonly ModelSpec[] = MODELS): ModelSpec[] {
  return registry.filter((m) => m.default);
}

export function modelSize(spec: ModelSpec): number {
  if (spec.archive) return spec.archive.size;
  return (spec.files ?? []).reduce((n, f) => n + f.size, 0);
}
