"""Loading models and tokenizers from local Hugging Face directories, with clear errors for bad paths."""

from __future__ import annotations

from pathlib import Path

import torch

from r1lab.errors import UserError


def check_model_dir(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise UserError(f"model path not found: {p}")
    if p.is_file() and p.suffix == ".gguf":
        return p
    if not p.is_dir():
        raise UserError(f"model path is not a directory: {p}")
    if not (p / "config.json").is_file():
        raise UserError(f"model directory has no config.json: {p} (expected a Hugging Face model directory)")
    return p


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    p = check_model_dir(path)
    try:
        if p.suffix == ".gguf":
            tok = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)
        else:
            tok = AutoTokenizer.from_pretrained(str(p))
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load a tokenizer from {p}: {e}") from None
    if tok.pad_token_id is None and tok.eos_token_id is not None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(path: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
    from transformers import AutoModelForCausalLM

    p = check_model_dir(path)
    try:
        if p.suffix == ".gguf":
            model = AutoModelForCausalLM.from_pretrained(str(p.parent), gguf_file=p.name, dtype=dtype)
        else:
            model = AutoModelForCausalLM.from_pretrained(str(p), dtype=dtype)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load a causal LM from {p}: {e}") from None
    return model.to(device)


def check_tokenizer_matches(model, tokenizer, path) -> None:
    """A tokenizer whose ids exceed the model's embedding table cannot belong to it."""
    vocab = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > vocab:
        raise UserError(f"tokenizer at {path} has {len(tokenizer)} tokens but the model's embedding has {vocab} rows: "
                        "they do not belong together")


def load_model_and_tokenizer(path: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
    tok = load_tokenizer(path)
    model = load_model(path, device, dtype)
    check_tokenizer_matches(model, tok, path)
    return model, tok
