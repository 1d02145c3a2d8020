"""LoRA in whole runs: GRPO killed after a checkpoint resumes exactly, checkpoints hold the adapter and its
optimizer state, the outputs load; SFT with LoRA; the lora.* config checks."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

pytest.importorskip("peft")

from r1lab.config import load_config  # noqa: E402
from r1lab.errors import UserError  # noqa: E402
from r1lab.pipeline.zero import ZeroRecipe  # noqa: E402
from r1lab.train.sft import SFTConfig, sft  # noqa: E402

from conftest import make_model  # noqa: E402

SCRIPT = r"""
import sys
from r1lab.models.lora import LoraSettings
from r1lab.rewards.registry import REWARDS
from r1lab.train.grpo import GRPOConfig
from r1lab.train.grpo_run import run_grpo
REWARDS["len"] = lambda task, **kw: (lambda rs, es: [len(r) / 50.0 for r in rs])
cfg = GRPOConfig(steps=4, prompts_per_step=2, group_size=4, max_new_tokens=8, lr=1e-3, eval_every=0,
                 checkpoint_every=2, rewards={"len": 1.0}, mu=2, minibatches=2, micro_batch_size=2, kl_coef=0.05,
                 lora=LoraSettings(r=4, lr=2e-2))
run_grpo(cfg, sys.argv[1], sys.argv[2])
"""


def test_lora_grpo_killed_after_a_checkpoint_resumes_exactly(tmp_path, tiny_model_dir, monkeypatch):
    import test_resume  # its kill-and-resume harness, running this file's LoRA script

    monkeypatch.setattr(test_resume, "SCRIPT", SCRIPT)
    _run, _rows = test_resume._run, test_resume._rows
    a, b = tmp_path / "a", tmp_path / "b"
    _run(tiny_model_dir, a)
    _run(tiny_model_dir, b, wait_for="step_00000002")
    state = torch.load(b / "checkpoints" / "step_00000002" / "state.pt", weights_only=False)
    assert state["model"] and all(".lora_" in k for k in state["model"])  # the adapter, not the base
    assert "ref_model" not in state  # the reference is the base model with the adapter off
    n_adapter = len(state["model"])
    assert len(state["optimizer"]["state"]) == n_adapter  # Adam moments of the adapter's tensors only
    _run(tiny_model_dir, b)
    for name in ("model/model.safetensors", "model_adapter/adapter_model.safetensors"):
        wa, wb = load_file(str(a / name)), load_file(str(b / name))
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), name
    ra, rb = _rows(a), _rows(b)
    assert [r["step"] for r in rb] == list(range(4)) and ra == rb
    assert ra[-1]["kl"] > 0  # the policy moved away from the base reference
    # the merged model differs from the base: the adapter learnt something and was folded in
    w0, wa = load_file(str(tiny_model_dir / "model.safetensors")), load_file(str(a / "model" / "model.safetensors"))
    assert w0.keys() == wa.keys() and any(not torch.equal(w0[k], wa[k]) for k in wa)
    assert json.loads((a / "model_adapter" / "adapter_config.json").read_text())["r"] == 4


def test_sft_with_lora_trains_the_adapter_and_saves_both(tmp_path, tiny_tokenizer):
    from r1lab.train.batch import build_batch, response_logprobs
    from r1lab.train.sft import encode_pairs

    model = make_model(tiny_tokenizer)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    pairs = [{"prompt": f"Question: Say hello to {n}.\nAnswer:", "response": f"Hello, {n}!"} for n in ("Ana", "Bo")] * 8
    (p, r), = encode_pairs(tiny_tokenizer, pairs[:1], 256)[0]
    before, _ = response_logprobs(model, build_batch([p], [r], 0))
    cfg = load_config(SFTConfig, None, ["epochs=3", "batch_size=8", "lr=1e-9", "lora.r=8", "lora.lr=2e-2",
                                        "warmup=1", "precision=fp32"])
    sft(cfg, model, tiny_tokenizer, pairs, tmp_path)
    after, _ = response_logprobs(model, build_batch([p], [r], 0))
    # learnt at lora.lr (lr=1e-9 alone would not move it), and the caller's model holds the merged result
    assert float(after.detach().mean()) > float(before.detach().mean()) + 0.5
    assert set(model.state_dict()) == set(base)
    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert (tmp_path / "model_adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("overrides,match", [
    (["zero.lora.r=-1"], r"'lora.r' must be >= 0"),
    (["zero.lora.r=8", "zero.lora.alpha=0"], r"'lora.alpha' must be positive"),
    (["zero.lora.dropout=1.5"], r"'lora.dropout' must be in \[0, 1\)"),
    (["zero.lora.target_modules=[]"], r"'lora.target_modules' must name at least one"),
    (["zero.lora.rank=8"], r"unknown config key 'zero.lora.rank'"),
    (["zero.lora.r=8", "zero.parallel=fsdp"], r"'lora.r' LoRA runs with parallel=ddp"),
    (["zero.lora.r=8", "zero.steps=500", "zero.ref_reset_every=400"], r"'ref_reset_every' \(400\) must be 0 or >= steps"),
])
def test_bad_lora_settings_name_the_key(overrides, match):
    with pytest.raises(UserError, match=match):
        load_config(ZeroRecipe, None, overrides)


def test_lora_on_a_model_without_the_targets_is_exit_2(tmp_path, tiny_model_dir):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    p = subprocess.run([sys.executable, "-m", "r1lab", "grpo", "--model", str(tiny_model_dir), "--out", str(tmp_path / "g"),
                        "lora.r=4", "lora.target_modules=[c_attn]", "steps=1"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    err = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "lora.target_modules" in err[0], p.stderr
