"""Reward registry and fault-isolated scoring.

A reward is ``(responses: list[str], examples: list[Example]) -> list[float]``. Knobs are bound with
``functools.partial`` when the trainer builds its reward set from config (``{name: weight}``).
A reward that raises, hangs past its time limit, or returns a non-number scores 0 for the samples it
failed on; the failures are counted in the metrics and the step goes on.
"""

from __future__ import annotations

import logging
import math
import numbers
import threading
import traceback
from dataclasses import dataclass, field
from typing import Callable

from r1lab.errors import UserError, did_you_mean
from r1lab.rewards.behaviour import language_consistency
from r1lab.rewards.format import format_r1_reward, format_reward, reasoning_of

log = logging.getLogger("r1lab.rewards")

RewardFn = Callable[[list, list], list]


def accuracy_reward(responses: list[str], examples: list, task) -> list[float]:
    """1.0 when the task's verifier accepts the response (the same verifier the evaluation uses)."""
    return [1.0 if task.verify(r, e).correct else 0.0 for r, e in zip(responses, examples)]


def target_language(example, default: str = "en") -> str:
    """The language reasoning should be in: the question's (``meta["lang"]``) when the task says it."""
    meta = getattr(example, "meta", None) or {}
    return meta.get("lang", default)


def language_reward(responses: list[str], examples: list, target: str = "en") -> list[float]:
    """Share of target-language words in the reasoning (R1 Eq. 7); the target is the question's language
    when the example carries one, else ``target``. A reasoning with no words scores 0, not 1: otherwise
    an empty chain of thought is the cheapest way to a perfect language reward (a hack seen in practice)."""
    return [language_consistency(reasoning_of(r), target_language(e, target), empty=0.0)
            for r, e in zip(responses, examples)]


def is_general(example) -> bool:
    meta = getattr(example, "meta", None) or {}
    return meta.get("kind") == "general"


def reasoning_only(fn: RewardFn) -> RewardFn:
    """Apply a rule reward to reasoning examples only; general examples score 0 (R1 Eq. 8–10: rule
    rewards for reasoning data, a preference model for general data)."""
    def wrapped(responses, examples):
        idx = [i for i, e in enumerate(examples) if not is_general(e)]
        scores = fn([responses[i] for i in idx], [examples[i] for i in idx]) if idx else []
        out = [0.0] * len(responses)
        for i, s in zip(idx, scores):
            out[i] = s
        return out
    return wrapped


def preference_reward(model_path: str, device: str = "cpu") -> RewardFn:
    """Reward-model score of the summary, for general examples only (reasoning examples score 0)."""
    from r1lab.train.reward_model import RewardModel

    rm = RewardModel.load(model_path, device)

    def fn(responses, examples):
        idx = [i for i, e in enumerate(examples) if is_general(e)]
        scores = rm.score([examples[i].prompt for i in idx], [responses[i] for i in idx]) if idx else []
        out = [0.0] * len(responses)
        for i, s in zip(idx, scores):
            out[i] = s
        return out
    return fn


def _math_reward(responses, examples):
    from r1lab.rewards.math import math_reward
    return math_reward(responses, examples)


def _code_reward(responses, examples):
    from r1lab.rewards.code import code_reward
    return code_reward(responses, examples)


# name -> factory(task, **options) -> RewardFn
REWARDS: dict[str, Callable[..., RewardFn]] = {
    "accuracy": lambda task, **kw: reasoning_only(lambda rs, es: accuracy_reward(rs, es, task)),
    "format": lambda task, **kw: format_reward,
    "format_r1": lambda task, **kw: format_r1_reward,
    "preference": lambda task, model, device="cpu", **kw: preference_reward(model, device),
    "language": lambda task, target="en", **kw: (lambda rs, es: language_reward(rs, es, target)),
    "math": lambda task, **kw: _math_reward,
    "code": lambda task, **kw: _code_reward,
}


def build_rewards(weights: dict[str, float], task, options: dict | None = None) -> dict[str, tuple[RewardFn, float]]:
    """{name: (fn, weight)} from config; an unknown name fails listing the valid ones. A name with a colon
    (``module:function``, ``path/to/file.py:function``) is a user function with TRL's contract (rewards/user.py)."""
    from r1lab.rewards.user import is_user_reward, load_reward_function, trl_reward

    out = {}
    for name, w in weights.items():
        if is_user_reward(name):
            out[name] = (trl_reward(load_reward_function(name)), float(w))
            continue
        if name not in REWARDS:
            raise UserError(f"unknown reward {name!r}{did_you_mean(name, REWARDS)}; valid rewards: {', '.join(REWARDS)}"
                            ", or your own function as module:function or path/to/file.py:function")
        try:
            out[name] = (REWARDS[name](task, **(options or {}).get(name, {})), float(w))
        except TypeError as e:
            raise UserError(f"reward {name!r}: bad or missing options in reward_options.{name} ({e})") from None
    return out


