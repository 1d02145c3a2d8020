"""The report's findings: paired standard errors and the thresholds each finding needs."""

import math

import pytest

from r1lab.pipeline.findings import aha, findings, paired


def _ev(per_problem: dict[str, list[bool]], pass1: float | None = None) -> dict:
    rows = [{"id": k, "correct": v} for k, v in per_problem.items()]
    p = pass1 if pass1 is not None else sum(sum(v) / len(v) for v in per_problem.values()) / len(per_problem)
    return {"per_example": rows, "pass@1": p}


def test_paired_difference_and_stderr_by_hand():
    a = _ev({"x": [True, False], "y": [False, False], "z": [True, True], "only_a": [True, True]})
    b = _ev({"x": [True, True], "y": [True, False], "z": [True, True], "only_b": [False, False]})
    mean, se, n = paired(a, b)
    d = [0.5, 0.5, 0.0]  # per shared problem, b minus a
    m = sum(d) / 3
    assert n == 3 and mean == pytest.approx(m)
    assert se == pytest.approx(math.sqrt(sum((x - m) ** 2 for x in d) / 2 / 3))
    assert paired(None, b) is None


def _row(**kw):
    base = {"pass@1": 0.5, "pass@1_stderr": 0.02, "language_consistency": 0.9, "mean_response_tokens": 40.0,
            "reflection_rate": 0.05, "effective_reflection_rate": 0.01}
    return {**base, **kw}


def test_aha_needs_every_part():
    rows = {"base": _row(), "zero": _row(reflection_rate=0.4, effective_reflection_rate=0.1, mean_response_tokens=90.0)}
    assert aha(rows)["holds"]
    for bad in ({"reflection_rate": 0.09}, {"effective_reflection_rate": 0.0}, {"mean_response_tokens": 50.0}):
        assert not aha({**rows, "zero": {**rows["zero"], **bad}})["holds"]
    assert not aha({**rows, "base": _row(reflection_rate=0.2)})["holds"]  # the base must reflect rarely


def test_gaps_must_clear_two_paired_standard_errors():
    problems = [f"p{i}" for i in range(40)]
    cold = _ev({p: [i % 2 == 0] * 4 for i, p in enumerate(problems)})
    better = _ev({p: [True] * 4 for p in problems})          # +50 points on every other problem
    rows = {"cold_start": _row(**{"pass@1_hard": 0.5}), "reasoning_rl": _row(**{"pass@1_hard": 1.0}),
            "zero": _row(**{"pass@1_hard": 1.0})}
    evals = {("cold_start", "hard"): cold, ("reasoning_rl", "hard"): better, ("zero", "hard"): better}
    f = findings(rows, evals)
    assert f["reasoning_rl_recovers_on_hard"]["holds"] and f["cold_start_below_zero_on_hard"]["holds"]
    assert f["reasoning_rl_recovers_on_hard"]["difference"] == pytest.approx(0.5)
    # a gap of one problem in forty is inside the noise
    nearly = _ev({p: [i % 2 == 0 or i == 1] * 4 for i, p in enumerate(problems)})
    f = findings(rows, {**evals, ("reasoning_rl", "hard"): nearly, ("zero", "hard"): nearly})
    assert not f["reasoning_rl_recovers_on_hard"]["holds"] and not f["cold_start_below_zero_on_hard"]["holds"]


def test_final_stage_needs_general_gain_and_kept_pass1():
    problems = [f"g{i}" for i in range(50)]
    before = _ev({p: [i % 4 != 0] * 4 for i, p in enumerate(problems)})   # 75%
    after = _ev({p: [True] * 4 for p in problems})                         # 100%
    arith = _ev({p: [True, False] for p in problems})
    rows = {"rejection_sft": _row(general_accuracy=0.75), "r1": _row(general_accuracy=1.0)}
    evals = {("rejection_sft", "general"): before, ("r1", "general"): after,
             ("rejection_sft", "standard"): arith, ("r1", "standard"): arith}
    assert findings(rows, evals)["final_stage_raises_general"]["holds"]
    worse = _ev({p: [False, False] for p in problems})
    assert not findings(rows, {**evals, ("r1", "standard"): worse})["final_stage_raises_general"]["holds"]
    # pass@1 rising in the final stage is not a loss: the tolerance is one-sided
    sharper = _ev({p: [True, True] for p in problems})
    f = findings(rows, {**evals, ("r1", "standard"): sharper})["final_stage_raises_general"]
    assert f["pass@1_difference"] == pytest.approx(0.5) and f["holds"]
    # one problem of fifty dropping from 1/2 to 0/2 (-1 point) is inside the tolerance
    slip = _ev({p: [True, False] if i else [False, False] for i, p in enumerate(problems)})
    f = findings(rows, {**evals, ("r1", "standard"): slip})["final_stage_raises_general"]
    assert f["pass@1_difference"] == pytest.approx(-0.01) and f["holds"]


def test_distillation_judged_on_the_smallest_student_with_an_rl_control():
    problems = [f"d{i}" for i in range(40)]
    low = _ev({p: [i % 4 == 0] * 4 for i, p in enumerate(problems)})      # 25%
    high = _ev({p: [i % 4 != 3] * 4 for i, p in enumerate(problems)})     # 75%
    rows = {"student_0.5m": _row(**{"pass@1": 0.75}), "student_0.25m": _row(**{"pass@1": 0.25}),
            "rl_only_0.25m": _row(**{"pass@1": 0.75}), "rl_only_0.5m": _row(**{"pass@1": 0.25})}
    evals = {("student_0.5m", "standard"): high, ("student_0.25m", "standard"): low,
             ("rl_only_0.25m", "standard"): high, ("rl_only_0.5m", "standard"): low}
    f = findings(rows, evals)["distillation_beats_rl_on_small_student"]
    # the 0.25m pair decides (RL wins there); the 0.5m pair is reported next to it
    assert not f["holds"] and f["difference"] == pytest.approx(-0.5)
    assert f["holds_0.5m"] and f["difference_0.5m"] == pytest.approx(0.5)
    # one control only: judged on its own size, even when a smaller student has none
    only = {k: v for k, v in rows.items() if k != "rl_only_0.25m"}
    f = findings(only, evals)["distillation_beats_rl_on_small_student"]
    assert f["holds"] and "rl_only_0.25m" not in f and f["student_0.5m"] == 0.75
