"""Format reward for the R1-Zero template: reasoning in <think>…</think>, then the answer in <answer>…</answer>."""

from __future__ import annotations

import re

# Exactly one think block followed by exactly one answer block, nothing else but whitespace around them.
_R1ZERO = re.compile(r"^\s*<think>(?P<think>.*?)</think>\s*<answer>(?P<answer>.*?)</answer>\s*$", re.DOTALL)
_TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def is_r1zero_format(response: str) -> bool:
    m = _R1ZERO.match(response or "")
    if m is None:
        return False
    # nested or repeated tags inside either block break the layout
    return not any(t in m.group("think") or t in m.group("answer") for t in _TAGS)


def reasoning_of(response: str) -> str:
    """The reasoning part: inside <think>…</think> when present, else the text before the final answer."""
    m = re.search(r"<think>(.*?)(?:</think>|$)", response or "", re.DOTALL)
    if m:
        return m.group(1)
    return (response or "").split("<answer>")[0]


def format_reward(responses: list[str], examples=None) -> list[float]:
    """1.0 when a response follows the R1-Zero layout exactly, else 0.0 (R1-v1 §2.2.2 "format rewards")."""
    return [1.0 if is_r1zero_format(r) else 0.0 for r in responses]
