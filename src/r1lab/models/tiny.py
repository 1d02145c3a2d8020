"""Configurations of the tiny base models r1lab pretrains (Llama architecture, loadable by transformers/vLLM)."""

from __future__ import annotations

from r1lab.errors import UserError

# name -> (hidden, layers, heads, ffn). Parameter counts are for a ~600-token vocabulary, tied embeddings.
# The default base is "1m": in a 4-minute CPU pretraining budget it reaches 99.9% teacher-forced digit
# accuracy on worked solutions, where "5m" reaches 43% (it sees 3.4x fewer tokens in the same time): the
# compute-optimal size for ~1e14 FLOPs is about 1M parameters (Hoffmann et al. 2022, D ~ 20N).
SIZES: dict[str, tuple[int, int, int, int]] = {
    "0.25m": (64, 4, 1, 176),     # ~0.24M: the smallest distillation student
    "0.5m": (96, 4, 2, 256),      # ~0.51M: distillation student
    "1m": (128, 4, 2, 352),       # ~0.89M: the default base model
    "2m": (192, 4, 3, 512),       # ~1.9M
    "5m": (256, 6, 4, 704),       # ~5.0M
    "10m": (320, 8, 5, 864),      # ~9.9M
    "20m": (384, 12, 6, 1024),    # ~21M
}


def tiny_config(size: str, vocab_size: int, max_positions: int = 1024, **overrides):
    """A ``LlamaConfig`` for one of ``SIZES`` (vocab rounded up to a multiple of 64 for fast matmuls)."""
    from transformers import LlamaConfig

    if size not in SIZES:
        raise UserError(f"unknown model size {size!r}; valid: {', '.join(SIZES)}")
    hidden, layers, heads, ffn = SIZES[size]
    vocab = ((vocab_size + 63) // 64) * 64
    cfg = dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=ffn, num_hidden_layers=layers,
               num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=max_positions,
               tie_word_embeddings=True, rope_theta=10000.0, rms_norm_eps=1e-5, initializer_range=0.02)
    cfg.update(overrides)
    return LlamaConfig(**cfg)
