"""A GRPO run killed with SIGKILL right after a checkpoint and resumed ends exactly as an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

SCRIPT = r"""
import sys
from r1lab.rewards.registry import REWARDS
from r1lab.train.grpo import GRPOConfig
from r1lab.train.grpo_run import run_grpo
# a reward with spread inside every group, so that every step changes the weights
REWARDS["len"] = lambda task, **kw: (lambda rs, es: [len(r) / 50.0 for r in rs])
cfg = GRPOConfig(steps=6, prompts_per_step=2, group_size=4, max_new_tokens=8, lr=1e-3, eval_every=3,
                 eval_examples=2, eval_samples=2, checkpoint_every=2, rewards={"len": 1.0, "format": 1.0},
                 mu=2, minibatches=2, micro_batch_size=2)
run_grpo(cfg, sys.argv[1], sys.argv[2])
"""

VOLATILE = ("_s", "per_s", "elapsed", "peak_rss")


def _run(model_dir, out, wait_for=None):
    p = subprocess.Popen([sys.executable, "-c", SCRIPT, str(model_dir), str(out)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if wait_for is None:
        err = p.communicate(timeout=300)[1]
        assert p.returncode == 0, err
        return err
    deadline = time.time() + 300
    while not (out / "checkpoints" / wait_for).is_dir():
        assert p.poll() is None, p.stderr.read()
        assert time.time() < deadline
        time.sleep(0.02)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()


def _rows(out):
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not any(t in k for t in VOLATILE)} for r in rows]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_model_dir):
    a = tmp_path_factory.mktemp("uninterrupted") / "a"
    _run(tiny_model_dir, a)
    return a


def _same_run(a, b):
    wa, wb = load_file(str(a / "model" / "model.safetensors")), load_file(str(b / "model" / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    ra, rb = _rows(a), _rows(b)
    assert [r["step"] for r in rb] == list(range(6))
    assert ra == rb


def test_sigkill_after_checkpoint_then_resume_is_exact(tmp_path, tiny_model_dir, uninterrupted):
    b = tmp_path / "b"
    _run(tiny_model_dir, b, wait_for="step_00000004")
    assert not (b / "model").exists()
    _run(tiny_model_dir, b)
    _same_run(uninterrupted, b)
    w0 = load_file(str(Path(tiny_model_dir) / "model.safetensors"))
    wa = load_file(str(uninterrupted / "model" / "model.safetensors"))
    assert any(not torch.equal(w0[k], wa[k]) for k in wa)  # the run did learn something


def test_damaged_newest_checkpoint_resumes_from_the_one_before_with_a_warning(tmp_path, tiny_model_dir, uninterrupted):
    b = tmp_path / "b"
    _run(tiny_model_dir, b, wait_for="step_00000004")
    newest = b / "checkpoints" / "step_00000004"
    assert (b / "checkpoints" / "step_00000002" / "state.pt").is_file()
    state = newest / "state.pt"
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])  # cut short, as by a full disk or bad copy
    with open(b / "metrics.jsonl", "a") as f:
        f.write('{"step": 4, "loss')  # and a metric line cut by the kill
    err = _run(tiny_model_dir, b)
    assert f"checkpoint {newest} is damaged" in err
    assert f"resuming from {b / 'checkpoints' / 'step_00000002'}, the newest good checkpoint" in err
    _same_run(uninterrupted, b)  # steps 2 and 3 redone: the same run as without the damage
