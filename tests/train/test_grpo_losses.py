"""The GRPO-family loss options from the GRPO config: bad values, the automatic sampler correction, one step each."""

import os
import subprocess
import sys

import pytest
import torch

from r1lab.config import load_config
from r1lab.errors import UserError
from r1lab.pipeline.zero import ZeroRecipe
from r1lab.rewards import RewardFailures
from r1lab.rollout.engine import Rollout
from r1lab.tasks.arithmetic import ArithmeticTask
from r1lab.train.grpo import GRPOConfig, behaviour_logprobs, grpo_step, is_correction_on, setup_grpo

from conftest import make_model


@pytest.mark.parametrize("override,match", [
    ("zero.ratio_level=seq", r"config key 'ratio_level': unknown ratio_level 'seq'; valid: token, sequence"),
    ("zero.objective=gspo", r"config key 'objective': unknown objective 'gspo'; valid: clip, cispo"),
    ("zero.is_level=row", r"config key 'is_level': unknown is_level 'row'; valid: token, sequence"),
    ("zero.dual_clip=1.0", r"config key 'dual_clip': dual_clip must be > 1"),
    ("zero.is_cap=0", r"config key 'is_cap': is_cap must be > 0"),
    ("zero.sample_precision=fp16", r"config key 'sample_precision' must be fp32, bf16, auto or null"),
])
def test_bad_loss_options_name_the_key(override, match):
    with pytest.raises(UserError, match=match):
        load_config(ZeroRecipe, None, [override])


def test_dual_clip_with_cispo_is_refused():
    with pytest.raises(UserError, match="'dual_clip' bounds the clipped objective"):
        load_config(ZeroRecipe, None, ["zero.objective=cispo", "zero.dual_clip=3"])


def test_bad_loss_option_is_one_error_line_and_exit_2(tmp_path):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    p = subprocess.run([sys.executable, "-m", "r1lab", "zero", "--out", str(tmp_path / "run"), "zero.objective=ppo"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    err = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "'objective'" in err[0] and "clip, cispo" in err[0], p.stderr


def test_correction_is_automatic_exactly_when_precisions_differ():
    cpu = torch.device("cpu")
    assert not is_correction_on(GRPOConfig(), cpu)
    assert not is_correction_on(GRPOConfig(precision="bf16"), cpu)
    assert is_correction_on(GRPOConfig(sample_precision="bf16"), cpu)
    assert not is_correction_on(GRPOConfig(sample_precision="fp32"), cpu)
    assert not is_correction_on(GRPOConfig(sample_precision="bf16", is_correction=False), cpu)
    assert is_correction_on(GRPOConfig(is_correction=True), cpu)


def test_behaviour_logprobs_are_padded_with_zeros():
    rs = [Rollout(prompt_index=0, prompt_ids=[1], token_ids=[5, 6], logprobs=[-0.5, -1.5], finish_reason="eos", text=""),
          Rollout(prompt_index=0, prompt_ids=[1], token_ids=[], logprobs=[], finish_reason="eos", text="")]
    assert torch.equal(behaviour_logprobs(rs, 3), torch.tensor([[-0.5, -1.5, 0.0], [0.0, 0.0, 0.0]]))


def _step(tiny_tokenizer, **kw):
    cfg = GRPOConfig(**dict(dict(prompts_per_step=4, group_size=4, max_new_tokens=16, steps=2, eval_every=0, lr=1e-3), **kw))
    cfg.validate()
    model = make_model(tiny_tokenizer).train()
    ref, opt, engine, _ = setup_grpo(model, tiny_tokenizer, ArithmeticTask(), cfg, torch.device("cpu"))
    rewards = {"len": (lambda rs, es: [len(r) / 100.0 for r in rs], 1.0)}
    before = [p.detach().clone() for p in model.parameters()]
    m = grpo_step(model, ref, opt, engine, ArithmeticTask(), rewards, RewardFailures(), cfg, 0, tiny_tokenizer)
    changed = sum(not torch.equal(b, p.detach()) for b, p in zip(before, model.parameters()))
    return m, changed


def test_bf16_sampling_turns_on_the_correction_and_logs_it(tiny_tokenizer):
    m, changed = _step(tiny_tokenizer, sample_precision="bf16")
    assert changed > 0 and torch.isfinite(torch.tensor(m["loss"]))
    # bf16 sampling differs from the fp32 trainer a little: weights near 1, not all exactly 1
    assert 0.9 < m["is_weight_mean"] < 1.1 and m["is_weight_mean"] != 1.0
    assert 0.0 <= m["is_capped_frac"] <= 1.0
    plain, _ = _step(tiny_tokenizer)
    assert "is_weight_mean" not in plain


def test_same_precision_correction_weights_are_one(tiny_tokenizer):
    m, _ = _step(tiny_tokenizer, is_correction=True)
    assert m["is_weight_mean"] == pytest.approx(1.0, abs=1e-3) and m["is_capped_frac"] == 0.0


@pytest.mark.parametrize("kw", [dict(ratio_level="sequence", clip_eps=0.003), dict(objective="cispo"),
                                dict(dual_clip=3.0)])
def test_each_variant_trains_off_policy(tiny_tokenizer, kw):
    m, changed = _step(tiny_tokenizer, mu=2, minibatches=2, **kw)
    assert changed > 0 and m["updates"] == 4 and torch.isfinite(torch.tensor(m["loss"]))
    assert m["ratio_mean"] != 1.0  # later minibatches are off-policy
    if "dual_clip" in kw:
        assert "clip_frac_dual" in m