@dataclass
class RewardFailures:
    """Per-reward counts of failed samples, and the first traceback of each reward (reported once)."""

    errors: dict[str, int] = field(default_factory=dict)
    timeouts: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)
    none: dict[str, int] = field(default_factory=dict)  # samples a reward chose not to score (returned None)
    reported: set = field(default_factory=set)

    def add(self, kind: str, name: str, n: int = 1):
        d = getattr(self, kind)
        d[name] = d.get(name, 0) + n


FAILURE_KINDS = ("errors", "timeouts", "invalid", "none")  # RewardFailures' counters, as checkpoints save them
BATCH_TIMEOUT_CAP_S = 120.0
MAX_TIMEOUT_STREAK = 3


_WRONG_SHAPE = object()  # a per-sample call that did not return one score (counted invalid, unlike None)


def _valid(x) -> bool:
    return isinstance(x, numbers.Real) and math.isfinite(float(x))


def _call(fn, responses, examples, timeout_s, ids=None):
    """Run ``fn`` in a daemon thread with a deadline. A call that hangs is abandoned (a daemon thread never
    blocks interpreter exit, unlike executor workers) and raises TimeoutError here. ``ids`` (the completions'
    token ids) reach only rewards that ask for them (``takes_completion_ids``)."""
    box: dict = {}
    extra = {"completion_ids": ids} if getattr(fn, "takes_completion_ids", False) else {}

    def target():
        try:
            box["value"] = fn(responses, examples, **extra)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = e

    worker = threading.Thread(target=target, daemon=True, name="r1lab-reward")
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise TimeoutError(f"reward still running after {timeout_s:.1f}s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _report(failures: RewardFailures, name: str, what: str):
    if name not in failures.reported:
        failures.reported.add(name)
        log.warning("reward %r failed (%s); failing samples score 0 and are counted in the metrics:\n%s", name, what,
                    traceback.format_exc())


def safe_scores(name: str, fn: RewardFn, responses: list[str], examples: list, timeout_s: float,
                failures: RewardFailures, completion_ids: list[list[int]] | None = None) -> list[float]:
    """Scores of one reward with fault isolation: a batch call first, then sample by sample on failure."""
    try:
        scores = _call(fn, responses, examples, min(BATCH_TIMEOUT_CAP_S, timeout_s * max(1, len(responses))),
                       completion_ids)
        if isinstance(scores, (list, tuple)) and len(scores) == len(responses):
            return _clean(name, list(scores), failures)
        raise TypeError(f"reward returned {type(scores).__name__} of length "
                        f"{len(scores) if hasattr(scores, '__len__') else '?'} for {len(responses)} responses")
    except Exception as e:  # isolate the failing samples one by one
        _report(failures, name, f"{type(e).__name__}: {e}")
    out: list = []
    streak = 0  # consecutive timeouts: a reward that hangs on everything should not cost n * timeout_s
    for i, (r, ex) in enumerate(zip(responses, examples)):
        if streak >= MAX_TIMEOUT_STREAK:
            failures.add("timeouts", name)
            out.append(0.0)
            continue
        try:
            s = _call(fn, [r], [ex], timeout_s, None if completion_ids is None else [completion_ids[i]])
            out.append(s[0] if isinstance(s, (list, tuple)) and len(s) == 1 else _WRONG_SHAPE)
            streak = 0
        except TimeoutError:
            failures.add("timeouts", name)
            out.append(0.0)
            streak += 1
        except Exception:
            failures.add("errors", name)
            out.append(0.0)
            streak = 0
    return _clean(name, out, failures)


def _clean(name: str, scores: list, failures: RewardFailures) -> list[float]:
    out = []
    for s in scores:
        if _valid(s):
            out.append(float(s))
        elif s is None:  # TRL's "no score for this sample"
            failures.add("none", name)
            out.append(0.0)
        else:
            failures.add("invalid", name)
            out.append(0.0)
    return out


def score_all(rewards: dict[str, tuple[RewardFn, float]], responses: list[str], examples: list,
              timeout_s: float, failures: RewardFailures,
              completion_ids: list[list[int]] | None = None) -> tuple[list[float], dict[str, list[float]]]:
    """Weighted total per response, and each reward's raw scores by name."""
    per_name = {name: safe_scores(name, fn, responses, examples, timeout_s, failures, completion_ids)
                for name, (fn, _w) in rewards.items()}
    total = [sum(rewards[n][1] * per_name[n][i] for n in rewards) for i in range(len(responses))]
    return total, per_name
