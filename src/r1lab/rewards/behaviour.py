"""Behaviour statistics of responses: reflection words (R1-v2 C.2) and language consistency (R1 Eq. 7)."""

from __future__ import annotations

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
