"""The second lane (pipeline/lanes.py): when it cannot run or fails, its stages run in this process."""

import torch

from r1lab.config import build
from r1lab.pipeline.lanes import lane_possible, side_lane, side_stages
from r1lab.pipeline.quick import QUICK
from r1lab.pipeline.r1 import R1Recipe


def _cfg(**kw):
    return build(R1Recipe, {**QUICK, **kw})


def test_lane_only_with_two_threads_on_cpu_and_something_to_run(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert side_stages(_cfg()) == ["zero_lc", "rl_only_0.5m"]
    assert lane_possible(_cfg()) == (not torch.cuda.is_available())
    assert not lane_possible(_cfg(side_lane=False))
    assert not lane_possible(_cfg(ablate_language_reward=False, distill={**QUICK["distill"], "rl_sizes": []}))
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert not lane_possible(_cfg())


def test_failed_second_process_leaves_its_stages_to_this_one(tmp_path, capsys):
    if not lane_possible(_cfg()):
        import pytest
        pytest.skip("needs two CPU threads")
    (tmp_path / "side_lane.log").mkdir()  # the second process cannot open its log: it exits at once
    threads = torch.get_num_threads()
    with side_lane(_cfg(), tmp_path, tmp_path / "no-base") as beside:
        assert beside and torch.get_num_threads() == threads - threads // 2
    assert torch.get_num_threads() == threads
    out = capsys.readouterr().out
    assert "the second process stopped (exit code 1" in out and "its unfinished stages run here" in out
    assert not (tmp_path / "zero_lc" / "DONE").exists()


def test_demo_stopped_during_the_lanes_resumes_both(tmp_path):
    """SIGINT while both lanes run: both processes stop cleanly (exit 130, no traceback on the terminal), and
    the same command then finishes every stage, each lane's RL resumed rather than restarted."""
    import json
    import os
    import subprocess
    import sys

    from conftest import run_until_then_interrupt

    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "r1lab", "demo", "--quick", "--out", str(out)]
    env = dict(os.environ, PYTHONWARNINGS="ignore", R1LAB_THREADS="2")
    # Ctrl-C reaches the whole process group, the second process too
    code, stdout, err = run_until_then_interrupt(cmd, env, out / "zero" / "checkpoints" / "step_00000001", group=True)
    assert code == 130, err[-3000:]
    assert "Traceback" not in err and "rerun the same command" in err.lower()
    assert "[lanes]" in stdout and not (out / "reasoning_rl").exists()

    p2 = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert p2.returncode == 0, p2.stderr[-3000:]
    for stage in ("zero", "zero_lc", "rl_only_0.5m"):
        steps = [json.loads(x)["step"] for x in (out / stage / "metrics.jsonl").read_text().splitlines()]
        assert steps == [0, 1], (stage, steps)  # resumed or skipped, never duplicated
    assert json.loads((out / "summary.json").read_text())["rows"]["zero_lc"]["pass@1"] is not None
