"""Reward functions in TRL's calling convention that exercise the corners of the contract (tests only)."""

import asyncio
import time

CALLS = []


def record(prompts, completions, completion_ids, **columns):
    """Scores len(completion); remembers what it was called with."""
    CALLS.append({"prompts": prompts, "completions": completions, "completion_ids": completion_ids, **columns})
    return [float(len(c)) for c in completions]


def matches_answer(completions, answer, **kwargs):
    return [1.0 if str(a) in c else 0.0 for c, a in zip(completions, answer)]


async def async_len(completions, **kwargs):
    await asyncio.sleep(0)
    return [float(len(c)) for c in completions]


def none_for_short(completions, **kwargs):
    """No score (None) for completions shorter than 3 characters."""
    return [None if len(c) < 3 else 1.0 for c in completions]


def fails_on_boom(completions, **kwargs):
    if any("boom" in c for c in completions):
        raise ValueError("boom in a completion")
    return [1.0] * len(completions)


def hangs_on_slow(completions, **kwargs):
    if any("slow" in c for c in completions):
        time.sleep(30)
    return [1.0] * len(completions)


def wrong_length(completions, **kwargs):
    return [1.0] * (len(completions) + 1)


def text_scores(completions, **kwargs):
    return ["high"] * len(completions)


NOT_A_FUNCTION = 3
