"""Countdown: reach a target with given numbers, each used exactly once, and + - * /.

Two tasks share one verifier:
- ``countdown_gen``: the tiny world's generator (deterministic by seed, disjoint splits by hash, knobs for
  how many numbers, their range and the target range); every instance is solvable by construction;
- ``countdown``: the benchmark file ``countdown_uft_test.jsonl`` (1024 TinyZero-style instances).

The verifier parses the equation with ``ast`` (numbers, + - * /, parentheses only; nothing is executed),
checks the multiset of numbers used equals the given one, and evaluates with exact fractions.
"""

from __future__ import annotations

import ast
import random
import re
from collections import Counter
from fractions import Fraction

from r1lab.errors import UserError
from r1lab.rewards.extract import answer_tag
from r1lab.tasks.base import Example, Verdict, draw_split, register_task, split_of

_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b}
MAX_EQUATION_CHARS = 200


def problem_text(nums: list[int], target: int) -> str:
    return (f"Using the numbers {nums}, create an equation that equals {target}. You can use basic arithmetic "
            "operations (+, -, *, /) and each number can only be used once.")


class _Invalid(Exception):
    pass


def _eval(node) -> tuple[Fraction, list[int]]:
    """Value and the integer literals of an expression tree made of numbers and + - * / only."""
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return Fraction(node.value), [node.value]
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        a, na = _eval(node.left)
        b, nb = _eval(node.right)
        if isinstance(node.op, ast.Div) and b == 0:
            raise _Invalid("division by zero")
        return _OPS[type(node.op)](a, b), na + nb
    raise _Invalid(f"not allowed in an equation: {type(node).__name__}")


def extract_equation(response: str) -> str | None:
    """The equation in the last <answer> block (or the last line with an operator); ``= target`` is dropped."""
    text = answer_tag(response or "")
    if text is None:
        lines = [ln for ln in (response or "").strip().splitlines() if re.search(r"\d\s*[-+*/]\s*\d", ln)]
        if not lines:
            return None
        text = lines[-1]
    text = text.strip().strip("$").strip()
    if "=" in text:
        left, right = text.split("=", 1)
        text = left if re.search(r"[-+*/]", left) else right
    text = text.replace("×", "*").replace("÷", "/").replace("\\times", "*").replace("\\div", "/").strip().rstrip(".")
    return text or None


def check_equation(equation: str | None, nums: list[int], target) -> tuple[bool, str]:
    """(correct, reason). Uses every number exactly once and equals the target exactly."""
    if equation is None:
        return False, "no equation"
    if len(equation) > MAX_EQUATION_CHARS:
        return False, "equation too long"
    try:
        value, used = _eval(ast.parse(equation, mode="eval"))
    except (SyntaxError, _Invalid, ValueError, RecursionError, MemoryError) as e:
        return False, f"invalid: {e}"
    if Counter(used) != Counter(int(n) for n in nums):
        return False, "numbers do not match"
    if value != Fraction(int(target)):
        return False, "wrong value"
    return True, "ok"


def verify_countdown(response: str, example: Example) -> Verdict:
    eq = extract_equation(response)
    ok, why = check_equation(eq, example.meta["nums"], example.reference)
    return Verdict(correct=ok, answer=eq, info={"reason": why})


@register_task("countdown_gen")
class CountdownTask:
    """Generated Countdown instances, solvable by construction (a random expression over the numbers)."""

    name = "countdown_gen"

    def __init__(self, min_numbers: int = 3, max_numbers: int = 4, max_number: int = 99, max_target: int = 100,
                 test_fraction: float = 0.1):
        if not 2 <= min_numbers <= max_numbers:
            raise ValueError("need 2 <= min_numbers <= max_numbers")
        self.min_numbers, self.max_numbers = min_numbers, max_numbers
        self.max_number, self.max_target, self.test_fraction = max_number, max_target, test_fraction

    def _solve_random(self, rng: random.Random, nums: list[int]) -> tuple[int, str] | None:
        """Combine the numbers in random order with random ops; keep it if every step is a positive integer."""
        items = [(Fraction(n), str(n)) for n in nums]
        while len(items) > 1:
            i, j = rng.sample(range(len(items)), 2)
            (a, ea), (b, eb) = items[i], items[j]
            op = rng.choice("+-*/")
            if op == "-" and a < b:
                (a, ea), (b, eb) = (b, eb), (a, ea)
            if op == "/" and (b == 0 or a % b != 0):
                op = "+"
            val = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else a}[op]
            if val <= 0 or val.denominator != 1:
                return None
            items = [x for k, x in enumerate(items) if k not in (i, j)] + [(val, f"({ea}{op}{eb})")]
        value, expr = items[0]
        if not 1 <= value <= self.max_target:
            return None
        return int(value), expr[1:-1] if expr.startswith("(") and expr.endswith(")") else expr

    def sample(self, rng: random.Random) -> Example:
        while True:
            nums = [rng.randint(1, self.max_number) for _ in range(rng.randint(self.min_numbers, self.max_numbers))]
            solved = self._solve_random(rng, nums)
            if solved is not None:
                target, solution = solved
                key = f"{sorted(nums)}->{target}"
                return Example(id=f"countdown/{nums}->{target}", prompt=problem_text(nums, target), reference=target,
                               meta={"nums": nums, "target": target, "solution": solution,
                                     "split": split_of(key, self.test_fraction)})

    def examples(self, split: str, n: int | None = None, seed: int = 0) -> list[Example]:
        return draw_split(self.sample, split, n, f"countdown:{split}:{seed}")

    def verify(self, response: str, example: Example) -> Verdict:
        return verify_countdown(response, example)


@register_task("countdown")
class CountdownBenchmark:
    """``countdown_uft_test.jsonl`` (fields ``nums``, ``target``, ``problem``; see the data's SOURCES.md)."""

    name = "countdown"
    file_name = "countdown_uft_test.jsonl"

    def __init__(self, data_dir: str | None = None):
        from r1lab.tasks.benchmarks import resolve_data_dir
        from r1lab.runtime.io import read_jsonl

        path = resolve_data_dir(self.file_name, data_dir) / self.file_name
        self._examples = []
        for i, row in enumerate(read_jsonl(path)):
            if not isinstance(row.get("nums"), list) or "target" not in row:
                raise UserError(f"{path}:{i + 1}: a Countdown row needs 'nums' (a list) and 'target'")
            nums, target = [int(n) for n in row["nums"]], int(row["target"])
            self._examples.append(Example(id=str(row.get("id", f"countdown/{i}")),
                                          prompt=row.get("problem") or problem_text(nums, target), reference=target,
                                          meta={"nums": nums, "target": target,
                                                "solution": row.get("reference_solution")}))

    def examples(self, split: str = "test", n: int | None = None, seed: int = 0) -> list[Example]:
        if split != "test":
            raise UserError(f"the countdown benchmark has only a 'test' split, not {split!r}")
        return self._examples[:n] if n is not None else list(self._examples)

    def verify(self, response: str, example: Example) -> Verdict:
        return verify_countdown(response, example)
