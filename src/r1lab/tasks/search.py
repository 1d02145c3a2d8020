"""Worked solutions of reach-a-target problems (``target.py``), for the pretraining corpus.

Three kinds of writer:

- ``direct``: the answer alone (a guess, unchecked);
- ``guess``: one combination, worked out and answered without comparing it with the target;
- ``search``: a combination worked out and checked against the target; when it misses, the writer says
  so and tries another ("try (3+5)*9: 3+5=8, 8*9=72. check 72 vs 24: not. wait, try (3*5)+9: 3*5=15,
  15+9=24. check 24 vs 24: yes."),
  until one reaches it, going through the combinations in a fixed order after the first guess. This is
  the checking and trying again that R1-Zero is reported to learn; here 15% of the writers do it,
  and RL is free to amplify it or not.

A guess is right as often as the writer's intuition (``intuition``) or chance allows.
"""

from __future__ import annotations

import itertools
import random

from r1lab.tasks.languages import LEXICON
from r1lab.tasks.readable import summary_line
from r1lab.tasks.target import OPS, evaluate, expression


def attempt_line(nums: list[int], ops: list[str], target: int, L: dict, check: bool = True) -> str:
    """One combination worked out and, with ``check``, compared with the target: the result set beside
    the target before the verdict, two numbers side by side ("check 72 vs 24: not.")."""
    values = evaluate(nums, ops)
    steps, cur = [], nums[0]
    for op, n, v in zip(ops, nums[1:], values):
        steps.append(f"{cur}{op}{n}={v}")
        cur = v
    line = f"{L['try']} {expression(nums, ops)}: {', '.join(steps)}."
    if not check:
        return line
    verdict = L["yes"] if values[-1] == target else L["not"]
    return f"{line} {L['check']} {values[-1]} {L['vs']} {target}: {verdict}."


def first_guess(ops: list[str], rng: random.Random, intuition: float) -> list[str]:
    """The writer's first combination: the right one with probability ``intuition``, else a random one."""
    if rng.random() < intuition:
        return list(ops)
    return [rng.choice(OPS) for _ in ops]


def write_search(nums: list[int], right_ops: list[str], target: int, style: str, langs: list[str],
                 rng: random.Random, intuition: float = 0.3) -> tuple[str, str]:
    """(reasoning, answer expression) of one writer; ``langs`` gives each attempt's language in turn
    (the last one is repeated), so a writer can switch language midway as in the arithmetic documents."""
    if style == "direct":  # nobody sees the answer at a glance: a direct answer is an unchecked guess
        return "", expression(nums, first_guess(right_ops, rng, intuition))
    lang = lambda i: LEXICON[langs[min(i, len(langs) - 1)]]  # noqa: E731
    guess = first_guess(right_ops, rng, intuition)
    if style == "guess":  # one combination, worked out, never compared with the target
        return attempt_line(nums, guess, target, lang(0), check=False), expression(nums, guess)
    if style != "search":
        raise ValueError(f"unknown search style {style!r}")
    # after the first guess the writer goes through the combinations methodically, in a fixed order
    # (+ before - before *, first operation first), so nothing is tried twice
    order = [list(c) for c in itertools.product(OPS, repeat=len(right_ops)) if list(c) != guess]
    lines, tried = [], [guess] + order
    for i, ops in enumerate(tried):
        line = attempt_line(nums, ops, target, lang(i))
        if evaluate(nums, ops)[-1] == target:
            lines.append(line)
            return " ".join(lines), expression(nums, ops)
        lines.append(f"{line} {lang(i + 1)['wait']},")
    raise AssertionError("unreachable: the right combination is among those tried")


def format_search(reasoning: str, answer: str, example, layout: str) -> str:
    """A solution in the readable R1 layout ("r1") or R1-Zero's ("r1zero")."""
    if layout == "r1zero":
        return f"<think> {reasoning} </think> <answer> {answer} </answer>"
    return f"<think> {reasoning} </think> {summary_line(example, answer)}"
