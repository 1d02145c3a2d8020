"""Math answer grading: pull the final answer out of a response and decide if it equals the gold answer.

Equivalence is decided cheapest first (``compare``):

1. string equality after normalisation (``clean``): LaTeX spacing, ``\\left``/``\\right``, ``\\dfrac``,
   ``\\frac12``, units, degrees, percent, dollars, thousands separators, ``\\text{}`` wrappers, ``x =``
   prefixes, trailing periods;
2. decisive rules for answer kinds math-verify handles poorly: multiple-choice letters, text answers
   (math-verify reads ``east`` as the product e*a*s*t), plain numbers as exact rationals, and tuples,
   intervals, sets, unions and matrices item by item;
3. math-verify's ``parse`` + ``verify`` for everything symbolic, inside a small pool of persistent
   worker subprocesses (``r1lab.rewards.sympy_pool``).

Time is bounded without signals (math-verify's ``signal.alarm`` timeouts break off the main thread and
are switched off): responses are cut to their last ``MAX_RESPONSE_CHARS``, answers over
``MAX_ANSWER_CHARS`` are not equal, oversized / deeply nested / power-tower input never reaches sympy,
and a worker that overruns its deadline is killed and replaced. All sympy calls made for one
comparison share one ``timeout_s`` budget.

Every public function is thread-safe and never raises: anything unparseable is simply not equal.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Sequence

from r1lab.rewards.extract import extract_answer
from r1lab.rewards.sympy_pool import sympy_equal
from r1lab.rewards.units import canonical_unit, clock_minutes, units_conflict

log = logging.getLogger(__name__)

MAX_RESPONSE_CHARS = 8_000   # the final answer sits at the end; the tail also caps regex work
MAX_ANSWER_CHARS = 1_000     # longer "answers" are garbage (MATH-500's longest is < 100 chars)
MAX_SYMPY_CHARS = 600
MAX_NESTING = 12             # brace/bracket depth; real answers stay under 5
MAX_ITEMS = 32               # items in a tuple / set / matrix
DEFAULT_TIMEOUT_S = 3.0      # sympy budget per comparison (math-verify's own default is 5 s)


@dataclass(frozen=True)
class Grade:
    """A grading decision: ``answer`` as extracted (None if none), ``where`` it was found, ``how`` it was decided."""

    correct: bool
    answer: str | None
    where: str
    how: str


# ---------------------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------------------

def extract_final(response: Any) -> tuple[str | None, str]:
    """The final answer of a free-form response and where it was found (see ``extract_answer``)."""
    if not isinstance(response, str) or not response:
        return None, "none"
    try:
        return extract_answer(response[-MAX_RESPONSE_CHARS:])
    except Exception:  # extraction is best effort; a crash there must not stop training
        return None, "none"


def grade_detail(response: Any, gold: Any, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Grade:
    """Extract the final answer of ``response`` and compare it with ``gold``."""
    answer, where = extract_final(response)
    if answer is None:
        return Grade(False, None, where, "no_answer")
    ok, how = compare(answer, gold, timeout_s=timeout_s)
    return Grade(ok, answer, where, how)


def grade(response: Any, gold: Any, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """True when the final answer of a free-form ``response`` is equivalent to ``gold``."""
    return grade_detail(response, gold, timeout_s=timeout_s).correct


def answers_equal(pred: Any, gold: Any, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """True when two answer strings are mathematically equivalent."""
    return compare(pred, gold, timeout_s=timeout_s)[0]


def math_reward(responses: Sequence[str], examples: Sequence[Any]) -> list[float]:
    """Accuracy reward: 1.0 when a response's final answer matches ``example.reference``, else 0.0."""
    if len(responses) != len(examples):
        raise ValueError(f"math_reward: {len(responses)} responses for {len(examples)} examples")
    return [1.0 if grade(r, str(ex.reference)) else 0.0 for r, ex in zip(responses, examples)]


