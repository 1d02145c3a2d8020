"""R1's evaluation protocol: k samples per problem at temperature 0.6 / top-p 0.95 (R1-v1 §3).

pass@1 is the mean correctness over the k samples (with its standard error over problems), pass@k the
unbiased estimator, cons@k the majority vote over extracted answers. Also response length, format rate,
truncation, reflection words and language consistency: the curves the paper reads off R1-Zero.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass

from r1lab.core import pass_at_k
from r1lab.rewards.behaviour import language_consistency, reflection_count, reflection_stats
from r1lab.rewards.format import is_r1_format, is_r1zero_format, reasoning_of
from r1lab.rewards.registry import target_language
from r1lab.rollout import SamplingParams


@dataclass
class EvalSettings:
    samples: int = 8
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 256
    seed: int = 1234
    language: str = "en"
    format: str = "r1zero"          # which layout the format rate checks: "r1zero" or "r1" (readable)


def majority_vote(verdicts: list) -> tuple[str | None, bool]:
    """Most common extracted answer (ties go to the one seen first) and whether it is correct."""
    answers = [(v.answer.strip() if v.answer is not None else None) for v in verdicts]
    counts = Counter(a for a in answers if a)
    if not counts:
        return None, False
    top = max(counts.values())
    winner = next(a for a in answers if a and counts[a] == top)
    return winner, next(v.correct for v, a in zip(verdicts, answers) if a == winner)


def pass_ks(samples: int) -> list[int]:
    ks, k = [], 1
    while k <= samples:
        ks.append(k)
        k *= 2
    if samples not in ks:
        ks.append(samples)
    return ks


FORMATS = {"r1zero": is_r1zero_format, "r1": is_r1_format}


def summarize(task, examples, rollouts, samples: int, language: str = "en", keep_responses: bool = True,
              format: str = "r1zero") -> dict:
    """Metrics from rollouts ordered prompt-major (``samples`` per example)."""
    is_format = FORMATS[format]
    per_example, p1s = [], []
    correct_counts, cons = [], []
    lengths, fmt, trunc, reflect, lang = [], [], [], [], []
    texts, right = [], []
    for i, ex in enumerate(examples):
        group = rollouts[i * samples : (i + 1) * samples]
        verdicts = [task.verify(r.text, ex) for r in group]
        c = sum(v.correct for v in verdicts)
        maj, maj_ok = majority_vote(verdicts)
        correct_counts.append(c)
        p1s.append(c / samples)
        cons.append(maj_ok)
        texts += [r.text for r in group]
        right += [v.correct for v in verdicts]
        for r in group:
            lengths.append(len(r.token_ids))
            fmt.append(is_format(r.text))
            trunc.append(r.finish_reason == "length")
            reflect.append(reflection_count(r.text))
            lang.append(language_consistency(reasoning_of(r.text), target_language(ex, language)))
        row = {"id": ex.id, "reference": _jsonable(ex.reference), "correct": [v.correct for v in verdicts],
               "answers": [v.answer for v in verdicts], "majority": maj, "majority_correct": maj_ok}
        if keep_responses:
            row["prompt"] = ex.prompt
            row["responses"] = [r.text for r in group]
        per_example.append(row)
    n = max(1, len(examples))
    mean_p1 = sum(p1s) / n
    var = sum((p - mean_p1) ** 2 for p in p1s) / max(1, n - 1)
    out = {
        "examples": len(examples),
        "samples": samples,
        "pass@1": mean_p1,
        "pass@1_stderr": math.sqrt(var / n),
        f"cons@{samples}": sum(cons) / n,
        "mean_response_tokens": sum(lengths) / max(1, len(lengths)),
        "max_response_tokens": max(lengths, default=0),
        "format_rate": sum(fmt) / max(1, len(fmt)),
        "truncated_rate": sum(trunc) / max(1, len(trunc)),
        "reflection_words": sum(reflect) / max(1, len(reflect)),
        **reflection_stats(texts, right),
        "language_consistency": sum(lang) / max(1, len(lang)),
    }
    for k in pass_ks(samples):
        out[f"pass@{k}"] = sum(pass_at_k(samples, c, k) for c in correct_counts) / n
    out["per_example"] = per_example
    return out


def evaluate(engine, task, examples, prompts: list[str], settings: EvalSettings, keep_responses: bool = True) -> dict:
    """Sample ``settings.samples`` responses per prompt with ``engine`` and summarise them."""
    t0 = time.time()
    sampling = SamplingParams(temperature=settings.temperature, top_p=settings.top_p,
                              max_new_tokens=settings.max_new_tokens, seed=settings.seed)
    rollouts = engine.generate(prompts, settings.samples, sampling)
    out = summarize(task, examples, rollouts, settings.samples, settings.language, keep_responses, settings.format)
    out["seconds"] = time.time() - t0
    out["settings"] = {"temperature": settings.temperature, "top_p": settings.top_p, "format": settings.format,
                       "max_new_tokens": settings.max_new_tokens, "samples": settings.samples, "seed": settings.seed}
    return out


def _jsonable(x):
    return x if isinstance(x, (str, int, float, bool, type(None), list, dict)) else str(x)
