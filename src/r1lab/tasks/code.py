"""Small procedurally generated coding problems: write one Python function, graded by assert tests.

Each of ~17 templates (affine map, sum of multiples, k-th largest, character counts, FizzBuzz value,
factorial mod m, shifted primes, rotation, Caesar shift, digit sums in base b, clamp, Fibonacci mod m,
filtering, pair counting, character repetition, modular power, divisor counting) draws random constants,
so problems differ. The reference solution is generated source (``meta["solution"]``); the expected
values of the tests come from running it here, so solution and tests cannot disagree. The test inputs
and the worked example in the prompt are seeded by the problem text, so a problem always has the same
tests whatever the seed that drew it. Splits are disjoint by a hash of the problem text (``split_of``).
``verify`` runs the tests in the sandbox (``r1lab.rewards.code.run_tests``): correct only when all pass.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Callable

from r1lab.rewards.code import extract_program, run_tests, tests_of
from r1lab.tasks.base import Example, Verdict, register_task, split_of

N_TESTS = 4
_PRIMES = [p for p in range(2, 140) if all(p % d for d in range(2, p))]
_ORDINAL = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th"}


@dataclass(frozen=True)
class Template:
    """One problem family: ``body`` is the solution's body, formatted with the drawn ``params``."""

    name: str
    args: str
    params: Callable[[random.Random], dict]
    statement: Callable[[dict], str]
    body: str
    inputs: Callable[[random.Random, dict], tuple]


def _ints(rng: random.Random, lo: int, hi: int, min_len: int, max_len: int) -> list[int]:
    return [rng.randint(lo, hi) for _ in range(rng.randint(min_len, max_len))]


def _text(rng: random.Random, alphabet: str, max_len: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, max_len)))


def _with(rng: random.Random, params: dict, key: str, first: str, second: str, flag: str) -> dict:
    """``params`` plus ``key`` drawn from (first, second) and ``flag`` = (it is ``first``), for the body."""
    choice = rng.choice([first, second])
    return {**params, key: choice, flag: choice == first}


