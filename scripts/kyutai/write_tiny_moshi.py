"""Writes a tiny, randomly initialised Moshi checkpoint that Kyutai's real
`moshi.server` loads and runs on a CPU in real time.

The audio it produces is noise and its words are random pieces, but every
line of server code, the Mimi codec's streaming and the Ogg/Opus framing are
Kyutai's own: this is what lets our tests talk to the real server without a
GPU or the 15 GB weights.

    python write_tiny_moshi.py OUT_DIR [FINAL_DIR]

FINAL_DIR is where the folder will live once complete (config.json names
mimi.json by absolute path); it defaults to OUT_DIR.

Writes config.json (flat LMModel keyword arguments), mimi.json (a custom Mimi
referenced from config.json), model.safetensors, mimi.safetensors and
tokenizer.model (SentencePiece), then tiny-moshi.json last, so that a folder
without it is an interrupted run.
"""

import json
import sys
from pathlib import Path

import sentencepiece as spm
import torch
from safetensors.torch import save_file

from moshi.models import loaders
from moshi.models.lm import LMModel

# The shape of the tiny model. Kyutai's constraints (moshi 0.2.13):
# card == Mimi's bins; len(delays) == n_q + 1; Mimi gets max(dep_q, n_q - dep_q)
# codebooks; the tokenizer needs at least text_card pieces.
BINS = 64
TEXT_CARD = 96
DEP_Q = 2
N_Q = 2 * DEP_Q  # the model's own stream, then the user's
SEANET_DIM = 32

MIMI_CONFIG = {
    "sample_rate": 24000,
    "channels": 1,
    "frame_rate": 12.5,
    "seanet": {
        "channels": 1,
        "dimension": SEANET_DIM,
        "causal": True,
        "n_filters": 4,
        "n_residual_layers": 1,
        "activation": "ELU",
        "compress": 2,
        "dilation_base": 2,
        "disable_norm_outer_blocks": 0,
        "kernel_size": 7,
        "residual_kernel_size": 3,
        "last_kernel_size": 3,
        "norm": "none",
        "pad_mode": "constant",
        # The real hop (960 samples at 24 kHz), so frames are the real 80 ms.
        "ratios": [8, 6, 5, 4],
        "true_skip": True,
    },
    "quantizer": {
        "dimension": 16,
        "n_q": 4,
        "bins": BINS,
        "input_dimension": SEANET_DIM,
        "output_dimension": SEANET_DIM,
    },
    "transformer": {
        "d_model": SEANET_DIM,
        "num_heads": 2,
        "num_layers": 1,
        "causal": True,
        "layer_scale": 0.01,
        "context": 250,
        "conv_layout": True,
        "max_period": 10000,
        "gating": "none",
        "norm": "layer_norm",
        "positional_embedding": "rope",
        "dim_feedforward": 64,
        "input_dimension": SEANET_DIM,
        "output_dimensions": [SEANET_DIM],
    },
}

LM_CONFIG = {
    "dim": 16,
    "text_card": TEXT_CARD,
    "existing_text_padding_id": 3,
    "n_q": N_Q,
    "dep_q": DEP_Q,
    "card": BINS,
    "num_heads": 2,
    "num_layers": 2,
    "hidden_scale": 2,
    "causal": True,
    "layer_scale": None,
    "context": 100,
    "max_period": 10000,
    "gating": "silu",
    "norm": "rms_norm_f32",
    "positional_embedding": "rope",
    "depformer_dim": 16,
    "depformer_dim_feedforward": 32,
    "depformer_num_heads": 2,
    "depformer_num_layers": 1,
    "depformer_layer_scale": None,
    "depformer_multi_linear": True,
    "depformer_context": DEP_Q,
    "depformer_max_period": 10000,
    "depformer_gating": "silu",
    "depformer_pos_emb": "none",
    "depformer_weights_per_step": True,
    # Text, then each stream's first (semantic) codebook undelayed and the rest one step late, as Moshi 7B.
    "delays": [0] + [0] + [1] * (DEP_Q - 1) + [0] + [1] * (DEP_Q - 1),
}

# Words for the tokenizer, so the server's text pieces are readable English fragments.
CORPUS = """
hello there how are you doing today i am fine thank you for asking
the weather is nice and the sun is shining over the quiet little town
moshi is a speech text foundation model that listens and speaks at the same time
a tiny random model cannot say anything sensible but its framing is real
we test the gateway the terminal client and the web app against this server
please speak after the tone and wait for the answer to come back to you
numbers one two three four five six seven eight nine ten eleven twelve
"""


def write_tokenizer(out: Path) -> None:
    corpus = out / "corpus.txt"
    corpus.write_text("\n".join([CORPUS] * 20))
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(out / "tokenizer"),
        vocab_size=TEXT_CARD,
        model_type="unigram",
        character_coverage=1.0,
        # The server prints every piece but ids 0 and 3 (Moshi's end padding and padding): no
        # control pieces besides <unk> at 0, so whatever the random model picks reads as text.
        unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1,
        minloglevel=2,
    )
    corpus.unlink()


def fill_codebooks(mimi: torch.nn.Module) -> None:
    """Random centroids, marked initialised: a zero codebook would decode every code to silence."""
    for name, module in mimi.named_modules():
        if hasattr(module, "embedding_sum") and hasattr(module, "_initialized"):
            module.embedding_sum.data.normal_(0.0, 1.0)
            module.cluster_usage.data.fill_(1.0)
            module._initialized.data.fill_(1.0)


def main() -> None:
    out = Path(sys.argv[1]).resolve()
    final = Path(sys.argv[2]).resolve() if len(sys.argv) > 2 else out
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(1234)

    (out / "mimi.json").write_text(json.dumps(MIMI_CONFIG, indent=2))
    config = dict(LM_CONFIG)
    config["mimi_config_name"] = f"file://{final / 'mimi.json'}"
    config["model_id"] = {"sig": "quillman-tiny-random", "epoch": 0}
    (out / "config.json").write_text(json.dumps(config, indent=2))

    num_codebooks = max(DEP_Q, N_Q - DEP_Q)
    mimi = loaders.get_mimi(None, MIMI_CONFIG, device="cpu", num_codebooks=num_codebooks)
    fill_codebooks(mimi)
    save_file({k: v.contiguous() for k, v in mimi.state_dict().items()}, str(out / "mimi.safetensors"))

    lm = LMModel(device="cpu", dtype=torch.float32, **LM_CONFIG)
    save_file({k: v.contiguous() for k, v in lm.state_dict().items()}, str(out / "model.safetensors"))

    write_tokenizer(out)
    (out / "tiny-moshi.json").write_text(json.dumps({
        "moshi": "0.2.13",
        "files": ["config.json", "mimi.json", "model.safetensors", "mimi.safetensors", "tokenizer.model"],
    }, indent=2))
    print(f"tiny Moshi checkpoint written to {out}")


if __name__ == "__main__":
    main()
