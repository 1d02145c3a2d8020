"""Group-relative advantages (GRPO, DeepSeekMath §4.1.2; R1 Eq. 3)."""

from __future__ import annotations

import torch


def _centred(rewards_PG: torch.Tensor) -> torch.Tensor:
    return rewards_PG - rewards_PG.mean(dim=1, keepdim=True)


def _group_std(rewards_PG: torch.Tensor) -> torch.Tensor:
    # Sample std (Bessel-corrected), as torch.std and the peers (TRL, verl) compute it; the papers write
    # std({r_1..r_G}) without saying which. A group of one has no spread: std 0.
    if rewards_PG.shape[1] < 2:
        return torch.zeros_like(rewards_PG[:, :1])
    return rewards_PG.std(dim=1, keepdim=True)


def _scale_group(rewards_PG: torch.Tensor, eps: float) -> torch.Tensor:
    """(r - group mean) / (group std + eps): the paper's A_i (R1 Eq. 3)."""
    return _centred(rewards_PG) / (_group_std(rewards_PG) + eps)


def _scale_batch(rewards_PG: torch.Tensor, eps: float) -> torch.Tensor:
    """(r - group mean) / (std of all rewards in the batch + eps)."""
    std = rewards_PG.std() if rewards_PG.numel() > 1 else rewards_PG.new_zeros(())
    return _centred(rewards_PG) / (std + eps)


def _scale_none(rewards_PG: torch.Tensor, eps: float) -> torch.Tensor:
    """r - group mean, no std division (Dr. GRPO, Liu et al. 2025: std scaling biases toward easy/hard groups)."""
    return _centred(rewards_PG)


ADVANTAGES = {"group": _scale_group, "batch": _scale_batch, "none": _scale_none}


def group_advantages(rewards_PG: torch.Tensor, scale: str = "group", eps: float = 1e-6) -> torch.Tensor:
    """Outcome-supervision advantages, one per sample.

    rewards_PG: (P prompts, G samples) scalar rewards. Returns advantages_PG of the same shape.
    A group whose rewards are all equal gets zero advantages, never NaN.
    """
    if rewards_PG.dim() != 2:
        raise ValueError(f"rewards_PG must be 2-D (P, G), got shape {tuple(rewards_PG.shape)}")
    if scale not in ADVANTAGES:
        raise ValueError(f"unknown advantage scale {scale!r}; valid: {', '.join(ADVANTAGES)}")
    return ADVANTAGES[scale](rewards_PG.to(torch.float32), eps)
