"""benchmarks/smollm2_zero.py: its control reward, its paired change, and the whole script on a tiny model."""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from r1lab.rewards.registry import build_rewards
from conftest import make_model

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "smollm2_zero.py"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH.parent))
    try:
        spec = importlib.util.spec_from_file_location("smollm2_zero_under_test", BENCH)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.path.remove(str(BENCH.parent))


def test_random_reward_ignores_the_answer_and_is_reproducible(bench):
    prompts = [f"Compute {i}+1" for i in range(400)]
    right = [f"\\boxed{{{i + 1}}}" for i in range(400)]
    wrong = [f"\\boxed{{{i + 2}}}" for i in range(400)]
    r_right, r_wrong = bench.random_reward(prompts, right), bench.random_reward(prompts, wrong)
    assert set(r_right) | set(r_wrong) == {0.0, 1.0}
    # about half ones, for right and wrong answers alike (400 draws: 0.5 +- 0.1 is ~4 s.e.)
    assert abs(sum(r_right) / 400 - 0.5) < 0.1 and abs(sum(r_wrong) / 400 - 0.5) < 0.1
    assert r_right == bench.random_reward(prompts, right)  # a rerun draws the same
    # the same text at another place in the batch draws independently
    same = bench.random_reward(["p"] * 200, ["x"] * 200)
    assert 0 < sum(same) < 200


def test_the_control_is_a_user_reward_through_r1labs_loader(bench):
    rewards = build_rewards(bench.ARMS["random"], task=None)
    (name, (fn, weight)), (acc_name, (_, acc_weight)) = rewards.items()
    assert name.endswith("smollm2_zero.py:random_reward") and weight == 1.0
    assert acc_name == "accuracy" and acc_weight == 0.0  # logged, not rewarded


def test_paired_change_by_hand(bench):
    def ev(per_problem):  # an evaluation's per-example rows, 4 samples a problem
        return {"per_example": [{"id": str(i), "correct": [True] * round(4 * p) + [False] * (4 - round(4 * p))}
                                for i, p in enumerate(per_problem)]}

    mean, se, _ = bench.paired(ev([0.0, 0.25, 0.5, 1.0]), ev([0.5, 0.25, 1.0, 1.0]))  # what run_arm reports
    d = [0.5, 0.0, 0.5, 0.0]
    assert mean == pytest.approx(0.25)
    assert se == pytest.approx(math.sqrt(sum((x - 0.25) ** 2 for x in d) / 3 / 4))


def test_the_script_runs_both_arms_on_a_tiny_chat_model(bench, tmp_path, tiny_tokenizer, capsys):
    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}{{ '\\n' }}"  # ends with a newline, as SmolLM2's
    model_dir = tmp_path / "chat_model"
    make_model(tok).save_pretrained(str(model_dir))
    tok.save_pretrained(str(model_dir))
    png = tmp_path / "curve.png"
    rc = bench.main(["--model", str(model_dir), "--steps", "2", "--prompts", "2", "--group", "2",
                     "--max-new-tokens", "6", "--eval-examples", "4", "--eval-samples", "2", "--precision", "fp32",
                     "--no-preflight", "--out", str(tmp_path / "run"), "--plot", str(png)])
    assert rc == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(line["arms"]) == {"accuracy", "random"}
    for name, arm in line["arms"].items():
        assert len(arm["accuracy_per_step"]) == 2 and len(arm["reward_per_step"]) == 2
        assert (tmp_path / "run" / name / "model" / "config.json").exists()
        assert -1 <= arm["change"] <= 1 and arm["change_stderr"] >= 0
        assert arm["rises"] is False  # a random tiny model in 2 steps cannot gain 10 points beyond 2 s.e.
    assert line["arms"]["accuracy"]["rewards"] == {"accuracy": 1.0}
    assert line["control_flat"] is True and line["learns"] is False
    assert "per_example" not in line["before"]
    assert png.stat().st_size > 1000
