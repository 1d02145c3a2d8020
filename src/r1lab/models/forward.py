"""Version-proof calls into Hugging Face causal LMs (the cache keyword changed name in transformers 5)."""

from __future__ import annotations

import functools
import inspect

import torch


@functools.lru_cache(maxsize=None)
def _cache_kwarg(model_cls) -> str:
    params = inspect.signature(model_cls.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def lm_forward(model, input_ids, attention_mask=None, position_ids=None, cache=None, use_cache=False,
               logits_to_keep: int = 0):
    """Run ``model`` and return (logits, cache). ``logits_to_keep=1`` computes only the last position's logits."""
    kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids,
              "use_cache": use_cache}
    if cache is not None:
        kwargs[_cache_kwarg(type(model))] = cache
    if logits_to_keep:
        kwargs["logits_to_keep"] = logits_to_keep
    out = model(**kwargs)
    new_cache = out.get("cache", None) if hasattr(out, "get") else None
    if new_cache is None:
        new_cache = getattr(out, "past_key_values", None)
    return out.logits, new_cache


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids for left-padded rows: 0 at each row's first real token."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
