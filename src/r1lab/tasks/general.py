"""General (non-reasoning) tasks of the tiny world, and the preference pairs its reward model learns from.

R1's SFT and final RL stage mix reasoning data with "non-reasoning" data (writing, QA, ...): short
instructions answered directly, with no chain of thought (R1-v1 §2.3.3: for "simpler queries, such as
'hello' we do not provide a CoT"). The tiny world's version: five families of one-line instructions
(the next number, the larger of two, repeating a word, greeting someone, translating a world word),
answered in the R1 layout with an empty reasoning block (``<think> </think> Hello, Ana!``).

Preference pairs: the chosen response is the correct, concise answer; the rejected one is wrong,
needlessly repetitive, a refusal, or rambling. These are the judgements the paper's helpful reward
model was trained on at scale (Arena-Hard-style pairs); here they are generated.
"""

from __future__ import annotations

import random
import re

from r1lab.rewards.format import summary_of
from r1lab.tasks.base import Example, Verdict, draw_split, register_task, split_of
from r1lab.tasks.languages import LEXICON

NAMES = ["Ana", "Bo", "Carla", "Dev", "Eli", "Femi", "Gus", "Hana", "Ivo", "Juno", "Kai", "Lia", "Mo", "Nia",
         "Omar", "Pia", "Quin", "Rosa", "Sam", "Tia", "Uma", "Vic", "Wen", "Xavi", "Yara", "Zed"]
WORDS = ["cat", "sun", "tree", "blue", "map", "star", "rain", "door", "fish", "bird", "leaf", "rock"]


def _syllable_names(first: str, rest: str, vowels: str, capital: bool) -> list[str]:
    """Two-syllable made-up names (consonant vowel consonant vowel), in a fixed order."""
    out = [a + v + b + w for a in first for v in vowels for b in rest for w in vowels]
    return [n.capitalize() if capital else n for n in out]


# With 26 names and 12 words the "greet" and "repeat" families had ~25 distinct training prompts each:
# drawing distinct examples exhausted them, so ~95% of the general data and of its held-out split were the
# two number families, and the SFT stages saw each greeting once (measured: 0% held-out accuracy on
# greetings after rejection SFT). Made-up names and words give every family a few hundred prompts.
NAMES = NAMES + _syllable_names("BDKLMNRST", "lmnrstv", "aeio", capital=True)
WORDS = WORDS + _syllable_names("bdkmpt", "lnr", "aou", capital=False)
# world words with a translation (both surface languages' lexicons)
TRANSLATABLE = [k for k in ("units", "tens", "hundreds", "carry", "borrow", "check", "wait", "then", "first", "try")
                if " " not in LEXICON["en"][k] and " " not in LEXICON["es"][k]]


def _family_next(rng):
    n = rng.randint(0, 998)
    return f"What number comes after {n}?", str(n + 1)


def _family_larger(rng):
    a, b = rng.sample(range(1, 1000), 2)
    return f"Which is larger, {a} or {b}?", str(max(a, b))


def _family_repeat(rng):
    w, k = rng.choice(WORDS), rng.randint(2, 4)
    return f"Repeat the word {w} {k} times.", " ".join([w] * k)


def _family_greet(rng):
    name = rng.choice(NAMES)
    return f"Say hello to {name}.", f"Hello, {name}!"


def _family_translate(rng):
    key = rng.choice(TRANSLATABLE)
    return f"Translate {LEXICON['en'][key]} to Spanish.", LEXICON["es"][key]


FAMILIES = {"next": _family_next, "larger": _family_larger, "repeat": _family_repeat, "greet": _family_greet,
            "translate": _family_translate}


def normalise(text: str) -> str:
    """Lower case, punctuation to spaces, single spaces."""
    return " ".join(re.sub(r"[^\w\s]", " ", (text or "").lower()).split())


def general_response(answer: str) -> str:
    """The R1 layout for a simple query: an empty reasoning block, then the answer as the summary."""
    return f"<think> </think> {answer}"


@register_task("general")
class GeneralTask:
    """Short instructions with one correct answer, judged on the summary (exact match after normalising)."""

    name = "general"

    def __init__(self, families: list[str] | None = None, test_fraction: float = 0.1):
        self.families = list(families or FAMILIES)
        unknown = set(self.families) - set(FAMILIES)
        if unknown:
            raise ValueError(f"unknown general families {sorted(unknown)}; valid: {', '.join(FAMILIES)}")
        self.test_fraction = test_fraction

    def sample(self, rng: random.Random) -> Example:
        fam = rng.choice(self.families)
        prompt, answer = FAMILIES[fam](rng)
        return Example(id=f"general/{prompt}", prompt=prompt, reference=answer,
                       meta={"kind": "general", "family": fam, "lang": "en", "split": split_of(prompt, self.test_fraction)})

    def examples(self, split: str, n: int | None = None, seed: int = 0) -> list[Example]:
        return draw_split(self.sample, split, n, f"general:{split}:{seed}")

    def verify(self, response: str, example: Example) -> Verdict:
        got = summary_of(response)
        return Verdict(correct=normalise(got) == normalise(str(example.reference)), answer=got, info={})


def rejected_response(example: Example, rng: random.Random) -> tuple[str, str]:
    """A worse response to a general prompt and the reason it is worse.

    "wrong" answers are near misses as well as far ones, and "off_topic" ones answer another kind of
    instruction: a reward model that only ever saw near misses rates a short answer to the wrong question
    highly, and the policy learns to give one (reward hacking, R1-v2 §3.2.2).

    Tried, not kept: the other number as the rejected answer to a quarter of the "which is larger" prompts
    (the policy's commonest mistake there). The reward model then ranked the rejection-SFT policy's right
    answers to held-out "which is larger" prompts above its wrong ones 70% of the time instead of 57%
    (native demo), but R1's general accuracy did not follow: -0.6 +- 0.9 points (seed 1: +2.5 +- 1.1,
    against +3.7 with these pairs)."""
    ref = str(example.reference)
    kind = rng.choice(["wrong", "off_topic", "repetitive", "refusal", "rambling"])
    if kind == "wrong":
        if ref.isdigit():
            near = int(ref) + rng.choice([-2, -1, 1, 2, 10])
            bad = str(near if rng.random() < 0.5 else rng.choice([v for v in range(0, 1000) if v != int(ref)]))
        else:
            bad = rng.choice([w for w in WORDS + NAMES if w.lower() not in ref.lower()])
        return general_response(bad), kind
    if kind == "off_topic":
        other = rng.choice([f for f in FAMILIES if f != example.meta.get("family")])
        _, answer = FAMILIES[other](rng)
        if normalise(answer) == normalise(ref):
            answer = f"{answer} {answer}"
        return general_response(answer), kind
    if kind == "repetitive":
        return general_response(" ".join([ref] * rng.randint(3, 5))), kind
    if kind == "refusal":
        return general_response("I can not help with that."), kind
    return general_response(f"Well, let me think, maybe, it could be {ref}, or not, hard to say."), kind


def preference_pairs(n: int, split: str, seed: int = 0) -> list[dict]:
    """``n`` (prompt, chosen, rejected) triples on general prompts of ``split``."""
    task = GeneralTask()
    rng = random.Random(f"prefs:{split}:{seed}")
    out = []
    for ex in task.examples(split, n=n, seed=seed):
        rejected, why = rejected_response(ex, rng)
        out.append({"prompt": ex.prompt, "chosen": general_response(str(ex.reference)), "rejected": rejected,
                    "why": why})
    return out
