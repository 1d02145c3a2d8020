"""Adversarial tests for the math grader: normalisation, must-not-match cases, garbage, watchdog, threads."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from r1lab.rewards.math import answers_equal, compare, grade, grade_detail, math_reward
from r1lab.rewards import sympy_pool
from r1lab.rewards.sympy_pool import SympyPool

GARBAGE_BOUND_S = 2.0  # the brief's bound on any pathological input (a guard, not a performance target)


@pytest.fixture(scope="module", autouse=True)
def warm_worker():
    """Start a sympy worker once, so that the time bounds below do not include its start-up."""
    assert answers_equal(r"\sqrt{8}", r"2\sqrt{2}")


# (pred, gold): each must be equal
EQUAL = [
    # text answers
    ("4:30 PM", r"\text{4:30 p.m.}"),
    ("4:30 p.m.", r"\text{4:30 p.m.}"),
    ("Evelyn", r"\text{Evelyn}"),
    (r"\text{evelyn}", r"\text{Evelyn}"),
    ("an ellipse", r"\text{ellipse}"),
    # multiple choice
    ("C", r"\text{(C)}"),
    ("(B)", "B"),
    ("B", "(B)"),
    (r"\textbf{(B)}", "(B)"),
    (r"\textbf{(B)}", "B"),
    ("(B) 42", "(B)"),
    ("b", r"\text{(B)}"),
    # thousands separators
    ("10000", "10{,}000"),
    ("10,000", "10000"),
    ("10{,}000", "10,000"),
    (r"10,\!080", "10080"),
    ("11111111100", r"11,\! 111,\! 111,\! 100"),
    ("58500", "58,500"),
    # units
    ("5", r"5 \text{ cm}"),
    (r"5\text{ cm}", "5"),
    ("864", r"864 \mbox{ inches}^2"),
    (r"15\mbox{ cm}^2", "15"),
    ("5 cm", "5"),
    ("12 inches", "12"),
    (r"\frac{270}{7}", r"\frac{270}7\text{ degrees}"),
    ("5.4", r"5.4 \text{ cents}"),
    ("5 apples", "5"),
    # a gold that wraps its value with a qualifier restating the question's unit: the bare value is right
    ("5", r"5\text{ p.m.}"),
    ("5", r"\text{5 p.m.}"),
    ("4:30", r"\text{4:30 p.m.}"),
    ("5pm", r"\text{5 p.m.}"),
    ("5 PM", r"5\text{ p.m.}"),
    ("17:00", r"5\text{ p.m.}"),
    ("9 a.m.", r"\text{9 a.m.}"),
    ("18", r"\$18"),
    ("18", r"18\text{ dollars}"),
    ("18", r"\text{18 dollars}"),
    (r"\$18", r"18\text{ dollars}"),
    ("18 dollars", r"\$18"),
    ("10", r"10\text{ cm}"),
    ("10", r"\text{10 cm}"),
    ("10 centimeters", r"10\text{ cm}"),
    ("10cm", r"10\text{ cm}"),
    ("864 square inches", r"864 \mbox{ inches}^2"),
    ("3 hours", r"3\text{ hrs}"),
    ("2 feet", r"2\text{ ft}"),
    ("18 million", r"18\text{ million}"),
    # percent
    ("50", r"50\%"),
    (r"50\%", "50"),
    ("50%", "50"),
    ("0.5", r"50\%"),
    (r"50\%", "0.5"),
    # degrees
    ("30", r"30^\circ"),
    (r"30^{\circ}", "30"),
    ("30°", r"30^\circ"),
    ("20°C", "20"),
    # dollars
    (r"\$5.00", "5"),
    ("5", r"\$5.00"),
    ("$18.90", r"\$18.90"),
    ("32348", r"\$32,\!348"),
    # intervals, unions
    ("(1,2]", "(1, 2]"),
    (r"\left( 1, 2 \right]", "(1,2]"),
    (r"(-\infty,0]", r"(-\infty, 0]"),
    (r"(3, \infty) \cup (-\infty, 2)", r"(-\infty, 2) \cup (3, \infty)"),
    ("[-2,7]", r"x \in [-2,7]"),
    # tuples and ordered pairs
    ("(8, -2)", "(8,-2)"),
    ("8, -2", "(8,-2)"),
    (r"(3, \pi/2)", r"\left( 3, \frac{\pi}{2} \right)"),
    (r"\left(\frac{3}{2},-13\right)", r"\left( \frac{3}{2}, -13 \right)"),
    ("(1,-16,-4,43)", r"\left(1, -16, -4, 43\right)"),
    # matrices and vectors
    (r"\begin{pmatrix} 0.2 \\ -3.6 \end{pmatrix}", r"\begin{pmatrix} 1/5 \\ -18/5 \end{pmatrix}"),
    (r"\begin{bmatrix} -1 & 0 \\ 0 & -1 \end{bmatrix}", r"\begin{pmatrix} -1 & 0 \\ 0 & -1 \end{pmatrix}"),
    ("(-7, 16, 5)", r"\begin{pmatrix} -7 \\ 16 \\ 5 \end{pmatrix}"),
    # fractions
    (r"\dfrac{1}{2}", r"\frac{1}{2}"),
    (r"\tfrac12", "0.5"),
    (r"\frac12", "1/2"),
    (r"\frac 34", "0.75"),
    (r"\frac9{19}", r"\frac{9}{19}"),
    (r"\frac43", r"\dfrac{4}{3}"),
    ("-35/9", r"-\frac{35}{9}"),
    (r"\frac{-3}{8}", r"-\frac{3}{8}"),
    ("9/5", r"1\frac{4}{5}"),
    ("137.5", r"137 \frac{1}{2}"),
    ("0.333333", "1/3"),
    # spacing, \left \right, trailing periods, assignments
    ("x^2 + 1", "x^2+1"),
    (r"\left(a+5\right)\left(b+2\right)", "(a+5)(b+2)"),
    ("5.", "5"),
    (r"\frac{1}{2}.", "1/2"),
    ("x = 5", "5"),
    ("5", "x=5"),
    ("2x+3", "y = 2x + 3"),
    (r"k = \frac{1}{2}", "0.5"),
    # numbers
    ("025", "25"),
    ("\u22125", "-5"),
    ("52", "52_8"),
    ("4210_5", "4210_{5}"),
    (r"6.72 \times 10^{-5}", ".0000672"),
    ("1.250", "1.25"),
    # solution lists and sets
    ("-2, 1", "1,-2"),
    (r"\{1, 2\}", "2, 1"),
    (r"1+\sqrt{19}, 1-\sqrt{19}", r"1 \pm \sqrt{19}"),
    (r"-2, 1+\sqrt5, 1-\sqrt5", r"\{1\pm\sqrt{5},-2\}"),
    ("x=1 and x=2", "1, 2"),
    # symbolic (math-verify)
    (r"\frac{\sqrt{3}}{2}", r"\frac{1}{2}\sqrt{3}"),
    ("-q+p", "p - q"),
    (r"\sqrt{8}", r"2\sqrt{2}"),
    ("-5i+6", "6 - 5i"),
    (r"\frac{\cos x}{\sin x}", r"\cot x"),
    ("4r^2+6r-24+2r^2-10r", "6r^2-4r-24"),
]

# (pred, gold): each must NOT be equal
NOT_EQUAL = [
    ("1/2", "2"),
    ("2", "1/2"),
    ("5", "-5"),
    ("2 pi", "2"),
    ("[1,2]", "(1,2)"),
    ("(1,2)", "[1,2]"),
    ("(1,2]", "(1,2)"),
    ("(1,2]", "[1,2)"),
    ("(-2, 8)", "(8,-2)"),
    (r"\{1,2\}", "(1,2)"),
    ("1", "1,-2"),
    ("1, -2, 3", "1,-2"),
    ("(0,9)", r"(0,9) \cup (9,36)"),
    ("B", "C"),
    ("(B)", r"\text{(C)}"),
    (r"\textbf{(D)}", "(A)"),
    ("Bob", "(B)"),
    ("42", "(B)"),
    ("tase", r"\text{east}"),
    ("Evenly", r"\text{Evelyn}"),
    ("4:30 AM", r"\text{4:30 p.m.}"),
    # a bare value is accepted for a qualified gold only when it is the same value, and a unit only when the same
    ("6", r"5\text{ p.m.}"),
    ("6", r"\text{5 p.m.}"),
    ("5 a.m.", r"5\text{ p.m.}"),
    ("5 AM", r"\text{5 p.m.}"),
    ("5:30", r"\text{4:30 p.m.}"),
    ("4:30am", r"\text{4:30 p.m.}"),
    ("05:00", r"5\text{ p.m.}"),
    ("10 m", r"10\text{ cm}"),
    ("10 mm", r"10\text{ cm}"),
    (r"10\text{ m}", r"10\text{ cm}"),
    ("10 inches", r"10\text{ cm}"),
    ("11", r"10\text{ cm}"),
    ("12 feet", r"12\text{ inches}"),
    ("18 cents", r"\$18"),
    ("18 cents", r"18\text{ dollars}"),
    ("19", r"\$18"),
    ("18", r"18\text{ million}"),
    ("18 thousand", r"18\text{ million}"),
    ("864 inches", r"864 \mbox{ inches}^2"),
    ("3 minutes", r"3\text{ hrs}"),
    ("west", r"\text{east}"),
    ("5000", r"50\%"),
    ("50", "0.5"),
    ("0.0000671", ".0000672"),
    ("0.333", "1/3"),
    ("10", "10,000"),
    ("1", "1,000"),
    ("x+1", "x-1"),
    (r"\sqrt{2}", "2"),
    (r"\frac{\pi}{2}", r"\frac{\pi}{3}"),
    ("2x+3", "y = 2x + 4"),
    (r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", r"\begin{pmatrix} 2 \\ 1 \end{pmatrix}"),
    (r"\begin{pmatrix} 1 & 2 \end{pmatrix}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"),
    (r"\begin{pmatrix} 1 & 0 \\ 0 & 1 \end{pmatrix}", r"\begin{pmatrix} 1 & 0 \\ 0 & -1 \end{pmatrix}"),
    ("6+5i", "6 - 5i"),
    ("53", "52_8"),
    ("", "5"),
    ("5", ""),
    ("", ""),
    (" ", " "),
]


@pytest.mark.parametrize("pred,gold", EQUAL)
def test_equivalent_answers(pred, gold):
    assert answers_equal(pred, gold), compare(pred, gold)


@pytest.mark.parametrize("pred,gold", NOT_EQUAL)
def test_different_answers(pred, gold):
    assert not answers_equal(pred, gold), compare(pred, gold)


@pytest.mark.parametrize("response,gold,expected,where", [
    (r"First \boxed{5}. Wait, I was wrong: \boxed{6}.", "6", True, "boxed"),
    (r"First \boxed{5}. Wait, I was wrong: \boxed{6}.", "5", False, "boxed"),
    (r"So $\boxed{\dfrac{1}{2}}$.", "0.5", True, "boxed"),
    (r"\boxed{\left( 3, \frac{\pi}{2} \right)}", r"\left( 3, \frac{\pi}{2} \right)", True, "boxed"),
    ("<think>2+2 is 4, so 40?</think> <answer>42</answer>", "42", True, "answer_tag"),
    (r"<think>hmm</think><answer>The result is \boxed{\frac12}</answer>", "1/2", True, "answer_tag"),
    (r"Adding up, the answer is $\frac{1}{2}$.", "1/2", True, "answer_is"),
    ("The final answer is: 17 apples.", "17", True, "answer_is"),
    ("Q: what is 8+9?\nA: 17", "17", True, "a_line"),
    ("We get 3 apples, then 12 more", "12", True, "last_number"),
    ("She makes 9 * 2 = $18 every day.\n#### 18", "18", True, "last_number"),
    ("I have no idea.", "5", False, "none"),
])
def test_grade_extracts_the_final_answer(response, gold, expected, where):
    g = grade_detail(response, gold)
    assert (g.correct, g.where) == (expected, where), g
    assert grade(response, gold) is expected


def test_grade_accepts_numeric_gold_and_math_reward():
    assert grade(r"\boxed{204}", 204)
    examples = [SimpleNamespace(reference=204), SimpleNamespace(reference=r"\frac{1}{2}")]
    assert math_reward([r"\boxed{204}", r"the answer is 0.4"], examples) == [1.0, 0.0]
    with pytest.raises(ValueError):
        math_reward(["a"], examples)


def _nested(template: str, depth: int, core: str = "2") -> str:
    s = core
    for _ in range(depth):
        s = template.format(s)
    return s


GARBAGE = {
    "empty": "",
    "none": None,
    "int": 12345,
    "bytes": b"\\boxed{5}",
    "object": object(),
    "list": ["5"],
    "nan": float("nan"),
    "1MB letters": "x" * (1 << 20),
    "1MB digits": "9" * (1 << 20),
    "1MB boxed": r"\boxed{" + "1+" * (1 << 19) + "1}",
    "10k open braces": "{" * 10_000,
    "10k close braces": "}" * 10_000,
    "boxed unbalanced": r"\boxed{" + "{" * 10_000,
    "frac 500 deep": _nested(r"\frac{{{}}}{{2}}", 500),
    "boxed frac 500 deep": r"\boxed{" + _nested(r"\frac{{{}}}{{2}}", 500) + "}",
    "frac 60 deep": _nested(r"\frac{{{}}}{{2}}", 60),
    "sqrt tower 500": _nested(r"\sqrt{{{}}}", 500),
    "sqrt tower 40": _nested(r"\sqrt{{{}}}", 40),
    "sqrt no braces": "\\sqrt" * 300 + "2",
    "power tower": r"2^{2^{2^{2^{100}}}}",
    "huge power": r"(2^{99999})^{99999}",
    "huge factorial": "(99999!)!",
    "left parens": r"\left(" * 5000,
    "backslashes": "\\" * 10_000,
    "dollars": "$" * 10_000,
    "nul bytes": "\x00" * 1000,
    "answer tags": "<answer>" * 100_000,
    "answer is": "the answer is " * 50_000,
    "unicode": "∑∫√∞≠≤≥" * 1000,
    "commas": "," * 10_000,
    "pm chain": r"1\pm" * 200 + "1",
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_garbage_returns_false_quickly(name):
    junk = GARBAGE[name]
    for call in (lambda: grade(junk, "5"), lambda: grade(r"\boxed{5}", junk),
                 lambda: answers_equal(junk, "5"), lambda: answers_equal("5", junk)):
        t0 = time.monotonic()
        assert call() is False
        assert time.monotonic() - t0 < GARBAGE_BOUND_S, name


def test_garbage_equal_to_itself_is_never_an_error():
    for junk in GARBAGE.values():
        assert answers_equal(junk, junk) in (True, False)


def test_expensive_sympy_input_is_cut_off_by_the_budget():
    t0 = time.monotonic()
    assert not answers_equal(r"\binom{10^{9}}{10^{5}}", "5", timeout_s=0.5)
    assert time.monotonic() - t0 < GARBAGE_BOUND_S
    assert answers_equal(r"\sqrt{12}", r"2\sqrt{3}")  # the pool recovered


def test_watchdog_kills_a_stuck_worker_and_replaces_it():
    hang = [sys.executable, "-c", "import sys, time; print('ready', flush=True); sys.stdin.readline(); time.sleep(60)"]
    pool = SympyPool(1, command=hang)
    try:
        t0 = time.monotonic()
        assert pool.run("1", "1", timeout_s=0.3) is None
        assert time.monotonic() - t0 < GARBAGE_BOUND_S
        assert pool.timeouts == 1
        assert pool.run("1", "1", timeout_s=0.3) is None  # the replacement is used (and also stuck)
        assert pool.timeouts == 2
    finally:
        pool.close()


def test_stray_output_on_the_pipe_is_not_taken_for_a_verdict():
    chatty = [sys.executable, "-c", (
        "import sys, json\n"
        "print('ready', flush=True)\n"
        "for line in sys.stdin:\n"
        "    seq = json.loads(line)[0]\n"
        "    print('1', flush=True); print(f'{seq + 1} 1', flush=True); print(f'{seq} 0', flush=True)\n")]
    pool = SympyPool(1, command=chatty)
    try:
        assert pool.run("1", "2", timeout_s=2.0) is False
        assert pool.run("1", "2", timeout_s=2.0) is False  # a bare "1" and a reply to another seq are skipped
    finally:
        pool.close()


def test_pool_gives_up_when_workers_cannot_start():
    pool = SympyPool(1, command=[sys.executable, "-c", "raise SystemExit(1)"])
    try:
        for _ in range(4):
            assert pool.run("1", "1", timeout_s=0.3) is None
        assert pool.broken
    finally:
        pool.close()


def test_grading_from_threads_matches_sequential():
    cases = [(p, g) for p, g in EQUAL + NOT_EQUAL if isinstance(p, str)]
    expected = [answers_equal(p, g) for p, g in cases]
    sympy_pool._cache.clear()  # make the threads reach the workers, not the cache
    jobs = cases * 3
    with ThreadPoolExecutor(max_workers=8) as ex:
        got = list(ex.map(lambda pg: answers_equal(*pg), jobs))
    assert got == expected * 3
    responses = [rf"so \boxed{{{p}}}" for p, _ in cases]
    seq = [grade(r, g) for r, (_, g) in zip(responses, cases)]
    with ThreadPoolExecutor(max_workers=8) as ex:
        par = list(ex.map(lambda rg: grade(*rg), zip(responses, [g for _, g in cases])))
    assert par == seq
