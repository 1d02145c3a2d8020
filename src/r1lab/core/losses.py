"""The GRPO family of policy-gradient losses with a k3 KL penalty, their token aggregations, and the SFT loss.

``policy_loss`` is DeepSeekMath's clipped surrogate by default; keyword arguments select the later
variants (see its docstring): GSPO's sequence-level ratio, MiniMax-M1's CISPO, dual-clip, and truncated
importance sampling against the sampler's own log-probabilities.
"""

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


# -- ratios: pi_theta / pi_old at token or sequence level ------------------------------------------------------

def _token_ratio(logprobs_BT, old_logprobs_BT, mask_BT):
    # PPO / DeepSeekMath Eq. 3: r_t = exp(logp_t - old_t)
    return torch.exp((logprobs_BT - old_logprobs_BT).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP))


def _sequence_ratio(logprobs_BT, old_logprobs_BT, mask_BT):
    # GSPO-token (Zheng et al. 2025, "GSPO-token"): log s_i = sum_t m_t (logp_t - old_t) / sum_t m_t, the
    # length-normalised sequence likelihood ratio; s_it = exp(sg(log s_i) - sg(logp_t) + logp_t) has the
    # value s_i and the gradient s_i * grad logp_t. Masked positions may hold anything (-inf): they are
    # replaced by 0, not multiplied by the mask (0 * inf is nan).
    live = mask_BT > 0
    diff = torch.where(live, logprobs_BT - old_logprobs_BT, torch.zeros_like(logprobs_BT))
    log_s = diff.sum(dim=1, keepdim=True) / mask_BT.sum(dim=1, keepdim=True).clamp(min=1.0)
    log_s = log_s.detach().clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    lp = torch.where(live, logprobs_BT, torch.zeros_like(logprobs_BT))
    return torch.exp(log_s + (lp - lp.detach()))


RATIO_LEVELS = {"token": _token_ratio, "sequence": _sequence_ratio}


# -- objectives: per-token surrogate to maximise, and which tokens it clipped (low, high) -------------------------

def _clip_objective(ratio_BT, logprobs_BT, adv_B1, mask_BT, clip_eps, clip_eps_high):
    # PPO's pessimistic clipped surrogate (DeepSeekMath Eq. 3). A token is clipped when the clipped branch is
    # the smaller one and strictly differs: ratio below 1-eps with A < 0, or above 1+eps_high with A > 0.
    surr_unclipped = ratio_BT * adv_B1
    surr_clipped = ratio_BT.clamp(1.0 - clip_eps, 1.0 + clip_eps_high) * adv_B1
    objective = torch.minimum(surr_unclipped, surr_clipped)
    with torch.no_grad():
        low = (ratio_BT < 1.0 - clip_eps) & (adv_B1 < 0)
        high = (ratio_BT > 1.0 + clip_eps_high) & (adv_B1 > 0)
    return objective, low, high


def _cispo_objective(ratio_BT, logprobs_BT, adv_B1, mask_BT, clip_eps, clip_eps_high):
    # CISPO (MiniMax-M1, MiniMax 2025): REINFORCE with the importance weight truncated from
    # above and detached, so no token's gradient is dropped (PPO's clip zeroes it); no lower bound here.
    # Masked positions may hold -inf: replaced by 0 (see _sequence_ratio).
    weight = ratio_BT.detach().clamp(max=1.0 + clip_eps_high)
    with torch.no_grad():
        high = ratio_BT > 1.0 + clip_eps_high
    lp = torch.where(mask_BT > 0, logprobs_BT, torch.zeros_like(logprobs_BT))
    return weight * adv_B1 * lp, torch.zeros_like(high), high


OBJECTIVES = {"clip": _clip_objective, "cispo": _cispo_objective}


# -- truncated importance sampling against the sampler (behaviour policy) ---------------------------------------

def _token_is_weights(old_logprobs_BT, behaviour_logprobs_BT, mask_BT, is_cap):
    # w_t = min(exp(old_t - beh_t), C) (truncated IS, Yao et al. 2025; Ionides 2008)
    raw = torch.exp((old_logprobs_BT - behaviour_logprobs_BT).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP))
    return raw.clamp(max=is_cap), raw > is_cap


def _sequence_is_weights(old_logprobs_BT, behaviour_logprobs_BT, mask_BT, is_cap):
    # w_i = min(exp(sum_t m_t (old_t - beh_t)), C), the same weight on every token of the response
    diff = torch.where(mask_BT > 0, old_logprobs_BT - behaviour_logprobs_BT, torch.zeros_like(old_logprobs_BT))
    raw = torch.exp(diff.sum(dim=1, keepdim=True).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)).expand_as(diff)
    return raw.clamp(max=is_cap), raw > is_cap


IS_LEVELS = {"token": _token_is_weights, "sequence": _sequence_is_weights}


