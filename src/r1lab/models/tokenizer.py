"""A small byte-level BPE tokenizer for the tiny world, saved in Hugging Face format.

Digits and the arithmetic symbols ``( ) + - * / =`` are always single tokens (digits as in Llama and
Qwen), so an operand reads the same in the problem and in the worked solution, and copying it is easy to
learn. Other merges may cross spaces (no whitespace pre-split), so the R1-Zero template and recurring
phrases compress to few tokens: that keeps sequences short, which is what CPU time depends on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

EOS = "<|endoftext|>"
SPECIAL_TOKENS = [EOS]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024):
    """Train a BPE on ``texts``; returns a transformers ``PreTrainedTokenizerFast``."""
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"[0-9()+\-*/=]"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        max_token_length=24,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS, bos_token=None,
                                   model_max_length=2048, clean_up_tokenization_spaces=False)


def save_tokenizer(tokenizer, out_dir: str | Path) -> None:
    tokenizer.save_pretrained(str(out_dir))
