"""Preflight, non-finite updates, and the last good checkpoint."""

import pytest
import torch

import r1lab.train.grpo as grpo_mod
from r1lab.errors import TrainingError, UserError
from r1lab.rewards.registry import REWARDS
from r1lab.runtime.checkpoint import Checkpointer
from r1lab.train.grpo import GRPOConfig
from r1lab.train.grpo_run import run_grpo

from conftest import make_model


def _cfg(**kw):
    base = dict(steps=6, prompts_per_step=2, group_size=4, max_new_tokens=8, lr=1e-3, eval_every=0,
                checkpoint_every=1, keep_checkpoints=5)
    base.update(kw)
    return GRPOConfig(**base)


@pytest.fixture
def len_reward(monkeypatch):
    monkeypatch.setitem(REWARDS, "len", lambda task, **kw: (lambda rs, es: [len(r) / 50.0 for r in rs]))
    monkeypatch.setitem(REWARDS, "const", lambda task, **kw: (lambda rs, es: [0.5] * len(rs)))


def test_preflight_stops_when_every_reward_is_equal(tmp_path, tiny_model_dir, len_reward):
    # 4 batches (the default preflight_batches) of 8 responses, all equal
    with pytest.raises(UserError, match=r"preflight: all 32 sampled responses got the same reward \(0.5"):
        run_grpo(_cfg(rewards={"const": 1.0}), tiny_model_dir, tmp_path / "run")
    assert not (tmp_path / "run" / "model").exists()
    # told to go on, it runs
    run_grpo(_cfg(rewards={"const": 1.0}, preflight=False, steps=1), tiny_model_dir, tmp_path / "run2")
    assert (tmp_path / "run2" / "model" / "config.json").is_file()


def test_preflight_samples_more_batches_before_giving_up_on_a_rare_signal(tmp_path, tiny_model_dir, monkeypatch):
    calls = []

    def late_signal(task, **kw):
        def fn(rs, es):
            calls.append(len(rs))
            # nothing but zeros until the third batch: a reward that is rarely non-zero
            return [0.0] * len(rs) if len(calls) < 3 else [float(i % 2) for i in range(len(rs))]
        return fn

    monkeypatch.setitem(REWARDS, "late", late_signal)
    with pytest.raises(UserError, match=r"all 16 sampled responses got the same reward \(0"):
        run_grpo(_cfg(rewards={"late": 1.0}, preflight_batches=2), tiny_model_dir, tmp_path / "two")
    calls.clear()
    run_grpo(_cfg(rewards={"late": 1.0}, steps=1), tiny_model_dir, tmp_path / "four")
    assert calls[:3] == [8, 8, 8]  # three preflight batches (it stops at the first with a difference), then training
    assert (tmp_path / "four" / "model" / "config.json").is_file()


def test_non_finite_updates_are_skipped_then_stop_with_last_good_checkpoint(tmp_path, tiny_model_dir, len_reward,
                                                                             monkeypatch):
    real_loss = grpo_mod.policy_loss
    calls = {"n": 0}

    def nan_after_two_steps(*a, **kw):
        loss, m = real_loss(*a, **kw)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] > 2 else loss), m

    monkeypatch.setattr(grpo_mod, "policy_loss", nan_after_two_steps)
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match="3 steps in a row had non-finite"):
        run_grpo(_cfg(rewards={"len": 1.0}, max_bad_steps=3), tiny_model_dir, out)
    rows = [__import__("json").loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["skipped_updates"] for r in rows] == [0, 0, 1, 1, 1]
    ck = Checkpointer(out / "checkpoints")
    # checkpoints after the bad steps hold the same (last good) weights: a NaN never reached them
    good, last = make_model_from(ck, "step_00000002"), make_model_from(ck, ck.latest().name)
    assert all(torch.equal(a, b) for a, b in zip(good.values(), last.values()))
    assert all(torch.isfinite(v).all() for v in last.values() if v.is_floating_point())


def make_model_from(ck, name):
    return torch.load(ck.dir / name / "state.pt", weights_only=False)["model"]