TEMPLATES: tuple[Template, ...] = (
    Template("affine", "x", lambda r: {"a": r.randint(2, 9), "b": r.choice([i for i in range(-20, 21) if i])},
             lambda p: f"returns {p['a']} * x {'+' if p['b'] > 0 else '-'} {abs(p['b'])}",
             "    return {a} * x + ({b})\n", lambda r, p: (r.randint(-50, 50),)),
    Template("sum_multiples", "n", lambda r: dict(zip("km", r.sample(range(2, 10), 2))),
             lambda p: (f"returns the sum of the integers i with 0 <= i < n that are divisible by {p['k']} "
                        f"or by {p['m']}"),
             "    return sum(i for i in range(n) if i % {k} == 0 or i % {m} == 0)\n",
             lambda r, p: (r.randint(0, 200),)),
    Template("kth_value", "xs", lambda r: _with(r, {"k": r.randint(1, 4)}, "which", "largest", "smallest", "rev"),
             lambda p: (f"returns the {_ORDINAL[p['k']]} {p['which']} value in the list of integers xs, counting "
                        f"repeated values separately (xs has at least {p['k']} elements)"),
             "    return sorted(xs, reverse={rev})[{k} - 1]\n",
             lambda r, p: (_ints(r, -50, 50, p["k"], 8),)),
    Template("count_chars", "s", lambda r: {"chars": "".join(sorted(r.sample(string.ascii_lowercase, 3)))},
             lambda p: f"returns how many characters of the string s are one of {p['chars']!r}",
             "    return sum(c in '{chars}' for c in s)\n",
             lambda r, p: (_text(r, p["chars"] + "xyzab ", 16),)),
    Template("fizz", "n", lambda r: {**dict(zip("ab", r.sample(range(2, 10), 2))),
                                     **dict(zip(("u", "v"), r.choice([("Fizz", "Buzz"), ("Foo", "Bar")])))},
             lambda p: (f"returns '{p['u']}{p['v']}' if n is divisible by both {p['a']} and {p['b']}, '{p['u']}' if "
                        f"only by {p['a']}, '{p['v']}' if only by {p['b']}, and otherwise str(n)"),
             "    return ('{u}' * (n % {a} == 0) + '{v}' * (n % {b} == 0)) or str(n)\n",
             lambda r, p: (r.choice([p["a"], p["b"], p["a"] * p["b"], r.randint(1, 100)]) * r.randint(1, 3),)),
    Template("factorial_mod", "n", lambda r: {"m": r.randint(50, 999)},
             lambda p: f"returns n! (the factorial of the non-negative integer n) modulo {p['m']}",
             "    out = 1\n    for i in range(2, n + 1):\n        out = out * i % {m}\n    return out % {m}\n",
             lambda r, p: (r.randint(0, 30),)),
    Template("shifted_prime", "n", lambda r: {"k": r.randint(0, 30)},
             lambda p: (f"returns True if n + {p['k']} is a prime number and False otherwise "
                        "(n is a non-negative integer)"),
             "    m = n + {k}\n    return m > 1 and all(m % d for d in range(2, int(m ** 0.5) + 1))\n",
             lambda r, p: (r.choice([q - p["k"] for q in _PRIMES if q >= p["k"]]) if r.random() < 0.5
                           else r.randint(0, 100),)),
    Template("rotate", "s", lambda r: _with(r, {"k": r.randint(1, 6)}, "side", "left", "right", "to_left"),
             lambda p: (f"returns the string s rotated {p['side']} by {p['k']} positions (by {p['k']} modulo len(s) "
                        "for short strings; the empty string stays empty)"),
             "    if not s:\n        return s\n    k = {k} % len(s) if {to_left} else -{k} % len(s)\n"
             "    return s[k:] + s[:k]\n",
             lambda r, p: (_text(r, "abcdefgh", 10),)),
    Template("caesar", "s", lambda r: {"k": r.randint(1, 25)},
             lambda p: (f"shifts every lowercase letter of s forward by {p['k']} places in the alphabet, wrapping from "
                        "'z' to 'a', leaves every other character unchanged, and returns the result"),
             "    return ''.join(chr((ord(c) - 97 + {k}) % 26 + 97) if 'a' <= c <= 'z' else c for c in s)\n",
             lambda r, p: (_text(r, string.ascii_lowercase + " .!A", 14),)),
    Template("digit_sum", "n", lambda r: {"b": r.randint(2, 9)},
             lambda p: f"returns the sum of the digits of the non-negative integer n written in base {p['b']}",
             "    total = 0\n    while n:\n        n, d = divmod(n, {b})\n        total += d\n    return total\n",
             lambda r, p: (r.randint(0, 10_000),)),
    Template("clamp", "x", lambda r: {"lo": r.randint(-20, 0), "hi": r.randint(1, 30)},
             lambda p: (f"returns x limited to the range [{p['lo']}, {p['hi']}]: {p['lo']} if x is smaller, "
                        f"{p['hi']} if x is larger, else x"),
             "    return max({lo}, min({hi}, x))\n",
             lambda r, p: (r.choice([r.randint(-50, p["lo"]), r.randint(p["lo"], p["hi"]), r.randint(p["hi"], 50)]),)),
    Template("fib_mod", "n", lambda r: {"m": r.randint(10, 1000)},
             lambda p: f"returns the n-th Fibonacci number modulo {p['m']}, where fib(0) = 0 and fib(1) = 1",
             "    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, (a + b) % {m}\n    return a % {m}\n",
             lambda r, p: (r.randint(0, 60),)),
    Template("keep", "xs", lambda r: {"k": r.randint(-10, 10), "op": r.choice([">", "<"])},
             lambda p: (f"returns a new list of the elements of the list xs that are "
                        f"{'greater' if p['op'] == '>' else 'less'} than {p['k']}, in their original order"),
             "    return [x for x in xs if x {op} {k}]\n", lambda r, p: (_ints(r, -20, 20, 0, 8),)),
    Template("count_pairs", "xs", lambda r: {"k": r.randint(0, 20)},
             lambda p: f"returns the number of index pairs i < j such that xs[i] + xs[j] == {p['k']}",
             "    return sum(xs[i] + xs[j] == {k} for i in range(len(xs)) for j in range(i + 1, len(xs)))\n",
             lambda r, p: (_ints(r, 0, max(p["k"], 1), 0, 8),)),
    Template("repeat_chars", "s", lambda r: {"k": r.randint(2, 5)},
             lambda p: (f"returns s with every character repeated {p['k']} times in place "
                        f"(so 'ab' becomes {'a' * p['k'] + 'b' * p['k']!r})"),
             "    return ''.join(c * {k} for c in s)\n", lambda r, p: (_text(r, "abcxyz -", 8),)),
    Template("power_mod", "base, exp", lambda r: {"m": r.randint(7, 100)},
             lambda p: f"returns base ** exp modulo {p['m']} for non-negative integers base and exp",
             "    return pow(base, exp, {m})\n", lambda r, p: (r.randint(0, 50), r.randint(0, 30))),
    Template("divisors_above", "n", lambda r: {"k": r.randint(1, 10)},
             lambda p: f"returns how many positive divisors of the positive integer n are greater than {p['k']}",
             "    return sum(n % d == 0 for d in range({k} + 1, n + 1))\n", lambda r, p: (r.randint(1, 200),)),
)