def compare(pred: Any, gold: Any, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[bool, str]:
    """(equal, how) for two answers; ``how`` names the rule that decided. Never raises."""
    try:
        p, g = _as_text(pred), _as_text(gold)
        if p is None or g is None:
            return False, "invalid"
        if p.strip() == g.strip():
            return bool(p.strip()), "exact"
        if len(p) > MAX_ANSWER_CHARS or len(g) > MAX_ANSWER_CHARS:
            return False, "guard"
        return _compare(p, g, time.monotonic() + max(0.0, float(timeout_s)), 0)
    except Exception:  # the contract is "never raises"; a bug here scores 0, not a crashed step
        log.debug("compare failed", exc_info=True)
        return False, "error"


def _as_text(x: Any) -> str | None:
    if isinstance(x, str):
        return x
    if isinstance(x, (int, float, Fraction)) and not isinstance(x, bool):
        return str(x)
    return None


# ---------------------------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------------------------

_TEXT_CMDS = r"text|textbf|textit|textrm|textsf|textnormal|mbox|mathrm|mathbf|mathit|mathsf|mathtt"
_TEXT_WRAP = re.compile(rf"\\(?:{_TEXT_CMDS})\s*\{{([^{{}}]*)\}}")
_UNIT_TEXT = re.compile(  # a \text{...} of words after some math, at the end: "5 \text{ cm}^2"
    rf"(?<=\S)\s*\\(?:{_TEXT_CMDS})\s*\{{\s*([A-Za-z][A-Za-z .]*)\}}\s*(?:\^\s*\{{?\s*([23])\s*\}}?)?\s*$")
_CONNECTOR = re.compile(rf"\s*\\(?:{_TEXT_CMDS})\s*\{{\s*(?:and|or)\s*\}}\s*|\s+(?:and|or)\s+")
_NOT_UNITS = r"(?:am|pm|pi|sqrt|root|ln|log|exp|sin|cos|tan|cot|sec|csc|infinity|inf)\b"  # words that are math
# (?![A-Za-z]) keeps each word whole: without it the words can be split many ways (exponential backtracking)
_UNIT_WORDS = re.compile(
    rf"^(.*?[\d}}])\s+((?:(?!{_NOT_UNITS})[A-Za-z]{{2,}}(?![A-Za-z])\.?\s*)+)(?:\^\s*\{{?([23])\}}?)?$", re.IGNORECASE)
_UNIT_LETTER = re.compile(r"^([-+]?[\d.]+)\s+([mgshlL])$")  # 10 m, 5 g, 3 h: single-letter units after a number
_CLOCK = re.compile(r"^(\d{1,2}(?::\d{2})?)\s*([ap])\.?\s*m\.?$", re.IGNORECASE)  # 5 p.m., 4:30pm, 7 AM
_ASSIGN = re.compile(r"^(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?\w+\}?)?\s*(?:=|\\in(?![A-Za-z]))\s*(.+)$", re.DOTALL)
_BASE_SUBSCRIPT = re.compile(r"^(\d+)_\{?\d+\}?$")
_SUBS = [  # (pattern, replacement), applied in order
    (re.compile(r"\{,\}"), ""),                                       # 10{,}000
    (re.compile("\u2212"), "-"),                                     # unicode minus
    (re.compile(r"(?<=\d),\\!\s*(?=\d)"), ""),                        # 10,\!080
    (re.compile(r"\\\$|\$"), ""),                                     # dollars and math delimiters
    (re.compile(r"\\[dtc]frac(?![A-Za-z])"), r"\\frac"),
    (re.compile(r"\\[dt]binom(?![A-Za-z])"), r"\\binom"),
    (re.compile(r"\\(?:left|right|[bB]igg?[lr]?)(?![A-Za-z])\s*\.?"), ""),
    (re.compile(r"\\displaystyle(?![A-Za-z])|(?<!\\)\\!"), ""),
    (re.compile(r"(?<!\\)\\[,;:> ]|\\q?quad(?![A-Za-z])|~"), " "),  # not the row break \\
    (re.compile(r"(?:\^\s*\{?\s*\\circ\s*\}?|°|\\degree(?![A-Za-z]))(?:\s*[CF]$)?"), ""),  # 30^\circ, 20°C
    (re.compile(r"\\lbrace(?![A-Za-z])"), r"\\{"),
    (re.compile(r"\\rbrace(?![A-Za-z])"), r"\\}"),
    (re.compile(r"\\leq(?![A-Za-z])"), r"\\le"),
    (re.compile(r"\\geq(?![A-Za-z])"), r"\\ge"),
    (re.compile(r"\\varnothing(?![A-Za-z])"), r"\\emptyset"),
    (re.compile(r"∞|\\inf(?![A-Za-z])"), r"\\infty"),
]
_BRACE_ARGS = [  # \frac12 -> \frac{1}{2}, \frac9{19}, \frac{270}7, \sqrt2
    (re.compile(r"\\frac\s*([0-9A-Za-z])\s*([0-9A-Za-z])"), r"\\frac{\1}{\2}"),
    (re.compile(r"\\frac\s*([0-9A-Za-z])\s*\{"), r"\\frac{\1}{"),
    (re.compile(r"\\frac\s*\{([^{}]*)\}\s*([0-9A-Za-z])"), r"\\frac{\1}{\2}"),
    (re.compile(r"\\sqrt\s*([0-9A-Za-z])"), r"\\sqrt{\1}"),
]


@dataclass(frozen=True)
class _Clean:
    text: str          # normalised, spaces kept (what sympy sees)
    key: str           # normalised, no whitespace (for string equality)
    percent: bool      # a % sign was dropped
    wrapped_text: bool  # the answer was (partly) a \text{...}
    unit: str = ""     # the unit or qualifier taken off the value, canonical (units.canonical_unit): "cm", "pm"


def clean(s: str) -> _Clean:
    """Normalise an answer string for comparison; the rules are listed in the module docstring."""
    s = s.strip()
    for wrap in (r"\boxed{", r"\fbox{"):
        if s.startswith(wrap) and s.endswith("}") and _nesting_ok_span(s, len(wrap) - 1):
            s = s[len(wrap):-1]
    currency = "\\$" in s  # \$ is money; a bare $ delimits math
    for pat, rep in _SUBS:
        s = pat.sub(rep, s)
    percent = "%" in s
    s = s.replace("\\%", "").replace("%", "")
    unit = ""
    if m := _UNIT_TEXT.search(s):
        unit, s = canonical_unit(m.group(1), m.group(2)), s[: m.start()]
    s = _CONNECTOR.sub(",", s)
    wrapped = bool(_TEXT_WRAP.search(s))
    for _ in range(3):  # nested \textbf{\text{...}}
        s = _TEXT_WRAP.sub(r"\1", s)
    s = s.strip().strip("\n").rstrip(" .,;:").lstrip("= ").strip()
    m = _UNIT_WORDS.match(s) or _UNIT_LETTER.match(s)
    if m and _number(m.group(1).replace(" ", "")) is not None:
        unit, s = canonical_unit(m.group(2), m.group(3) if m.re is _UNIT_WORDS else None), m.group(1)
    if m := _CLOCK.match(s):  # \text{5 p.m.} or 5pm: the value and the half of the day
        unit, s = m.group(2).lower() + "m", m.group(1)
    m = _ASSIGN.match(s)
    if m and not re.search(r"=|<|>|\\[lg]e(?![A-Za-z])|\\neq?(?![A-Za-z])", m.group(1)):
        s = m.group(1).strip()
    for pat, rep in _BRACE_ARGS:
        s = pat.sub(rep, s)
    m = _BASE_SUBSCRIPT.match(s.replace(" ", ""))
    if m:  # 52_8: the base is fixed by the question
        s = m.group(1)
    s = re.sub(r"\s+", " ", s).strip()
    key = re.sub(r"\s+", "", s)
    if re.fullmatch(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?", key):  # 58,500 (a list would have spaces or short groups)
        key = s = key.replace(",", "")
    return _Clean(s, key, percent, wrapped, unit or ("dollar" if currency else ""))


def _nesting_ok_span(s: str, open_at: int) -> bool:
    """True when the brace at ``open_at`` closes at the very end of ``s``."""
    depth = 0
    for j in range(open_at, len(s)):
        depth += {"{": 1, "}": -1}.get(s[j], 0)
        if depth == 0:
            return j == len(s) - 1
    return False


def nesting_depth(s: str) -> int:
    """Deepest bracket nesting of any kind, counting ( [ { alike (intervals mix them)."""
    depth = best = 0
    for ch in s:
        if ch in "([{":
            depth += 1
            best = max(best, depth)
        elif ch in ")]}":
            depth -= 1
    return best


# ---------------------------------------------------------------------------------------------------------
# decisive rules: choices, text, numbers
# ---------------------------------------------------------------------------------------------------------

_CHOICE_GOLD = re.compile(r"^\(?\s*([A-E])\s*\)?$")
_CHOICE_PRED = re.compile(r"^(?:\(\s*([A-Ea-e])\s*\)|([A-Ea-e])(?=$|[\s.:)]))")
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_DECIMAL = re.compile(rf"^{_NUM}$")
_SLASH = re.compile(r"^([-+]?\d+)/(\d+)$")
_FRAC = re.compile(rf"^([-+]?)\\frac\{{({_NUM})\}}\{{({_NUM})\}}$")
_MIXED = re.compile(r"^([-+]?)(\d+)\\frac\{(\d+)\}\{(\d+)\}$")
_SCI = re.compile(rf"^({_NUM})(?:\\times|\\cdot|\*)10\^\{{?([-+]?\d{{1,3}})\}}?$|^({_NUM})[eE]([-+]?\d{{1,3}})$")


def _choice(c: _Clean, gold: bool) -> str | None:
    """The letter of a multiple-choice answer: ``(B)``, ``B``, ``\\textbf{(B)}``; for predictions also ``B) 42``."""
    if gold:
        m = _CHOICE_GOLD.match(c.text)
        return m.group(1) if m else None
    m = _CHOICE_PRED.match(c.text)
    return (m.group(1) or m.group(2)).upper() if m else None


def _is_text(c: _Clean) -> bool:
    """A word answer (``Evelyn``, ``\\text{4:30 p.m.}``): no LaTeX commands or operators left."""
    if "\\" in c.text or re.search(r"[\^_{}=+*/<>|\[\]]", c.text):
        return False
    return (c.wrapped_text and bool(re.search(r"[A-Za-z]", c.text))) or bool(re.search(r"[A-Za-z]{2}", c.text))


def _text_key(c: _Clean) -> str:
    t = re.sub(r"^(?:the|an?)\s+", "", c.text.lower())
    return re.sub(r"[^a-z0-9:]", "", t)


def _number(key: str) -> tuple[Fraction, bool] | None:
    """(value, exact) of a plain number: integer, decimal, a/b, \\frac{a}{b}, mixed number, a x 10^n."""
    try:
        if _DECIMAL.match(key):
            return Fraction(key), "." not in key
        if m := _SLASH.match(key):
            return (Fraction(int(m.group(1)), int(m.group(2))), True) if int(m.group(2)) else None
        if m := _FRAC.match(key):
            num, den = Fraction(m.group(2)), Fraction(m.group(3))
            value = num / den if den else None
            return None if value is None else (-value if m.group(1) == "-" else value, "." not in key)
        if m := _MIXED.match(key):
            value = int(m.group(2)) + Fraction(int(m.group(3)), int(m.group(4)))
            return (-value if m.group(1) == "-" else value), True
        if m := _SCI.match(key):
            mant, exp = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
            return Fraction(mant) * Fraction(10) ** int(exp), False
    except (ValueError, ZeroDivisionError, ArithmeticError):
        return None
    return None


def _numbers_equal(p: tuple[Fraction, bool], g: tuple[Fraction, bool], p_percent: bool, g_percent: bool) -> bool:
    """Exact rational equality; a relative 1e-6 when either side is a decimal (0.333333 for 1/3).

    A side written with % may also be read as a fraction of 100 (50% for 0.5), never the other way.
    """
    p_vals = [p[0]] + ([p[0] / 100] if p_percent else [])
    g_vals = [g[0]] + ([g[0] / 100] if g_percent else [])
    exact = p[1] and g[1]
    tol = Fraction(1, 10**6)
    return any(a == b or (not exact and b != 0 and abs(a - b) <= abs(b) * tol) for a in p_vals for b in g_vals)


# ---------------------------------------------------------------------------------------------------------
# structures: tuples, intervals, sets, unions, matrices
# ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Struct:
    kind: str                   # "bare" (a, b), "(" ")" "[" "]" "{" brackets, "union", "matrix"
    close: str
    items: tuple[str, ...]
    shape: tuple[int, int] | None = None


_MATRIX = re.compile(r"^\\begin\{([pbBvV]?matrix)\}(.*)\\end\{\1\}$", re.DOTALL)


def _split_top(s: str, sep: str) -> list[str]:
    """Split on ``sep`` outside any brackets."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        ch = s[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and s.startswith(sep, i):
            parts.append(s[start:i])
            start = i + len(sep)
            i = start
            continue
        i += 1
    parts.append(s[start:])
    return [p.strip() for p in parts]


def _expand_pm(items: list[str]) -> list[str]:
    """``1 \\pm \\sqrt{5}`` in a list of solutions stands for two items."""
    out = []
    for it in items:
        halves = _split_top(it, "\\pm")
        out.extend([f"{halves[0]}+{halves[1]}", f"{halves[0]}-{halves[1]}"] if len(halves) == 2 and halves[0] else [it])
    return out


def _structure(s: str) -> _Struct | None:
    """Parse a tuple / interval / set / union / matrix / bare list; None for a single expression."""
    if m := _MATRIX.match(s):
        rows = [r for r in _split_top(m.group(2), "\\\\") if r]
        cells = [_split_top(r, "&") for r in rows]
        if not cells or len({len(r) for r in cells}) != 1:
            return None
        return _Struct("matrix", "", tuple(c for r in cells for c in r), (len(cells), len(cells[0])))
    if len(pieces := _split_top(s, "\\cup")) > 1:
        return _Struct("union", "", tuple(pieces))
    for opener, closers in (("\\{", ("\\}",)), ("(", (")", "]")), ("[", ("]", ")"))):
        closer = next((c for c in closers if s.endswith(c)), None)
        if s.startswith(opener) and closer and _closes_at_end(s):
            inner = s[len(opener):len(s) - len(closer)]
            items = _split_top(inner, ",")
            kind = "{" if opener == "\\{" else opener
            if kind == "{":
                return _Struct(kind, "}", tuple(_expand_pm(items)) if inner.strip() else ())
            return _Struct(kind, closer, tuple(items)) if len(items) >= 2 else None
    items = _expand_pm(_split_top(s, ","))
    return _Struct("bare", "", tuple(items)) if len(items) >= 2 else None


def _closes_at_end(s: str) -> bool:
    """True when the first opening bracket of ``s`` is closed by its last character."""
    depth = 0
    for j, ch in enumerate(s):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return j == len(s) - 1
    return False


def _struct_equal(p: _Struct, g: _Struct, deadline: float, level: int) -> bool:
    def same(a: str, b: str) -> bool:
        return _compare(a, b, deadline, level + 1)[0]

    if len(p.items) > MAX_ITEMS or len(g.items) > MAX_ITEMS:
        return False
    if g.kind == "matrix" or p.kind == "matrix":
        def vector(st: _Struct) -> bool:  # a column vector may be written as a tuple
            return st.kind == "(" or st.kind == "matrix" and st.shape is not None and st.shape[1] == 1

        if not (p.kind == g.kind and p.shape == g.shape or vector(p) and vector(g)):
            return False
        return len(p.items) == len(g.items) and all(same(a, b) for a, b in zip(p.items, g.items))
    if len(p.items) != len(g.items):
        return False
    kinds = {p.kind, g.kind}
    if "union" in kinds:
        unordered = p.kind == g.kind          # pieces of a union, in any order
    elif kinds <= {"bare", "{"}:
        unordered = True                      # solution lists and sets
    elif "bare" in kinds:
        unordered = False                     # 8, -2 for (8,-2)
    else:
        # (1,2) vs [1,2], or a set against a tuple: different objects
        unordered = False
        if (p.kind, p.close) != (g.kind, g.close):
            return False
    if not unordered:
        return "union" not in kinds and all(same(a, b) for a, b in zip(p.items, g.items))
    unused = list(g.items)
    for a in p.items:  # greedy matching is exact for an equivalence relation
        hit = next((i for i, b in enumerate(unused) if same(a, b)), None)
        if hit is None:
            return False
        unused.pop(hit)
    return True


# ---------------------------------------------------------------------------------------------------------
# the comparison cascade
# ---------------------------------------------------------------------------------------------------------

# a^{b^{c}} or a^{b^{10}}, a^b^c, 5-digit exponents, two 3-digit exponents ((2^{999})^{999}), 5-digit factorials
_POWER_TOWER = re.compile(r"\^\s*\{[^{}]*\^\s*(?:\{|\d{2,})|\^\s*\d+\s*\^|\^\s*\{?\s*[-+]?\d{5,}"
                          r"|(?:\^\s*\{?\s*[-+]?\d{3,}.*){2}|\d{5,}\s*!")


def _sympy_safe(s: str) -> bool:
    """Cheap guards so that absurd input never reaches sympy (the watchdog is the backstop)."""
    return 0 < len(s) <= MAX_SYMPY_CHARS and nesting_depth(s) <= MAX_NESTING and not _POWER_TOWER.search(s)


def _compare(pred: str, gold: str, deadline: float, level: int) -> tuple[bool, str]:
    if level > 3:
        return False, "guard"
    if nesting_depth(pred) > 2 * MAX_NESTING or nesting_depth(gold) > 2 * MAX_NESTING:
        return False, "guard"
    pc, gc = clean(pred), clean(gold)
    if not pc.key or not gc.key:
        return False, "invalid"
    if units_conflict(pc.unit, gc.unit):  # 10 m for 10 cm, 5 a.m. for 5 p.m.: another answer
        return False, "unit"
    if {pc.unit, gc.unit} & {"am", "pm"}:
        p_min, g_min = clock_minutes(pc.key, pc.unit), clock_minutes(gc.key, gc.unit)
        if p_min is not None and g_min is not None:
            return bool(p_min & g_min), "time"
    if pc.key == gc.key:
        return True, "normalised"
    if (letter := _choice(gc, gold=True)) is not None:
        return _choice(pc, gold=False) == letter, "choice"
    if _is_text(gc):
        return _text_key(pc) == _text_key(gc), "text"
    pn, gn = _number(pc.key), _number(gc.key)
    if pn is not None and gn is not None:
        return _numbers_equal(pn, gn, pc.percent, gc.percent), "numeric"
    ps, gs = _structure(pc.text), _structure(gc.text)
    if ps is not None and gs is not None:
        return _struct_equal(ps, gs, deadline, level), "structure"
    if (ps is None) != (gs is None) and (ps or gs).kind not in ("matrix", "{"):
        return False, "structure"  # a list against a single value
    if not (_sympy_safe(pc.text) and _sympy_safe(gc.text)):
        return False, "guard"
    verdict = sympy_equal(pc.text, gc.text, max(0.0, deadline - time.monotonic()))
    return (False, "timeout") if verdict is None else (verdict, "sympy")
