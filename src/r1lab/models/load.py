"""Loading models and tokenizers from local Hugging Face directories, with clear errors for bad paths.

A directory is checked before anything heavy runs (``check_model_dir``): it exists and is readable, its
JSON files (config, tokenizer, generation config) parse, and every ``.safetensors`` file is whole (its
header parses and covers the file: a copy cut short fails here, not deep inside a training run). Loading
then refuses weights that do not fit the config (another architecture or size) instead of leaving the
unfitted tensors randomly initialised.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from r1lab.errors import UserError
from r1lab.runtime.io import read_user_text


def _check_json(f: Path) -> dict | list:
    text = read_user_text(f, "model file")
    if not text.strip():
        raise UserError(f"model file {f} is empty (a failed copy?)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"model file {f} is damaged: not valid JSON ({e.msg} at line {e.lineno}; cut short?)") from None


def _check_safetensors(f: Path) -> None:
    from safetensors import safe_open

    if not os.access(f, os.R_OK):
        raise UserError(f"weights file {f} is not readable (permission denied)")
    if f.stat().st_size == 0:
        raise UserError(f"weights file {f} is empty (a failed copy?)")
    try:
        with safe_open(str(f), framework="pt"):  # reads the header only; checks it covers the whole file
            pass
    except Exception as e:  # SafetensorError and friends: the file is not a whole safetensors file
        raise UserError(f"weights file {f} is damaged ({e}): cut short or not a safetensors file; copy it again") from None


def check_model_dir(path: str | Path, what: str = "model path") -> Path:
    """``path`` as a Path once it looks like a whole Hugging Face model directory (or a ``.gguf`` file);
    UserError naming the path and the fault otherwise. ``what`` names the argument in messages."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{what} not found: {p}")
    if p.is_file() and p.suffix == ".gguf":
        if not os.access(p, os.R_OK):
            raise UserError(f"{what} {p} is not readable (permission denied)")
        return p
    if not p.is_dir():
        raise UserError(f"{what} is not a directory: {p} (expected a Hugging Face model directory)")
    if not os.access(p, os.R_OK | os.X_OK):
        raise UserError(f"{what} {p} is not readable (permission denied)")
    if not any(p.iterdir()):
        raise UserError(f"{what} {p} is an empty directory (expected a Hugging Face model directory: config.json, "
                        "weights, tokenizer)")
    if not (p / "config.json").is_file():
        raise UserError(f"model directory has no config.json: {p} (expected a Hugging Face model directory)")
    for f in sorted(p.glob("*.json")):  # config, tokenizer, tokenizer_config, generation_config, shard index
        parsed = _check_json(f)
        if f.name == "config.json" and not isinstance(parsed, dict):
            raise UserError(f"model file {f} is not a model config (a JSON object expected, got {type(parsed).__name__})")
    weights = sorted(p.glob("*.safetensors"))
    if not weights and not any(p.glob("*.bin")):
        raise UserError(f"model directory has no weights: {p} (no model.safetensors or pytorch_model.bin)")
    for f in weights:
        _check_safetensors(f)
    return p


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


def load_tokenizer(path: str | Path, what: str = "model path"):
    from transformers import AutoTokenizer

    p = check_model_dir(path, what)
    try:
        if p.suffix == ".gguf":
            tok = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)
        else:
            tok = AutoTokenizer.from_pretrained(str(p))
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"cannot load a tokenizer from {p}: {_first_line(e)}") from None
    if tok.pad_token_id is None and tok.eos_token_id is not None:
        tok.pad_token = tok.eos_token
    return tok


def from_pretrained_checked(auto_cls, p: Path, what: str = "model", **kwargs):
    """``auto_cls.from_pretrained(p)``, refusing a checkpoint whose tensors do not fit its config.json
    (transformers would initialise the missing or mis-shaped ones randomly, or fail with a long report)."""
    try:
        model, info = auto_cls.from_pretrained(str(p), output_loading_info=True, **kwargs)
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"cannot load a {what} from {p}: {_first_line(e)}") from None
    except RuntimeError as e:
        if "mismatched_sizes" not in str(e) and "size mismatch" not in str(e):
            raise
        raise UserError(f"the weights in {p} do not fit its config.json (tensor shapes differ): is config.json "
                        "from another model?") from None
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        raise UserError(f"the weights in {p} do not fit its config.json ({len(missing)} of the {what}'s tensors are "
                        f"not in the checkpoint, e.g. {missing[0]}): is config.json from another architecture?")
    return model