def check_loss_options(ratio_level: str = "token", objective: str = "clip", dual_clip: float | None = None,
                       is_level: str = "token", is_cap: float = 2.0) -> None:
    """Raise ValueError naming the bad option (and the valid names) of ``policy_loss``."""
    for name, value, valid in (("ratio_level", ratio_level, RATIO_LEVELS), ("objective", objective, OBJECTIVES),
                               ("is_level", is_level, IS_LEVELS)):
        if value not in valid:
            raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
    if dual_clip is not None and not dual_clip > 1.0:
        raise ValueError(f"dual_clip must be > 1 (or None), got {dual_clip}")
    if dual_clip is not None and objective != "clip":
        raise ValueError(f"dual_clip bounds the clipped objective; it does not apply to objective {objective!r}")
    if not is_cap > 0:
        raise ValueError(f"is_cap must be > 0, got {is_cap}")


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
    ratio_level: str = "token",
    objective: str = "clip",
    dual_clip: float | None = None,
    behaviour_logprobs_BT: torch.Tensor | None = None,
    is_level: str = "token",
    is_cap: float = 2.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """GRPO-family surrogate loss, to be minimised: ``agg`` over tokens of ``w * -objective + kl_coef * k3``.

    Defaults are GRPO (DeepSeekMath Eq. 3, token level):
        r_t = exp(logp_t - old_t);  objective_t = min(r_t A_i, clip(r_t, 1-clip_eps, 1+clip_eps_high) A_i)
    ``clip_eps_high`` defaults to ``clip_eps`` (symmetric); a larger value is DAPO's clip-higher.

    ``ratio_level="sequence"`` (GSPO-token, Zheng et al. 2025) replaces r_t by
        log s_i = sum_t m_t (logp_t - old_t) / sum_t m_t;  s_it = exp(sg(log s_i) - sg(logp_t) + logp_t),
    whose value is s_i and whose gradient is s_i grad logp_t (the sequence-level GSPO gradient).
    ``objective="cispo"`` (MiniMax-M1 2025): objective_t = sg(min(r_t, 1+clip_eps_high)) A_i logp_t.
    ``dual_clip=c`` (c > 1, Ye et al. 2020): for A_i < 0 the objective is max(objective_t, c A_i).
    ``behaviour_logprobs_BT`` (the sampler's log-probabilities) turns on truncated importance sampling for
    a sampler/trainer mismatch (Yao et al. 2025): detached weights
        is_level="token":    w_t = min(exp(old_t - beh_t), is_cap)
        is_level="sequence": w_i = min(exp(sum_t m_t (old_t - beh_t)), is_cap)
    multiply the per-token policy loss before aggregation; the KL term is not weighted. Without it, w = 1.
    The k3 KL term is computed against ``ref_logprobs_BT`` when given.

    Shapes: logprobs_BT, old_logprobs_BT, mask_BT, ref_logprobs_BT, behaviour_logprobs_BT (B, T);
    advantages_B (B,). Returns (scalar loss, metrics of python floats: clip fractions, kl, ratio statistics,
    and with behaviour log-probabilities is_weight_mean and is_capped_frac over the loss tokens).
    Unknown names and out-of-range values raise ValueError (see ``check_loss_options``).
    """
    check_loss_options(ratio_level, objective, dual_clip, is_level, is_cap)
    if clip_eps_high is None:
        clip_eps_high = clip_eps
    mask = mask_BT.to(logprobs_BT.dtype)
    ratio = RATIO_LEVELS[ratio_level](logprobs_BT, old_logprobs_BT, mask)
    adv = advantages_B.to(logprobs_BT.dtype).unsqueeze(1)
    objective_BT, clipped_low, clipped_high = OBJECTIVES[objective](ratio, logprobs_BT, adv, mask, clip_eps,
                                                                      clip_eps_high)
    extra: dict[str, torch.Tensor] = {}
    if dual_clip is not None:
        # Ye et al. 2020 (dual-clip PPO): with A < 0 a huge ratio makes min(.) unbounded below; c*A bounds it (no gradient)
        floor = dual_clip * adv
        extra["clip_frac_dual"] = ((objective_BT < floor) & (adv < 0)).detach()
        objective_BT = torch.where(adv < 0, torch.maximum(objective_BT, floor), objective_BT)
    per_token = -objective_BT
    if behaviour_logprobs_BT is not None:
        with torch.no_grad():
            weight, capped = IS_LEVELS[is_level](old_logprobs_BT.detach(), behaviour_logprobs_BT, mask, is_cap)
        per_token = per_token * weight
        extra["is_weight_mean"], extra["is_capped_frac"] = weight, capped
    kl = None
    if ref_logprobs_BT is not None:
        kl = kl_k3(logprobs_BT, ref_logprobs_BT)
        if kl_coef != 0.0:
            per_token = per_token + kl_coef * kl
    loss = aggregate(per_token, mask, agg, max_tokens)

    with torch.no_grad():
        n = mask.sum().clamp(min=1.0)
        clipped_low = clipped_low.to(mask.dtype) * mask
        clipped_high = clipped_high.to(mask.dtype) * mask
        metrics = {
            "clip_frac_low": float(clipped_low.sum() / n),
            "clip_frac_high": float(clipped_high.sum() / n),
            "clip_frac": float((clipped_low + clipped_high).sum() / n),
            "ratio_mean": float((ratio * mask).sum() / n),
            "ratio_max": float(ratio.masked_fill(mask == 0, 0.0).max()) if bool(mask.any()) else 1.0,
            "kl": float((kl * mask).sum() / n) if kl is not None else 0.0,
        }
        metrics.update({k: float((v.to(mask.dtype) * mask).sum() / n) for k, v in extra.items()})
    return loss, metrics


def sft_loss(logprobs_BT: torch.Tensor, mask_BT: torch.Tensor, agg: str = "token-mean") -> tuple[torch.Tensor, dict[str, float]]:
    """Negative log-likelihood of the masked tokens (response-only SFT when the mask covers the response)."""
    loss = aggregate(-logprobs_BT, mask_BT, agg)
    n_tok = float(mask_BT.sum())
    return loss, {"nll": float(loss.detach()), "tokens": n_tok}
