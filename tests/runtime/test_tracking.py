"""Experiment tracking: report_to checks, TensorBoard points read back from the event file (the same names,
steps and values as metrics.jsonl), the completions table, and a resumed run without duplicate points."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from r1lab.errors import UserError
from r1lab.runtime import tracking
from r1lab.runtime.tracking import resolve_report_to

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def test_report_to_default_unknown_and_not_installed(monkeypatch):
    assert resolve_report_to(None) == ["tensorboard"]
    assert resolve_report_to([]) == []
    with pytest.raises(UserError, match="unknown tracker 'tensorbord'.*valid: tensorboard, wandb, trackio, mlflow"):
        resolve_report_to(["tensorbord"])
    monkeypatch.setattr(tracking, "installed", lambda name: name == "tensorboard")
    with pytest.raises(UserError, match=r'mlflow is not installed; pip install "r1lab\[mlflow\]"'):
        resolve_report_to(["tensorboard", "mlflow"])
    assert resolve_report_to(None) == ["tensorboard"]
    monkeypatch.setattr(tracking, "installed", lambda name: False)
    assert resolve_report_to(None) == []  # no tensorboard: no tracker by default, metrics.jsonl only


def test_uninstalled_tracker_stops_the_command_before_any_work(tmp_path, capsys, monkeypatch):
    from r1lab.cli import main

    monkeypatch.setattr(tracking, "installed", lambda name: name != "wandb")
    out = tmp_path / "run"
    assert main(["pretrain", "--out", str(out), "report_to=[wandb]"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and 'pip install "r1lab[wandb]"' in err[0]
    assert not out.exists()


def tb_points(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _grpo(model_dir, out: Path, steps: int, progress=None, **kw):
    from r1lab.config import build
    from r1lab.train.grpo import GRPOConfig
    from r1lab.train.grpo_run import run_grpo

    cfg = build(GRPOConfig, dict(steps=steps, prompts_per_step=2, group_size=4, max_new_tokens=12, eval_every=2,
                                 eval_examples=2, eval_samples=2, checkpoint_every=2, log_completions_every=2,
                                 preflight=False, **kw))
    return run_grpo(cfg, model_dir, out, progress=progress)


def test_grpo_metrics_and_completions_reach_tensorboard(tmp_path, tiny_model_dir):
    out = tmp_path / "grpo"
    _grpo(tiny_model_dir, out, steps=3)
    rows, acc = metrics(out), tb_points(out)
    for name in ("reward", "loss", "kl", "response_len_mean", "reward/accuracy", "eval/pass@1"):
        logged = [(r["step"], r[name]) for r in rows if name in r]
        points = [(e.step, e.value) for e in acc.Scalars(name)]
        assert [s for s, _ in points] == [s for s, _ in logged], name
        assert [v for _, v in points] == pytest.approx([v for _, v in logged], rel=1e-6), name
    assert [r["step"] for r in rows if "eval/pass@1" in r] == [1, 2]  # held-out evaluations too
    completions = [json.loads(ln) for ln in (out / "completions.jsonl").read_text().splitlines()]
    assert sorted({c["step"] for c in completions}) == [0, 2] and len(completions) == 2 * 8
    first = completions[0]
    assert set(first) >= {"prompt", "completion", "reward", "reward/accuracy", "reward/format", "advantage"}
    assert first["reward"] == pytest.approx(first["reward/accuracy"] + first["reward/format"])
    texts = acc.Tags()["tensors"]
    assert any(t.startswith("completions") for t in texts)


def test_resumed_run_continues_the_same_points_without_duplicates(tmp_path, tiny_model_dir):
    out = tmp_path / "grpo"

    class Killed(Exception):
        pass

    def kill_after_step_3(done, total, **kw):
        if done == 4:  # step 3 logged, the last checkpoint is after step 2: steps 2 and 3 are done again
            raise Killed

    with pytest.raises(Killed):
        _grpo(tiny_model_dir, out, steps=6, progress=kill_after_step_3)
    before = tb_points(out)
    assert [e.step for e in before.Scalars("reward")] == [0, 1, 2, 3]
    _grpo(tiny_model_dir, out, steps=6)
    acc, rows = tb_points(out), metrics(out)
    assert len(list((out / "tb").glob("events.out.tfevents.*"))) == 2  # written by the two processes
    points = acc.Scalars("reward")
    assert [e.step for e in points] == [0, 1, 2, 3, 4, 5]  # each step once
    assert [e.value for e in points] == pytest.approx([r["reward"] for r in rows], rel=1e-6)


def test_wandb_offline_run_is_continued_on_resume(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from r1lab.runtime import MetricLogger

    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline unless the user says otherwise
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "sft"
    for start, steps in ((0, range(0, 3)), (2, range(2, 4))):  # a run, then its resume from step 2
        # W&B names an offline run's folder by its local start time to the second: a resume within the
        # same second would share the first run's folder, so it starts after it, as a real resume does
        stamps = [d.name.split("-")[2] for d in (run / "wandb").glob("offline-run-*")]
        while stamps and time.strftime("%Y%m%d_%H%M%S") <= max(stamps):
            time.sleep(0.05)
        logger = MetricLogger(run / "metrics.jsonl")
        logger.track(["wandb"], {"lr": 0.1}, start)
        for s in steps:
            logger.log({"step": s, "loss": 1.0 / (s + 1), "eval/pass@1": 0.5, "note": "text is not a metric"})
        logger.table("completions", [{"prompt": "1+1?", "completion": "2", "reward": 1.0}], steps[-1])
        logger.close()
    run_id = json.loads((run / "trackers.json").read_text())["wandb"]
    files = sorted((run / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
    assert len(files) == 2  # both processes wrote to the same W&B run (offline: merged when synced)
    data = files[0].read_bytes()
    assert b"loss" in data and b"eval/pass@1" in data and b"completions" in data and b"text is not" not in data
