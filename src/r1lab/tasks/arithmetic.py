"""Multi-step integer arithmetic: chains such as ``((47+38)*3)-29``, evaluated left to right.

Difficulty knobs: the number of operations (``min_ops``..``max_ops``), the operand range of + and -
(``max_operand``), the multiplier range (2..``max_multiplier``) and the cap on every intermediate value
(``max_value``; intermediates stay in 0..max_value so a worked solution never needs negative numbers).
"""

from __future__ import annotations

import random
from r1lab.rewards.extract import extract_answer
from r1lab.tasks.base import Example, Verdict, draw_split, register_task, split_of

OPS = ("+", "-", "*")
QUESTION = {"en": "Compute {expr}", "es": "Calcula {expr}"}


def apply(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def render_expr(first: int, ops: list[tuple[str, int]]) -> str:
    """((a op b) op c) op d: explicit parentheses so left-to-right evaluation is also the usual one."""
    expr = str(first)
    for i, (op, b) in enumerate(ops):
        inner = f"{expr}{op}{b}"
        expr = f"({inner})" if i < len(ops) - 1 else inner
    return expr


def parse_int(text: str | None) -> int | None:
    """An integer from an extracted answer: tolerates spaces, thousands commas, a trailing period, ``\\boxed``."""
    if text is None:
        return None
    t = text.strip().replace(",", "").replace(" ", "").rstrip(".")
    t = t.replace("\\boxed{", "").replace("{", "").replace("}", "").replace("$", "")
    if t.startswith("+"):
        t = t[1:]
    try:
        return int(t)
    except ValueError:
        try:
            f = float(t)
        except ValueError:
            return None
        return int(f) if f.is_integer() else None


@register_task("arith")
class ArithmeticTask:
    """Arithmetic chains; the verifier compares the extracted final answer as an integer."""

    name = "arith"

    def __init__(self, min_ops: int = 2, max_ops: int = 3, max_operand: int = 99, max_multiplier: int = 9,
                 max_value: int = 999, test_fraction: float = 0.1, op_weights: tuple[float, ...] = (0.4, 0.35, 0.25),
                 question_langs: dict[str, float] | None = None, ops_weights: tuple[float, ...] | None = None):
        if not 1 <= min_ops <= max_ops:
            raise ValueError(f"need 1 <= min_ops <= max_ops, got {min_ops}, {max_ops}")
        self.min_ops, self.max_ops = min_ops, max_ops
        # how often each chain length min_ops..max_ops is drawn (uniform when None)
        self.ops_weights = tuple(ops_weights) if ops_weights is not None else (1.0,) * (max_ops - min_ops + 1)
        if len(self.ops_weights) != max_ops - min_ops + 1 or min(self.ops_weights) < 0 or not sum(self.ops_weights) > 0:
            raise ValueError(f"ops_weights: one non-negative weight per chain length {min_ops}..{max_ops}, got {ops_weights}")
        self.max_operand, self.max_multiplier, self.max_value = max_operand, max_multiplier, max_value
        self.test_fraction = test_fraction
        self.op_weights = tuple(op_weights)
        # Questions come in both surface languages; the language-consistency reward and metric take the
        # question's language as the target (R1-v2 B.3.2: "the same language as the question").
        self.question_langs = dict(question_langs or {"en": 0.75, "es": 0.25})
        unknown = set(self.question_langs) - set(QUESTION)
        if unknown:
            raise ValueError(f"unknown question language(s) {sorted(unknown)}; valid: {', '.join(QUESTION)}")

    # -- generation -------------------------------------------------------------------------------------
    def _next(self, rng: random.Random, cur: int) -> tuple[str, int]:
        """Pick an operation and operand that keep the running value in 0..max_value."""
        for _ in range(20):
            op = rng.choices(OPS, weights=self.op_weights)[0]
            if op == "+" and cur + 2 <= self.max_value:
                return op, rng.randint(2, min(self.max_operand, self.max_value - cur))
            if op == "-" and cur >= 2:
                return op, rng.randint(2, min(self.max_operand, cur))
            if op == "*" and cur * 2 <= self.max_value:
                return op, rng.randint(2, min(self.max_multiplier, self.max_value // max(cur, 1)))
        return ("-", rng.randint(1, max(1, cur))) if cur > 0 else ("+", rng.randint(2, self.max_operand))

    def sample(self, rng: random.Random) -> Example:
        """One problem, either split (callers filter by ``meta['split']``)."""
        first = rng.randint(10, min(99, self.max_value))
        n_ops = rng.choices(range(self.min_ops, self.max_ops + 1), weights=self.ops_weights)[0]
        ops, steps, cur = [], [], first
        for _ in range(n_ops):
            op, b = self._next(rng, cur)
            nxt = apply(cur, op, b)
            ops.append((op, b))
            steps.append((cur, op, b, nxt))  # (a, op, b, a op b)
            cur = nxt
        expr = render_expr(first, ops)
        langs = list(self.question_langs)
        lang = rng.choices(langs, weights=[self.question_langs[k] for k in langs])[0]
        return Example(
            id=f"arith/{lang}/{expr}",
            prompt=QUESTION[lang].format(expr=expr),
            reference=cur,
            meta={"expr": expr, "steps": steps, "n_ops": n_ops, "lang": lang,
                  "split": split_of(expr, self.test_fraction)},
        )

    def examples(self, split: str, n: int | None = None, seed: int = 0) -> list[Example]:
        return draw_split(self.sample, split, n, f"arith:{split}:{seed}")

    def solution(self, example: Example, layout: str = "r1") -> str:
        """The world's own worked solution (careful column arithmetic) in the "r1" or "r1zero" layout."""
        from r1lab.tasks.readable import world_solution

        return world_solution(example, layout)

    # -- verification -----------------------------------------------------------------------------------
    def verify(self, response: str, example: Example) -> Verdict:
        answer, where = extract_answer(response)
        value = parse_int(answer)
        return Verdict(correct=value is not None and value == int(example.reference), answer=answer, info={"from": where})