def load_model(path: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
               what: str = "model path"):
    from transformers import AutoModelForCausalLM

    p = check_model_dir(path, what)
    if p.suffix == ".gguf":
        try:
            model = AutoModelForCausalLM.from_pretrained(str(p.parent), gguf_file=p.name, dtype=dtype)
        except (OSError, ValueError, KeyError) as e:
            raise UserError(f"cannot load a causal LM from {p}: {_first_line(e)}") from None
    else:
        model = from_pretrained_checked(AutoModelForCausalLM, p, "causal LM", dtype=dtype)
    return model.to(device)


def check_tokenizer_matches(model, tokenizer, path) -> None:
    """A tokenizer whose ids exceed the model's embedding table cannot belong to it."""
    vocab = model.get_input_embeddings().weight.shape[0]
    check_vocab(len(tokenizer), vocab, path)


def check_vocab(n_tokens: int, vocab: int, path) -> None:
    if n_tokens > vocab:
        raise UserError(f"tokenizer at {path} has {n_tokens} tokens but the model's embedding has {vocab} rows: "
                        "they do not belong together")


def _meta_load_supported() -> bool:
    """transformers reads a checkpoint onto the meta device (device_map="meta") only with accelerate installed
    (transformers 5.24 without it refuses any device_map); without it the weights are checked when loaded."""
    import importlib.util

    return importlib.util.find_spec("accelerate") is not None


def _config(p: Path) -> dict:
    return json.loads((p / "config.json").read_text(encoding="utf-8"))


def _check_tokenizer_fits(p: Path, what: str) -> None:
    """The tokenizer loads, and its ids fit the vocabulary config.json declares."""
    tok = load_tokenizer(p, what)
    vocab = _config(p).get("vocab_size")
    if isinstance(vocab, int):
        check_vocab(len(tok), vocab, p)


def check_model(path: str | Path, what: str = "model path") -> Path:
    """Everything about a model directory that can be known without loading its weights: the files
    (``check_model_dir``), the tokenizer loads and fits the vocabulary, and the checkpoint's tensors fit its
    config (read on the meta device: no memory, little time). Run it before a command writes anything."""
    from transformers import AutoModelForCausalLM

    p = check_model_dir(path, what)
    if p.suffix == ".gguf":
        load_tokenizer(p, what)
        return p
    _check_tokenizer_fits(p, what)
    if _meta_load_supported():
        from_pretrained_checked(AutoModelForCausalLM, p, "causal LM", device_map="meta")
    return p


def check_reward_model(path: str | Path, what: str = "reward model") -> Path:
    """``check_model`` for a preference reward model: a sequence-classification checkpoint with a scalar
    head, as r1lab's reward_model stage writes (a plain language model would score with a random head)."""
    from transformers import AutoModelForSequenceClassification

    p = check_model_dir(path, what)
    if p.suffix == ".gguf":
        raise UserError(f"{what} {p} is a GGUF language model, not a reward model")
    archs = _config(p).get("architectures") or []
    if not any(isinstance(a, str) and a.endswith("ForSequenceClassification") for a in archs):
        raise UserError(f"{what} {p} holds {', '.join(map(str, archs)) or 'a model without architectures'}, not a "
                        "reward model (a *ForSequenceClassification checkpoint such as the reward_model stage writes)")
    _check_tokenizer_fits(p, what)
    if _meta_load_supported():
        from_pretrained_checked(AutoModelForSequenceClassification, p, "reward model", device_map="meta", num_labels=1)
    return p


def load_model_and_tokenizer(path: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                             what: str = "model path"):
    tok = load_tokenizer(path, what)
    model = load_model(path, device, dtype, what)
    check_tokenizer_matches(model, tok, path)
    return model, tok
