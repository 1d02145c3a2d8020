"""benchmarks/eval_budget.py: a finding's paired gap recomputed from fewer samples or fewer problems."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "eval_budget.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("eval_budget_under_test", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _write(run: Path, row: str, name: str, correct: dict[str, list[bool]]):
    (run / row).mkdir(parents=True, exist_ok=True)
    (run / row / name).write_text(json.dumps({"per_example": [{"id": i, "correct": c} for i, c in correct.items()]}))


def test_gap_with_fewer_samples_and_fewer_problems(tmp_path, bench, capsys):
    ids = [f"p{i}" for i in range(8)]
    # cold start: right on the first 2 of 4 samples of every problem; reasoning RL: right on all 4 of the
    # first 4 problems and on none of the last 4
    _write(tmp_path, "cold_start", "eval_hard.json", {i: [True, True, False, False] for i in ids})
    _write(tmp_path, "reasoning_rl", "eval_hard.json", {i: [n < 4] * 4 for n, i in enumerate(ids)})
    assert bench.main([str(tmp_path), "--k", "4", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    f = out["findings"]["reasoning_rl_recovers_on_hard"]
    assert set(out["findings"]) == {"reasoning_rl_recovers_on_hard"}  # only findings whose rows exist
    assert f["samples"] == 4 and f["problems"] == 8
    # all 4 samples: per-problem differences +0.5 (x4) and -0.5 (x4): mean 0, s.e. 0.5/sqrt(8)*sqrt(8/7)
    assert f["k4"]["difference"] == pytest.approx(0.0) and f["k4"]["stderr"] == pytest.approx(0.189, abs=1e-3)
    # the first 2 samples: cold start right on both: differences 0 (x4) and -1 (x4)
    assert f["k2"]["difference"] == pytest.approx(-0.5) and f["k2"]["stderr"] == pytest.approx(0.189, abs=1e-3)
    # half the problems (the first 4): +0.5 on each, no spread
    assert f["k4_half_problems"] == {"difference": 0.5, "stderr": 0.0}


def test_not_a_run_directory_is_one_error_line(tmp_path, bench, capsys):
    assert bench.main([str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
