"""Shared fixtures: a tiny tokenizer and randomly initialised tiny models built in a temp dir (no hub)."""

from __future__ import annotations

import pytest
import torch

from r1lab.models.tiny import tiny_config
from r1lab.tasks.corpus import documents
from r1lab.train.pretrain import join_text


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from r1lab.models.tokenizer import train_tokenizer

    texts = []
    for d in documents(1500, seed=0):
        texts += [d["prompt"], join_text(d["prompt"]) + d["response"]]
    return train_tokenizer(texts, vocab_size=512)


def make_model(tokenizer, seed: int = 0, size: str = "1m"):
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = tiny_config(size, len(tokenizer))
    cfg.eos_token_id = cfg.pad_token_id = tokenizer.eos_token_id
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer):
    """A saved random tiny Llama + tokenizer (HF format)."""
    d = tmp_path_factory.mktemp("tiny_model")
    model = make_model(tiny_tokenizer)
    model.save_pretrained(str(d))
    tiny_tokenizer.save_pretrained(str(d))
    return d
