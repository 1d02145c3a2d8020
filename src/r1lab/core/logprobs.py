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


def _logsumexp(x: torch.Tensor) -> torch.Tensor:
    """``torch.logsumexp(x, -1, keepdim=True)`` by the same operations as ATen's, so the same bits."""
    m = x.amax(-1, keepdim=True)
    m = m.masked_fill(m.abs() == float("inf"), 0.0)
    return (x - m).exp_().sum(-1, keepdim=True).log_().add_(m)


def _lp_entropy(x, ids, with_entropy: bool, keep_probs: bool):
    """(log softmax(x)[ids], entropy or None, softmax(x) or None) for rows x (M, V) float32."""
    logz = _logsumexp(x)
    lp = x.gather(-1, ids.unsqueeze(-1)).squeeze(-1) - logz.squeeze(-1)
    if not (with_entropy or keep_probs):
        return lp, None, None
    probs = (x - logz).exp_()
    ent = logz.squeeze(-1) - (probs * x).sum(-1) if with_entropy else None
    return lp, ent, probs


class _TokenLogprobEntropy(torch.autograd.Function):
    """``token_logprobs`` and (optionally) ``entropy_from_logits`` of rows (M, V), the same values bit for
    bit as those two under autograd (the same operations in the same order), in fewer passes over the
    logits: one logsumexp for both; the softmax that logsumexp's backward would recompute is kept from
    the forward (the entropy needs it too); the gather's gradient is added into the logsumexp's in place
    of a zero (M, V) tensor and a sum."""

    @staticmethod
    def forward(ctx, x, ids, with_entropy: bool):
        lp, ent, probs = _lp_entropy(x, ids, with_entropy, keep_probs=True)
        ctx.save_for_backward(probs, ids)
        if ent is not None:
            ctx.mark_non_differentiable(ent)
        return lp, ent

    @staticmethod
    def backward(ctx, g_lp, _g_ent):
        probs, ids = ctx.saved_tensors
        grad = (-g_lp).unsqueeze(-1) * probs
        return grad.scatter_add_(-1, ids.unsqueeze(-1), g_lp.unsqueeze(-1)), None, None


def token_logprobs_entropy(logits_MV: torch.Tensor, ids_M: torch.Tensor, temperature: float = 1.0,
                           with_entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``token_logprobs`` of rows, (M, V), (M,) -> (M,) float32, with their entropies (M,) (no gradient)
    when ``with_entropy``: the numbers of those two functions, computed together (``_TokenLogprobEntropy``)."""
    logits = logits_MV.float()
    if temperature != 1.0:
        logits = logits / temperature
    if torch.is_grad_enabled() and logits.requires_grad:
        return _TokenLogprobEntropy.apply(logits, ids_M, with_entropy)
    with torch.no_grad():
        lp, ent, _ = _lp_entropy(logits, ids_M, with_entropy, keep_probs=False)
    return lp, ent


def entropy_from_logits(logits_BTV: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(logits) per position: (B, T, V) -> (B, T)."""
    logits = logits_BTV.float()
    logz = torch.logsumexp(logits, dim=-1, keepdim=True)
    probs = torch.exp(logits - logz)
    return (logz.squeeze(-1) - (probs * logits).sum(-1))
