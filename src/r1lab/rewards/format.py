"""Format rewards.

- R1-Zero layout: ``<think> reasoning </think> <answer> answer </answer>`` (R1-v1 Table 1).
- R1 readable layout: ``<think> reasoning </think> summary`` — the paper's
  ``|special_token|<reasoning_process>|special_token|<summary>`` (R1-v1 §2.3.1) with ``<think>`` and
  ``</think>`` as the two special tokens (as in the released DeepSeek-R1), and a short plain-text summary
  for the reader instead of R1-Zero's bare ``<answer>`` tag.
"""

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


_R1 = re.compile(r"^\s*<think>(?P<think>.*?)</think>(?P<summary>.*)$", re.DOTALL)
MAX_SUMMARY_CHARS = 300


def summary_of(response: str) -> str:
    """The part a user reads: what follows ``</think>`` (all of it when there is no reasoning block);
    the content of an ``<answer>`` block when it has one."""
    text = response or ""
    if "</think>" in text:
        text = text.split("</think>", 1)[1]
    m = re.search(r"<answer>(.*?)</answer>", text, re.DOTALL)
    return (m.group(1) if m else text).strip()


def is_r1_format(response: str) -> bool:
    """One reasoning block (may be empty), then a non-empty, tag-free summary of at most 300 characters."""
    m = _R1.match(response or "")
    if m is None:
        return False
    summary = m.group("summary").strip()
    if not summary or len(summary) > MAX_SUMMARY_CHARS:
        return False
    return not any(t in m.group("think") or t in summary for t in _TAGS)


def format_r1_reward(responses: list[str], examples=None) -> list[float]:
    """1.0 for the readable R1 layout, else 0.0."""
    return [1.0 if is_r1_format(r) else 0.0 for r in responses]
