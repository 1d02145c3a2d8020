"""Worked solutions of arithmetic chains in three styles, for the pretraining corpus of the tiny world.

- ``careful``: column arithmetic, digit by digit, with carries and borrows (long, reliable);
- ``quick``: one line per operation, with slips copied from sloppy human work (short, error-prone);
- ``direct``: the answer without reasoning (the base model can rarely compute it in one shot).

The mix of styles is what makes the base model's pass@1 low and its pass@16 high: RL only has to
shift probability toward the styles that end in correct answers. (Checking one's work lives in the
reach-a-target problems, ``search.py``: in a chain, careful column arithmetic is already reliable, so a
check cannot pay for its tokens, and a first version of this world that had checked chains saw RL drop
them.)
"""

from __future__ import annotations

import random

from r1lab.tasks.languages import LEXICON

PLACES = ("units", "tens", "hundreds", "thousands")


def _digit(n: int, i: int) -> int:
    return (n // 10**i) % 10


def _ndigits(n: int) -> int:
    return len(str(abs(n)))


def careful_step(a: int, op: str, b: int, L: dict) -> str:
    """Column arithmetic for one operation; ``b`` is a single digit when ``op`` is ``*``."""
    c = a + b if op == "+" else a - b if op == "-" else a * b
    parts = []
    if op == "+":
        carry = 0
        for i in range(max(_ndigits(a), _ndigits(c))):
            da, db = _digit(a, i), _digit(b, i)
            s = da + db + carry
            text = f"{L[PLACES[i]]} {da}+{db}" + ("+1" if carry else "") + f"={s}"
            carry = s // 10
            parts.append(text + (f", {L['carry']} 1" if carry else ""))
    elif op == "-":
        borrow = 0
        for i in range(_ndigits(a)):
            da, db = _digit(a, i), _digit(b, i)
            top = da - borrow
            text = f"{L[PLACES[i]]} {da}" + ("-1" if borrow else "") + f"-{db}"
            if top < db:
                text += f", {L['borrow']}, {top + 10}-{db}={top + 10 - db}"
                borrow = 1
            else:
                text += f"={top - db}"
                borrow = 0
            parts.append(text)
    else:
        # the product first, then the carry in a separate addition: one times-table fact and one small sum
        # per column are far easier for a small model than "8*3+1=25" in one go
        carry = 0
        for i in range(max(_ndigits(a), _ndigits(c))):
            da = _digit(a, i)
            p = da * b
            s = p + carry
            text = f"{L[PLACES[i]]} {da}*{b}={p}" + (f", {p}+{carry}={s}" if carry else "")
            carry = s // 10
            parts.append(text + (f", {L['carry']} {carry}" if carry else ""))
    return f"{a}{op}{b}: " + ". ".join(parts) + f". {L['so']} {a}{op}{b}={c}."


def slip(c: int, rng: random.Random, floor: int = 0) -> int:
    """A plausible wrong result: off by one or ten, or a carry dropped; never below ``floor``."""
    options = [v for v in (c + 1, c - 1, c + 10, c - 10, c + 2, c - 2) if v >= floor and v != c]
    return rng.choice(options) if options else c + 1


def write_reasoning(steps: list, style: str, langs: list[str], rng: random.Random, slip_rate: float) -> tuple[str, int]:
    """The reasoning text for ``steps`` [(a, op, b, c)] and the final value it arrives at.

    ``langs[i]`` is the surface language of step i (a switch midway models language mixing).
    In ``quick`` style a slip propagates to the next steps.
    """
    lines, carried = [], None
    for i, (a, op, b, c) in enumerate(steps):
        L = LEXICON[langs[i]]
        if carried is not None:  # a slip earlier in a quick solution changes this step's input
            a = carried
            c = a + b if op == "+" else a - b if op == "-" else a * b
        if style == "careful":
            lines.append(careful_step(a, op, b, L))
            carried = c
        elif style == "quick":
            written = slip(c, rng, floor=0) if rng.random() < slip_rate else c
            lines.append(f"{a}{op}{b}={written}.")
            carried = written
        elif style == "direct":
            return "", steps[-1][3]
        else:
            raise ValueError(f"unknown solution style {style!r}")
    return " ".join(lines), carried
