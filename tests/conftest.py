"""Shared fixtures: a tiny tokenizer and randomly initialised tiny models built in a temp dir (no hub)."""

from __future__ import annotations

import pytest
import torch

from r1lab.models.tiny import tiny_config
from r1lab.tasks.corpus import documents
from r1lab.tasks.templates import join_text


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


def _qwen_like(kind: str, vocab: int):
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    common = dict(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                  tie_word_embeddings=True, eos_token_id=0, pad_token_id=0)
    if kind == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**common)).eval()
    return Qwen3ForCausalLM(Qwen3Config(head_dim=16, **common)).eval()


def family_models(tok):
    """One small random model of each Llama-family variant the fast paths serve: MHA, GQA, biases, q/k norms."""
    vocab = ((len(tok) + 63) // 64) * 64
    llama_gqa = make_model(tok)
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(3)
    gqa = LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=1, eos_token_id=0,
                                       pad_token_id=0)).eval()
    return {"llama": llama_gqa, "llama_gqa": gqa, "qwen2": _qwen_like("qwen2", vocab),
            "qwen3": _qwen_like("qwen3", vocab)}


def run_until_then_interrupt(cmd: list[str], env: dict, marker, group: bool = False, wait_s: float = 600):
    """Start ``cmd``, wait until the path ``marker`` exists, send SIGINT (to its whole process group when
    ``group``, as Ctrl-C does) and return (returncode, stdout, stderr)."""
    import os
    import signal
    import subprocess
    import time

    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         start_new_session=group)
    deadline = time.time() + wait_s
    while not marker.is_dir():
        assert p.poll() is None, p.communicate()[1][-3000:]
        assert time.time() < deadline
        time.sleep(0.05)
    if group:
        os.killpg(p.pid, signal.SIGINT)
    else:
        p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=300)
    return p.returncode, out, err
