"""Clipped policy-gradient loss with a k3 KL penalty (GRPO), its token aggregations, and the SFT loss."""

from __future__ import annotations

import torch

# exp() of a log-ratio beyond this overflows float32 or dominates the loss; the peers clamp the same way.
_LOG_RATIO_CLAMP = 20.0


def kl_k3(logprobs_BT: torch.Tensor, ref_logprobs_BT: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(pi || pi_ref) (Schulman 2020; DeepSeekMath Eq. 4, R1 Eq. 2).

    pi_ref/pi - log(pi_ref/pi) - 1, which is >= 0 everywhere. Shapes (B, T) in, (B, T) out.
    """
    log_ratio = (ref_logprobs_BT - logprobs_BT).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    return torch.exp(log_ratio) - log_ratio - 1.0


def _seq_mean_token_mean(values_BT, mask_BT, max_tokens):
    # DeepSeekMath Eq. 3: (1/G) sum_i (1/|o_i|) sum_t. An empty row contributes 0.
    per_seq = (values_BT * mask_BT).sum(dim=1) / mask_BT.sum(dim=1).clamp(min=1.0)
    return per_seq.mean()


def _token_mean(values_BT, mask_BT, max_tokens):
    # DAPO (Yu et al. 2025): every token weighs the same, so long responses are not down-weighted.
    return (values_BT * mask_BT).sum() / mask_BT.sum().clamp(min=1.0)


def _seq_mean_token_sum_norm(values_BT, mask_BT, max_tokens):
    # Dr. GRPO (Liu et al. 2025): token sums divided by a constant, removing the length bias of 1/|o_i|.
    norm = float(max_tokens) if max_tokens is not None else float(mask_BT.shape[1])
    return ((values_BT * mask_BT).sum(dim=1) / norm).mean()


AGGREGATIONS = {
    "seq-mean-token-mean": _seq_mean_token_mean,
    "token-mean": _token_mean,
    "seq-mean-token-sum-norm": _seq_mean_token_sum_norm,
}


def aggregate(values_BT: torch.Tensor, mask_BT: torch.Tensor, agg: str, max_tokens: int | None = None) -> torch.Tensor:
    """Reduce per-token values (B, T) under mask (B, T) to a scalar with one of ``AGGREGATIONS``."""
    if agg not in AGGREGATIONS:
        raise ValueError(f"unknown loss aggregation {agg!r}; valid: {', '.join(AGGREGATIONS)}")
    return AGGREGATIONS[agg](values_BT, mask_BT.to(values_BT.dtype), max_tokens)


def policy_loss(
    logprobs_BT: torch.Tensor,
    old_logprobs_BT: torch.Tensor,
    advantages_B: torch.Tensor,
    mask_BT: torch.Tensor,
    *,
    clip_eps: float = 0.2,
    clip_eps_high: float | None = None,
    ref_logprobs_BT: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    agg: str = "seq-mean-token-mean",
    max_tokens: int | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """GRPO surrogate loss (DeepSeekMath Eq. 3, token level), to be minimised.

    per token: -( min(ratio*A, clip(ratio, 1-clip_eps, 1+clip_eps_high)*A) - kl_coef*k3 ),
    ratio = pi/pi_old = exp(logprobs - old_logprobs); k3 against ``ref_logprobs_BT`` when given.
    ``clip_eps_high`` defaults to ``clip_eps`` (symmetric); a larger value is DAPO's clip-higher.

    Shapes: logprobs_BT, old_logprobs_BT, mask_BT, ref_logprobs_BT (B, T); advantages_B (B,).
    Returns (scalar loss, metrics of python floats: clip fractions, kl, ratio statistics).
    """
    if clip_eps_high is None:
        clip_eps_high = clip_eps
    mask = mask_BT.to(logprobs_BT.dtype)
    log_ratio = (logprobs_BT - old_logprobs_BT).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    ratio = torch.exp(log_ratio)
    adv = advantages_B.to(logprobs_BT.dtype).unsqueeze(1)
    surr_unclipped = ratio * adv
    surr_clipped = ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps_high) * adv
    objective = torch.minimum(surr_unclipped, surr_clipped)
    per_token = -objective
    kl = None
    if ref_logprobs_BT is not None:
        kl = kl_k3(logprobs_BT, ref_logprobs_BT)
        if kl_coef != 0.0:
            per_token = per_token + kl_coef * kl
    loss = aggregate(per_token, mask, agg, max_tokens)

    with torch.no_grad():
        n = mask.sum().clamp(min=1.0)
        # A token is clipped when the clipped branch is the smaller one and strictly differs from the
        # unclipped one: ratio below 1-eps with A < 0, or above 1+eps_high with A > 0.
        clipped_low = ((ratio < 1.0 - clip_eps) & (adv < 0)).to(mask.dtype) * mask
        clipped_high = ((ratio > 1.0 + clip_eps_high) & (adv > 0)).to(mask.dtype) * mask
        metrics = {
            "clip_frac_low": float(clipped_low.sum() / n),
            "clip_frac_high": float(clipped_high.sum() / n),
            "clip_frac": float((clipped_low + clipped_high).sum() / n),
            "ratio_mean": float((ratio * mask).sum() / n),
            "ratio_max": float(ratio.masked_fill(mask == 0, 0.0).max()) if bool(mask.any()) else 1.0,
            "kl": float((kl * mask).sum() / n) if kl is not None else 0.0,
        }
    return loss, metrics


def sft_loss(logprobs_BT: torch.Tensor, mask_BT: torch.Tensor, agg: str = "token-mean") -> tuple[torch.Tensor, dict[str, float]]:
    """Negative log-likelihood of the masked tokens (response-only SFT when the mask covers the response)."""
    loss = aggregate(-logprobs_BT, mask_BT, agg)
    n_tok = float(mask_BT.sum())
    return loss, {"nll": float(loss.detach()), "tokens": n_tok}
