"""`r1lab zero` end to end at toy size: every stage runs, artifacts land, a rerun skips finished stages."""

import json
import subprocess
import sys

TOY = ["pretrain.steps=20", "pretrain.batch_size=4", "pretrain.seq_len=128", "pretrain.tokenizer_docs=500",
       "pretrain.size=0.25m", "zero.steps=2", "zero.prompts_per_step=2", "zero.group_size=2",
       "zero.max_new_tokens=16", "zero.eval_every=2", "zero.eval_examples=2", "zero.eval_samples=2",
       "eval.examples=3", "eval.samples=2", "eval.max_new_tokens=16", "zero.preflight=false"]


def test_zero_toy_run_and_skip_on_rerun(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "r1lab", "zero", "--out", str(out), *TOY]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    for part in ("base", "final"):
        for key in ("pass@1", "pass@2", "format_rate", "mean_response_tokens"):
            assert key in summary[part]
    import torch
    assert summary["calibration"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    for stage in ("base", "zero"):
        assert (out / stage / "DONE").is_file()
        assert (out / stage / "model" / "config.json").is_file()
        assert (out / stage / "config.yaml").is_file()
    rows = [json.loads(x) for x in (out / "zero" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1] and "eval/pass@1" in rows[1]
    assert (out / "zero_curves.png").stat().st_size > 1000
    stamp = (out / "zero" / "model" / "model.safetensors").stat().st_mtime_ns
    p2 = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p2.returncode == 0 and "skipping" in p2.stdout
    assert (out / "zero" / "model" / "model.safetensors").stat().st_mtime_ns == stamp
