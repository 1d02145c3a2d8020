"""The Task contract: examples plus a verifier shared by the RL accuracy reward and the evaluation."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from r1lab.errors import UserError, did_you_mean


@dataclass(frozen=True)
class Example:
    """One problem. ``prompt`` is the bare question; prompt templates wrap it. ``reference`` is the gold answer."""

    id: str
    prompt: str
    reference: Any
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """The verifier's decision: ``answer`` is the answer it extracted (None when it found none)."""

    correct: bool
    answer: str | None
    info: dict = field(default_factory=dict)


class Task(Protocol):
    name: str

    def examples(self, split: str, n: int | None = None, seed: int = 0) -> list[Example]:
        """Deterministic examples of ``split`` ("train" or "test"); all of them when ``n`` is None (finite sets)."""

    def verify(self, response: str, example: Example) -> Verdict:
        """Grade a model response against the example's reference."""


TASKS: dict[str, Callable[..., Task]] = {}


def register_task(name: str):
    def deco(factory):
        TASKS[name] = factory
        return factory
    return deco


def get_task(name: str, **options) -> Task:
    """Build a registered task; an unknown name fails listing the valid ones."""
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}{did_you_mean(name, TASKS)}; valid tasks: {', '.join(sorted(TASKS))}")
    try:
        return TASKS[name](**options)
    except TypeError as e:
        raise UserError(f"bad options for task {name!r}: {e}") from None


def split_of(key: str, test_fraction: float) -> str:
    """Assign a problem to "train" or "test" by a hash of its canonical text.

    Splits are disjoint by construction, whatever the seed or how many examples are drawn.
    """
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    return "test" if h < test_fraction else "train"


def draw_split(sample: Callable[[random.Random], Example], split: str, n: int | None, rng_key: str) -> list[Example]:
    """``n`` distinct examples of ``split`` from a generator ``sample(rng)`` whose examples carry
    ``meta["split"]``; deterministic for ``rng_key``."""
    if n is None:
        raise ValueError("a generated world is unbounded: pass n")
    rng = random.Random(rng_key)
    out, seen = [], set()
    while len(out) < n:
        ex = sample(rng)
        if ex.meta["split"] == split and ex.id not in seen:
            seen.add(ex.id)
            out.append(ex)
    return out
