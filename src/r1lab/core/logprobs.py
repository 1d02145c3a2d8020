"""Per-token log-probabilities by gather and entropy, without materialising a full-vocab log-softmax."""

from __future__ import annotations

import torch


def token_logprobs(logits_BTV: torch.Tensor, ids_BT: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log softmax(logits / temperature)[ids] per position: (B, T, V), (B, T) -> (B, T) float32.

    logit[id] - logsumexp(logits): one gather and one reduction instead of a (B, T, V) log-softmax copy.
    """
    logits = logits_BTV.float()
    if temperature != 1.0:
        logits = logits / temperature
    picked = logits.gather(-1, ids_BT.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def entropy_from_logits(logits_BTV: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(logits) per position: (B, T, V) -> (B, T)."""
    logits = logits_BTV.float()
    logz = torch.logsumexp(logits, dim=-1, keepdim=True)
    probs = torch.exp(logits - logz)
    return (logz.squeeze(-1) - (probs * logits).sum(-1))
