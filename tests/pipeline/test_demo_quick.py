"""`r1lab demo --quick`: every stage end to end, interrupted mid-stage with SIGINT and resumed."""

import json
import os
import subprocess
import sys

from conftest import run_until_then_interrupt


def test_demo_quick_interrupt_and_resume(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "r1lab", "demo", "--quick", "--out", str(out)]
    env = dict(os.environ, PYTHONWARNINGS="ignore", R1LAB_THREADS="2")  # two threads: the second lane runs
    code, out1, err = run_until_then_interrupt(cmd, env, out / "reasoning_rl" / "checkpoints" / "step_00000001")
    assert code == 130, err[-3000:]
    # the ablation and the RL-only control ran in the second process, with their evaluations, before the
    # reasoning RL started (pipeline/lanes.py)
    assert "[lanes] zero_lc, rl_only_0.5m and their evaluations run in a second process (1 of the 2 threads)" in out1
    for s in ("zero_lc", "rl_only_0.5m"):
        assert (out / s / "DONE").exists() and (out / s / "eval_hard.json").exists()
    assert "[rl_only_0.5m] running" in (out / "side_lane.log").read_text() and "[rl_only_0.5m] running" not in out1
    assert "Traceback" not in err and "rerun the same command" in err.lower()
    # the signal lands inside reasoning_rl or, when its last step was already running, right after it
    # finished: either way the pipeline stops there and a rerun carries on from that point
    finished = {s: (out / s / "DONE").stat().st_mtime_ns
                for s in ("base", "zero", "cold_start", "reasoning_rl") if (out / s / "DONE").exists()}
    assert {"base", "zero", "cold_start"} <= set(finished)
    assert not (out / "rejection_sft" / "DONE").exists()

    p2 = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert p2.returncode == 0, p2.stderr[-3000:]
    for s, stamp in finished.items():  # completed stages are skipped, their artifacts untouched
        assert (out / s / "DONE").stat().st_mtime_ns == stamp
        assert f"[{s}] done, skipping" in p2.stdout
    steps = [json.loads(x)["step"] for x in (out / "reasoning_rl" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1]  # resumed (or skipped), never restarted or duplicated
    if "reasoning_rl" not in finished:
        assert "resuming from" in p2.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["rows"]) == {"base", "zero", "zero_lc", "cold_start", "reasoning_rl", "rejection_sft",
                                    "r1", "student_0.5m", "student_0.25m", "rl_only_0.5m"}
    assert {"with_reward", "without_reward"} <= set(summary["findings"]["language_reward_raises_consistency"])
    for row in summary["rows"].values():
        for key in ("pass@1", "cons@2", "mean_response_tokens", "language_consistency", "format_rate"):
            assert key in row
    from r1lab.pipeline.findings import NAMES
    assert set(summary["findings"]) == set(NAMES)  # every named finding is judged, held or not
    for verdict in summary["findings"].values():
        assert isinstance(verdict["holds"], bool)
    assert 0.0 <= summary["reward_model"]["heldout_accuracy"] <= 1.0
    assert "| R1 |" in (out / "report.md").read_text() and (out / "curves.png").stat().st_size > 1000
    # the machine the times were measured on, printed first and stored; the whole run's time left per stage
    import torch
    assert p2.stdout.splitlines()[0].startswith(f"machine: {torch.backends.cpu.get_cpu_capability()}, ")
    assert summary["calibration"]["matmul_gflops"] > 0 and summary["run_wall_seconds"] > 0
    assert "(whole run: about" in p2.stdout and "Measured on" in (out / "report.md").read_text()
    assert set(summary["stage_wall_seconds"]) >= {"rejection_sft", "reward_model", "r1"}
    # general prompts are sampled with their own (short) budget, reasoning problems with the reasoning one
    from r1lab.pipeline.quick import QUICK
    general = json.loads((out / "r1" / "eval_general.json").read_text())["settings"]["max_new_tokens"]
    reasoning = json.loads((out / "r1" / "eval.json").read_text())["settings"]["max_new_tokens"]
    assert (general, reasoning) == (QUICK["eval"]["general_max_new_tokens"], QUICK["eval"]["max_new_tokens"])
    for stage in ("cold_start", "rejection_sft", "distill_traces"):
        assert (out / stage / "data.jsonl").stat().st_size > 0
