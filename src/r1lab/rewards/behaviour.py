"""Behaviour statistics of responses: reflection words (R1-v2 C.2), effective self-corrections, and
language consistency (R1 Eq. 7).

None of these is a reward: they are what the reports and curves measure. A reflection word says nothing
about whether the reflection did anything (much reflection in real models is superficial: Liu et al.
2025, "Understanding R1-Zero-like training"), so corrections are also counted by what they change: an
*effective* correction flags a written intermediate value and replaces it with the right one.
"""

from __future__ import annotations

import ast
import re

from r1lab.tasks.languages import LEXICON, language_counts

# The ten reflective words chosen by three human experts (Nature Extended Data Fig. 1; R1-v2 C.2),
# plus the tiny world's second-language forms of the two it uses (Spanish "espera", "compruebo").
REFLECTION_WORDS = ("wait", "mistake", "however", "but", "retry", "error", "verify", "wrong", "evaluate",
                    "check", "espera", "compruebo")
_REFLECT = re.compile(r"\b(" + "|".join(REFLECTION_WORDS) + r")\b", re.IGNORECASE)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\u3040-\u30ff\uac00-\ud7af]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")


def reflection_count(text: str) -> int:
    return len(_REFLECT.findall(text or ""))


# "wait, 47+38 is 85, not 86" (and "espera, 47+38 es 85, no 86"): flagging a written value (86) and
# replacing it (85). The operation is re-evaluated here to tell right replacements from wrong.
_CORRECTION = re.compile(r"\b(?:wait|espera),\s*(\d+)\s*([-+*/])\s*(\d+)\s+(?:is|es)\s+(-?\d+),\s*(?:not|no)\s+(-?\d+)",
                         re.IGNORECASE)


def _value(a: int, op: str, b: int) -> int | None:
    if op == "/":
        return a // b if b and a % b == 0 else None
    return a + b if op == "+" else a - b if op == "-" else a * b


def corrections(text: str) -> list[dict]:
    """Every flag-and-replace of a written value in ``text``: the operation, the flagged value, the
    replacement, and whether the flagged value was wrong and the replacement right (``effective``)."""
    out = []
    for a, op, b, new, old in _CORRECTION.findall(text or ""):
        true = _value(int(a), op, int(b))
        out.append({"op": f"{a}{op}{b}", "old": int(old), "new": int(new), "true": true,
                    "effective": true is not None and int(new) == true and int(old) != true})
    return out


# "try (3+5)*9: 3+5=8, 8*9=72. check 72 vs 24: not. wait, try (3*5)+9: ... check 24 vs 24: yes." (target.py): a
# tried combination whose value is flagged against the target and replaced by another one.
_ATTEMPT = re.compile(r"\b(?:try|pruebo)\s+([\d()+\-* ]+?):[^:]*?\.\s*(?:check|compruebo)\s+(-?\d+)\s+vs\s+(-?\d+):\s*(yes|sirve|not|no)\.",
                      re.IGNORECASE)
_FLAG_THEN_RETRY = re.compile(r"\s*(?:wait|espera),", re.IGNORECASE)


def _expr_value(expr: str) -> int | None:
    """Value of an expression of integers, parentheses and + - * (None when it is not one)."""
    try:
        node = ast.parse(expr.strip(), mode="eval").body
    except (SyntaxError, ValueError):
        return None

    def ev(n):
        if isinstance(n, ast.Constant) and isinstance(n.value, int):
            return n.value
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return -ev(n.operand)
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub, ast.Mult)):
            a, b = ev(n.left), ev(n.right)
            return a + b if isinstance(n.op, ast.Add) else a - b if isinstance(n.op, ast.Sub) else a * b
        raise ValueError("not an integer expression")

    try:
        return ev(node)
    except (ValueError, RecursionError):
        return None


def search_corrections(text: str) -> list[dict]:
    """Tried combinations flagged against the target ("check 72 vs 24: not. wait, try ...") and what replaced them:
    ``effective`` when a later attempt reaches the target the failed one was compared with."""
    attempts = [(m.end(), m.group(1), int(m.group(3)), m.group(4).lower()) for m in _ATTEMPT.finditer(text or "")]
    out = []
    for i, (end, expr, target, verdict) in enumerate(attempts):
        if verdict not in ("not", "no") or not _FLAG_THEN_RETRY.match(text, end):
            continue
        old = _expr_value(expr)
        later = [_expr_value(e) for _, e, _, _ in attempts[i + 1:]]
        out.append({"op": expr.strip(), "old": old, "new": later[-1] if later else None,
                    "true": target, "effective": old != target and target in later})
    return out


def has_effective_correction(text: str) -> bool:
    return any(c["effective"] for c in corrections(text) + search_corrections(text))


def reflection_stats(texts: list[str], correct: list[bool]) -> dict:
    """Response-level reflection metrics of a batch of responses and their correctness:

    - ``reflection_rate``: share with at least one reflection word (the paper's measure);
    - ``effective_reflection_rate``: share with at least one effective correction (a wrong written value
      flagged and replaced by the right one);
    - ``reflection_accuracy`` / ``no_reflection_accuracy``: accuracy of responses with / without a
      reflection word (None when there are none), so whether reflecting pays can be read off directly.
    """
    n = max(1, len(texts))
    refl = [reflection_count(t) > 0 for t in texts]
    eff = [has_effective_correction(t) for t in texts]
    with_r = [c for c, r in zip(correct, refl) if r]
    without_r = [c for c, r in zip(correct, refl) if not r]
    return {
        "reflection_rate": sum(refl) / n,
        "effective_reflection_rate": sum(eff) / n,
        "reflection_accuracy": sum(with_r) / len(with_r) if with_r else None,
        "no_reflection_accuracy": sum(without_r) / len(without_r) if without_r else None,
    }


def language_consistency(text: str, target: str = "en", empty: float = 1.0) -> float:
    """Share of target-language words among the words whose language can be told (1.0 when none can).

    A word's language is its tiny-world lexicon (``LEXICON``) when it has one; every CJK character counts
    as one Chinese/Japanese/Korean word ("zh"); any other Latin-script word counts as English. So the
    measure covers both the tiny world (English vs Spanish reasoning) and the paper's case (English and
    Chinese mixed in one chain of thought, R1-v1 §2.3.2).
    """
    text = text or ""
    counts = language_counts(text)
    known_latin = sum(counts.values())
    other_latin = len(_LATIN_WORD.findall(text)) - known_latin
    counts["en"] = counts.get("en", 0) + max(0, other_latin)
    counts["zh"] = len(_CJK.findall(text))
    total = sum(counts.values())
    return counts.get(target, 0) / total if total else empty


def supported_languages() -> list[str]:
    return sorted(LEXICON)
