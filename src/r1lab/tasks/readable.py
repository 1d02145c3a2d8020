"""Turning R1-Zero samples into readable cold-start data (R1-v1 §2.3.1; R1-v2 B.3.2).

Filters keep a sample only if it is correct, well formed, in the question's language throughout, and
free of repetition; the rewrite lays the reasoning out one step per line and adds a short summary in
the question's language, in the R1 layout ``<think>\\n…\\n</think>\\n<summary>``.
"""

from __future__ import annotations

import random
import re
from collections import Counter

from r1lab.rewards.behaviour import language_consistency
from r1lab.rewards.format import is_r1_format, is_r1zero_format, reasoning_of
from r1lab.tasks.base import Example
from r1lab.tasks.languages import LEXICON
from r1lab.tasks.solutions import write_reasoning

# A careful step ends with its result: "so 47+38=85." (English) or "entonces 47+38=85." (Spanish).
_STEP_END = re.compile(r"(?:\b(?:so|entonces) [^.]*=[^.]*\.)")


def is_repetitive(text: str, n: int = 6, max_repeats: int = 2) -> bool:
    """True when some run of ``n`` words occurs more than ``max_repeats`` times (loops, stutters)."""
    words = (text or "").split()
    if len(words) < n:
        return False
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    return max(grams.values()) > max_repeats


def split_steps(reasoning: str) -> list[str]:
    """Steps of a worked solution: careful steps end in "so a op b = c."; otherwise one per sentence."""
    text = " ".join(reasoning.split())
    ends = [m.end() for m in _STEP_END.finditer(text)]
    if ends:
        steps, start = [], 0
        for e in ends:
            steps.append(text[start:e].strip())
            start = e
        tail = text[start:].strip()
        if tail:
            steps.append(tail)
        return [s for s in steps if s]
    return [s.strip() + "." for s in re.split(r"\.\s+", text.rstrip(".")) if s.strip()]


def summary_line(example: Example, value) -> str:
    """The reader's summary: the answer, in the question's language."""
    return f"{LEXICON[example.meta.get('lang', 'en')]['answer_is']} {value}."


def readable_response(steps: list[str], summary: str) -> str:
    return f"<think> {' '.join(steps)} </think> {summary}"


def world_solution(example: Example, layout: str = "r1") -> str:
    """A worked solution written by the world itself (careful column arithmetic, exact quotients) in the
    readable R1 layout (``layout="r1"``) or R1-Zero's (``"r1zero"``). The analogue of human-written data:
    it tops up cold-start sets that filtering left short, and it is the solved example of few-shot prompts."""
    lang = example.meta.get("lang", "en")
    steps = example.meta["steps"]
    reasoning, value = write_reasoning(steps, "careful", [lang] * len(steps), random.Random(0), 0.0)
    if layout == "r1zero":
        return f"<think> {' '.join(split_steps(reasoning))} </think> <answer> {value} </answer>"
    return readable_response(split_steps(reasoning), summary_line(example, value))


def rewrite_readable(response: str, example: Example, answer) -> str:
    """An R1-Zero response rewritten in the readable R1 layout, summary in the question's language."""
    return readable_response(split_steps(reasoning_of(response)), summary_line(example, answer))


def keep_sample(response: str, example: Example, verdict, layout: str = "r1zero") -> tuple[bool, str]:
    """(keep, reason): correct, well formed in ``layout`` ("r1zero", or "r1" for the readable layout),
    one language (the question's), no repetition. Cold start filters R1-Zero samples with "r1zero";
    rejection sampling and distillation filter readable samples with "r1"."""
    if not verdict.correct:
        return False, "incorrect"
    well_formed = is_r1zero_format(response) and bool(reasoning_of(response).strip()) if layout == "r1zero" \
        else is_r1_format(response)
    if not well_formed:
        return False, "malformed"
    if language_consistency(reasoning_of(response), example.meta.get("lang", "en")) < 1.0:
        return False, "language"
    if is_repetitive(response):
        return False, "repetition"
    return True, "kept"
