"""Surface languages of the tiny world.

The reasoning of a worked solution can be written in English ("en") or in a second surface language
("es", Spanish words), and some corpus solutions switch language midway. That is what lets language
mixing appear in R1-Zero on the tiny world, and what the language-consistency reward of R1 measures.
"""

from __future__ import annotations

import re

LEXICON: dict[str, dict[str, str]] = {
    "en": {
        "units": "units", "tens": "tens", "hundreds": "hundreds", "carry": "carry", "borrow": "borrow",
        "so": "so", "check": "check", "ok": "ok", "not": "not", "wait": "wait", "is": "is",
        "answer_is": "The answer is", "lets": "Let me work it out.", "first": "first", "then": "then",
        "try": "try", "no": "no", "yes": "yes", "found": "found it", "left": "left", "step": "Step", "vs": "vs",
    },
    "es": {
        "units": "unidades", "tens": "decenas", "hundreds": "centenas", "carry": "llevo", "borrow": "presto",
        "so": "entonces", "check": "compruebo", "ok": "bien", "not": "no", "wait": "espera", "is": "es",
        "answer_is": "La respuesta es", "lets": "Vamos a resolverlo.", "first": "primero", "then": "luego",
        "try": "pruebo", "no": "falla", "yes": "sirve", "found": "encontrado", "left": "queda", "step": "Paso", "vs": "vs",
    },
}

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def _vocab(lang: str) -> frozenset[str]:
    words = set()
    for phrase in LEXICON[lang].values():
        words.update(w.lower() for w in _WORD.findall(phrase))
    return frozenset(words)


VOCAB = {lang: _vocab(lang) for lang in LEXICON}
# Words both languages share ("no") say nothing about which language is used.
_SHARED = frozenset.intersection(*VOCAB.values())


def words(text: str) -> list[str]:
    """Alphabetic words of ``text``, lower-cased (numbers and symbols dropped)."""
    return [w.lower() for w in _WORD.findall(text)]


def language_counts(text: str) -> dict[str, int]:
    """How many words of ``text`` belong to each surface language's vocabulary (shared words excluded)."""
    counts = {lang: 0 for lang in LEXICON}
    for w in words(text):
        if w in _SHARED:
            continue
        for lang, vocab in VOCAB.items():
            if w in vocab:
                counts[lang] += 1
    return counts
