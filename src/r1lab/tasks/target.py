"""Reach a target: put + - or * between given numbers, in their order, to make a given number.

"Make 24 with 3 5 9" has the answer ``(3*5)+9``. Nothing computes the operations forward from the
target: a solver guesses a combination, works it out, and compares the result with the target. Checking
a guess is one short evaluation against a number written in the question; finding the right one is a
search whose first guess is usually wrong, whatever the solver's skill. That is the
verification-generation asymmetry under which checking one's work and trying again pays (Gandhi et al.
2025 study the same behaviours on Countdown, of which this is the in-order variant), and it is the part
of the tiny world where R1-Zero's "aha moment" can be earned: the corpus shows checking writers rarely,
no reward looks at it, and RL decides whether it is worth the tokens.

Left-to-right evaluation with explicit parentheses keeps an answer unambiguous; the verifier accepts any
expression that uses each number once and equals the target (``countdown.check_equation``).
"""

from __future__ import annotations

import random
import re

from r1lab.rewards.extract import answer_tag
from r1lab.tasks.base import Example, Verdict, draw_split, register_task, split_of
from r1lab.tasks.countdown import check_equation

OPS = ("+", "-", "*")
QUESTION = {"en": "Make {target} with {nums}", "es": "Forma {target} con {nums}"}
_ANSWER_IS = re.compile(r"(?:answer is|respuesta es)\s*:?\s*([^\n]+)", re.IGNORECASE)


def evaluate(nums: list[int], ops: list[str]) -> list[int]:
    """Running values of ``((n0 op0 n1) op1 n2) ...`` (one per operation)."""
    values, cur = [], nums[0]
    for op, n in zip(ops, nums[1:]):
        cur = cur + n if op == "+" else cur - n if op == "-" else cur * n
        values.append(cur)
    return values


def expression(nums: list[int], ops: list[str]) -> str:
    """``((a+b)*c)-d``: explicit parentheses, so left-to-right is also the usual reading."""
    expr = str(nums[0])
    for i, (op, n) in enumerate(zip(ops, nums[1:])):
        inner = f"{expr}{op}{n}"
        expr = f"({inner})" if i < len(ops) - 1 else inner
    return expr


def answer_text(response: str) -> str | None:
    """The proposed expression: the last ``<answer>`` block, else what follows "the answer is" (or its
    Spanish form) on the last line that says it, without a final period."""
    text = answer_tag(response or "")
    if text is None:
        found = _ANSWER_IS.findall(response or "")
        text = found[-1] if found else None
    if text is None:
        return None
    return text.strip().rstrip(".").strip() or None


@register_task("target")
class TargetTask:
    """Reach a target with the given numbers in order and + - *; solvable by construction."""

    name = "target"

    def __init__(self, n_numbers: int = 3, max_number: int = 9, min_target: int = 10, max_target: int = 99,
                 test_fraction: float = 0.1, question_langs: dict[str, float] | None = None):
        if n_numbers < 2:
            raise ValueError(f"n_numbers must be at least 2, got {n_numbers}")
        if not 2 <= max_number or not 0 <= min_target <= max_target:
            raise ValueError("need max_number >= 2 and 0 <= min_target <= max_target")
        self.n_numbers, self.max_number = n_numbers, max_number
        self.min_target, self.max_target = min_target, max_target
        self.test_fraction = test_fraction
        self.question_langs = dict(question_langs or {"en": 0.75, "es": 0.25})
        unknown = set(self.question_langs) - set(QUESTION)
        if unknown:
            raise ValueError(f"unknown question language(s) {sorted(unknown)}; valid: {', '.join(QUESTION)}")

    def sample(self, rng: random.Random) -> Example:
        """One problem, either split (callers filter by ``meta['split']``)."""
        while True:
            nums = [rng.randint(2, self.max_number) for _ in range(self.n_numbers)]
            ops = [rng.choice(OPS) for _ in range(self.n_numbers - 1)]
            values = evaluate(nums, ops)
            if min(values) >= 0 and self.min_target <= values[-1] <= self.max_target and values[-1] not in nums:
                break
        target = values[-1]
        langs = list(self.question_langs)
        lang = rng.choices(langs, weights=[self.question_langs[k] for k in langs])[0]
        shown = " ".join(map(str, nums))
        key = f"{shown}->{target}"
        return Example(id=f"target/{lang}/{key}", prompt=QUESTION[lang].format(target=target, nums=shown),
                       reference=target,
                       meta={"nums": nums, "target": target, "solution": expression(nums, ops), "ops": ops,
                             "lang": lang, "split": split_of(key, self.test_fraction)})

    def examples(self, split: str, n: int | None = None, seed: int = 0) -> list[Example]:
        return draw_split(self.sample, split, n, f"target:{split}:{seed}")

    def solution(self, example: Example, layout: str = "r1") -> str:
        """The world's own solution: the right combination, worked out."""
        from r1lab.tasks.search import attempt_line, format_search
        from r1lab.tasks.languages import LEXICON

        L = LEXICON[example.meta.get("lang", "en")]
        line = attempt_line(example.meta["nums"], example.meta["ops"], example.reference, L)
        return format_search(line, example.meta["solution"], example, layout)

    def verify(self, response: str, example: Example) -> Verdict:
        expr = answer_text(response)
        ok, why = check_equation(expr, example.meta["nums"], example.reference)
        return Verdict(correct=ok, answer=expr, info={"reason": why})
