"""Packing rollouts into tensors and computing per-token log-probabilities of responses.

Layout: prompts left-padded to a common width, responses right-padded after them, so every response
starts in the same column and the LM head runs only over response positions (``logits_to_keep``):
for a 150k-vocabulary model that skips most of the logits a naive forward would materialise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from r1lab.core import entropy_from_logits, token_logprobs
from r1lab.models.forward import lm_forward, positions_from_mask


@dataclass
class Batch:
    input_ids: torch.Tensor    # (B, P + R) left-padded prompt, right-padded response
    attention: torch.Tensor    # (B, P + R)
    positions: torch.Tensor    # (B, P + R)
    response: torch.Tensor     # (B, R) response token ids (pad after the end)
    mask: torch.Tensor         # (B, R) 1.0 on response tokens that count in the loss

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def select(self, idx: torch.Tensor) -> "Batch":
        return Batch(*(t[idx] for t in (self.input_ids, self.attention, self.positions, self.response, self.mask)))

    def to(self, device) -> "Batch":
        return Batch(*(t.to(device) for t in (self.input_ids, self.attention, self.positions, self.response, self.mask)))


def build_batch(prompt_ids: list[list[int]], response_ids: list[list[int]], pad_id: int,
                loss_mask: list[list[float]] | None = None) -> Batch:
    """Tensors for ``B`` (prompt, response) pairs. ``loss_mask`` defaults to every response token."""
    width_p = max(len(p) for p in prompt_ids)
    width_r = max(1, max(len(r) for r in response_ids))
    B = len(prompt_ids)
    ids = torch.full((B, width_p + width_r), pad_id, dtype=torch.long)
    attn = torch.zeros((B, width_p + width_r), dtype=torch.long)
    resp = torch.full((B, width_r), pad_id, dtype=torch.long)
    mask = torch.zeros((B, width_r), dtype=torch.float32)
    for i, (p, r) in enumerate(zip(prompt_ids, response_ids)):
        ids[i, width_p - len(p): width_p] = torch.tensor(p, dtype=torch.long)
        attn[i, width_p - len(p): width_p + len(r)] = 1
        if r:
            ids[i, width_p: width_p + len(r)] = torch.tensor(r, dtype=torch.long)
            resp[i, : len(r)] = torch.tensor(r, dtype=torch.long)
            m = loss_mask[i] if loss_mask is not None else [1.0] * len(r)
            mask[i, : len(r)] = torch.tensor(m, dtype=torch.float32)
    return Batch(ids, attn, positions_from_mask(attn), resp, mask)


def response_logprobs(model, batch: Batch, temperature: float = 1.0, with_entropy: bool = False, autocast=None):
    """Per-token log-probabilities (B, R) of the response tokens (and their entropies if asked)."""
    R = batch.response.shape[1]
    if autocast is not None:
        with autocast():
            logits, _ = lm_forward(model, batch.input_ids, batch.attention, batch.positions, logits_to_keep=R + 1)
    else:
        logits, _ = lm_forward(model, batch.input_ids, batch.attention, batch.positions, logits_to_keep=R + 1)
    logits = logits[:, :-1, :]  # position t predicts token t+1
    lp = token_logprobs(logits, batch.response, temperature)
    ent = None
    if with_entropy:
        with torch.no_grad():
            ent = entropy_from_logits(logits.detach().float() / temperature)
    return lp, ent