def solution_source(template: Template, params: dict) -> str:
    return f"def {template.name}({template.args}):\n" + template.body.format(**params)


def make_problem(template: Template, params: dict, test_fraction: float) -> Example:
    """The example for one (template, params): prompt with a worked call, ``N_TESTS`` assert tests."""
    source = solution_source(template, params)
    namespace: dict = {}
    exec(source, namespace)  # our own generated reference code, never model output
    solve = namespace[template.name]
    signature = f"{template.name}({template.args})"
    key = f"{signature}: {template.statement(params)}"
    rng = random.Random(f"code-tests:{key}")
    calls: dict[str, object] = {}
    for _ in range(200):
        args = template.inputs(rng, params)
        calls.setdefault(f"{template.name}({', '.join(map(repr, args))})", solve(*args))
        if len(calls) > N_TESTS:
            break
    (shown, shown_value), *tested = calls.items()
    tests = [f"assert {call} == {value!r}" for call, value in tested]
    prompt = (f"Write a Python function `{signature}` that {template.statement(params)}.\n"
              f"For example, `{shown}` returns `{shown_value!r}`.\n"
              "Give the complete function in a ```python code block.")
    return Example(
        id=f"code/{template.name}/" + ",".join(f"{k}={v}" for k, v in sorted(params.items())),
        prompt=prompt,
        reference={"tests": tests, "entry_point": template.name},
        meta={"tests": tests, "solution": source, "template": template.name, "params": params,
              "split": split_of(key, test_fraction)},
    )


@register_task("code")
class CodeTask:
    """Write-a-function problems; a response is correct when its program passes every test."""

    name = "code"

    def __init__(self, test_fraction: float = 0.1, timeout_s: float = 5.0, memory_mb: int = 512,
                 templates: tuple[str, ...] | None = None):
        known = {t.name: t for t in TEMPLATES}
        unknown = sorted(set(templates or ()) - set(known))
        if unknown:
            raise ValueError(f"unknown code templates {unknown}; valid: {', '.join(known)}")
        self.templates = tuple(known[n] for n in templates) if templates else TEMPLATES
        self.test_fraction, self.timeout_s, self.memory_mb = test_fraction, timeout_s, memory_mb

    def sample(self, rng: random.Random) -> Example:
        """One problem, either split (callers filter by ``meta['split']``)."""
        template = rng.choice(self.templates)
        return make_problem(template, template.params(rng), self.test_fraction)

    def examples(self, split: str, n: int | None = None, seed: int = 0) -> list[Example]:
        if n is None:
            raise ValueError("the code task is generated: pass n")
        rng = random.Random(f"code:{split}:{seed}")
        out, seen = [], set()
        for _ in range(200 * n + 1000):  # the families are finite: stop rather than spin
            if len(out) == n:
                return out
            ex = self.sample(rng)
            if ex.meta["split"] == split and ex.id not in seen:
                seen.add(ex.id)
                out.append(ex)
        raise ValueError(f"asked for {n} {split!r} code problems; only {len(out)} distinct ones were found")

    def verify(self, response: str, example: Example) -> Verdict:
        tests = tests_of(example)
        program = extract_program(response)
        if program is None:
            return Verdict(False, None, {"passed": 0, "total": len(tests), "status": "no_program"})
        res = run_tests(program, tests, timeout_s=self.timeout_s, memory_mb=self.memory_mb)
        return Verdict(res.passed == res.total, program,
                       {"passed": res.passed, "total": res.total, "status": res.status, "isolation": res.isolation})
