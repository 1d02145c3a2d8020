import torch

from r1lab.rewards import RewardFailures, build_rewards
from r1lab.tasks.arithmetic import ArithmeticTask
from r1lab.train.batch import build_batch, response_logprobs
from r1lab.train.grpo import GRPOConfig, grpo_step, maybe_reset_reference, setup_grpo, train_prompts

from conftest import make_model


def test_build_batch_layout():
    b = build_batch([[1, 2, 3], [4]], [[5, 6], [7, 8, 9]], pad_id=0, loss_mask=[[1.0, 0.0], [1.0, 1.0, 1.0]])
    assert b.input_ids.tolist() == [[1, 2, 3, 5, 6, 0], [0, 0, 4, 7, 8, 9]]
    assert b.attention.tolist() == [[1, 1, 1, 1, 1, 0], [0, 0, 1, 1, 1, 1]]
    assert b.positions[1, 2:].tolist() == [0, 1, 2, 3]
    assert b.response.tolist() == [[5, 6, 0], [7, 8, 9]]
    assert b.mask.tolist() == [[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]]


def test_response_logprobs_ignore_padding(tiny_tokenizer):
    model = make_model(tiny_tokenizer)
    p, r = [10, 11, 12], [13, 14]
    alone = build_batch([p], [r], pad_id=0)
    padded = build_batch([p, [20]], [r, [21, 22, 23, 24]], pad_id=0)
    with torch.no_grad():
        a, _ = response_logprobs(model, alone)
        b, _ = response_logprobs(model, padded)
    assert torch.allclose(a[0, :2], b[0, :2], atol=1e-5)


def _small_cfg(**kw):
    base = dict(prompts_per_step=4, group_size=4, max_new_tokens=24, steps=2, eval_every=0, lr=1e-3)
    base.update(kw)
    return GRPOConfig(**base)


def _run_step(tiny_tokenizer, cfg, seed=0, step=0):
    task = ArithmeticTask()
    model = make_model(tiny_tokenizer, seed=seed).train()
    ref, opt, engine, _ = setup_grpo(model, tiny_tokenizer, task, cfg, torch.device("cpu"))
    # a reward with spread inside groups even for a random model: longer responses score higher
    rewards = {"len": (lambda rs, es: [len(r) / 100.0 for r in rs], 1.0)}
    before = [p.detach().clone() for p in model.parameters()]
    m = grpo_step(model, ref, opt, engine, task, rewards, RewardFailures(), cfg, step, tiny_tokenizer)
    return model, before, m


def test_grpo_step_changes_parameters_and_loss_is_finite(tiny_tokenizer):
    cfg = _small_cfg()
    model, before, m = _run_step(tiny_tokenizer, cfg)
    changed = sum(not torch.equal(b, p.detach()) for b, p in zip(before, model.parameters()))
    assert changed > 0
    assert torch.isfinite(torch.tensor(m["loss"])) and m["updates"] == 1
    assert m["ratio_mean"] == 1.0  # on-policy: pi_old = pi for the single update
    for key in ("reward", "accuracy", "format_rate", "response_len_mean", "response_len_max", "truncated_frac",
                "zero_std_frac", "kl", "clip_frac", "entropy", "grad_norm", "sample_tokens_per_s",
                "train_tokens_per_s", "reflection_words", "reflection_rate", "reward/len"):
        assert key in m, key


def test_grpo_step_is_deterministic(tiny_tokenizer):
    cfg = _small_cfg(mu=2, minibatches=2)
    m1, _, a = _run_step(tiny_tokenizer, cfg)
    m2, _, b = _run_step(tiny_tokenizer, cfg)
    assert a["loss"] == b["loss"]
    assert all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters()))
    assert a["updates"] == 4


def test_equal_rewards_make_no_gradient_signal(tiny_tokenizer):
    cfg = _small_cfg(kl_coef=0.0)
    task = ArithmeticTask()
    model = make_model(tiny_tokenizer).train()
    ref, opt, engine, _ = setup_grpo(model, tiny_tokenizer, task, cfg, torch.device("cpu"))
    m = grpo_step(model, ref, opt, engine, task, {"const": (lambda rs, es: [1.0] * len(rs), 1.0)},
                  RewardFailures(), cfg, 0, tiny_tokenizer)
    assert m["zero_std_frac"] == 1.0 and m["grad_norm"] == 0.0
    dyn = _small_cfg(kl_coef=0.0, dynamic_sampling=True)
    m = grpo_step(model, ref, opt, engine, task, {"const": (lambda rs, es: [1.0] * len(rs), 1.0)},
                  RewardFailures(), dyn, 0, tiny_tokenizer)
    assert m["kept_rows"] == 0 and m["updates"] == 0


def test_reference_reset_schedule(tiny_tokenizer):
    cfg = _small_cfg(ref_reset_every=3)
    policy = make_model(tiny_tokenizer, seed=0)
    ref = make_model(tiny_tokenizer, seed=1)
    assert not maybe_reset_reference(ref, policy, cfg, 0)
    assert not maybe_reset_reference(ref, policy, cfg, 2)
    assert maybe_reset_reference(ref, policy, cfg, 3)
    assert all(torch.equal(a, b) for a, b in zip(ref.parameters(), policy.parameters()))


def test_train_prompts_are_a_function_of_step():
    cfg = _small_cfg()
    task = ArithmeticTask()
    assert [e.id for e in train_prompts(task, cfg, 5)] == [e.id for e in train_prompts(task, cfg, 5)]
    assert [e.id for e in train_prompts(task, cfg, 5)] != [e.id for e in train_prompts(task, cfg, 6)]
    assert all(e.meta["split"] == "train" for e in train_prompts(task, cfg, 0))


def test_build_rewards_default_set():
    rewards = build_rewards({"accuracy": 1.0, "format": 1.0}, ArithmeticTask())
    assert set(rewards) == {"accuracy", "format"}


def test_chat_template_and_instruction_reach_the_sampled_prompts(tiny_tokenizer, monkeypatch):
    import copy

    import pytest

    from r1lab.errors import UserError
    from r1lab.tasks.templates import render_example
    from r1lab.train import grpo as grpo_mod

    tok = copy.deepcopy(tiny_tokenizer)  # the session's tokenizer keeps having no chat template
    tok.chat_template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}<assistant>"
    ex = ArithmeticTask().examples("train", n=1, seed=0)[0]
    assert render_example("chat", ex, tok, "Answer in \\boxed{}.") == f"<user>{ex.prompt}\nAnswer in \\boxed{{}}.\n<assistant>"
    assert render_example("qa", ex, tok, "Be brief.") == f"Question: {ex.prompt}\nBe brief.\nAnswer:"
    assert render_example("qa", ex, tok) == f"Question: {ex.prompt}\nAnswer:"   # no instruction: as before
    with pytest.raises(UserError, match="no chat template"):
        render_example("chat", ex, tiny_tokenizer)
    # a GRPO step samples exactly those prompts
    seen = []
    real = grpo_mod.render_example
    monkeypatch.setattr(grpo_mod, "render_example", lambda *a: seen.append(real(*a)) or seen[-1])
    cfg = _small_cfg(template="chat", instruction="Answer in \\boxed{}.")
    _run_step(tok, cfg)
    assert seen and all(p.startswith("<user>") and p.endswith("Answer in \\boxed{}.\n<assistant>") for p in seen)


def test_unknown_template_is_a_config_error():
    import pytest

    from r1lab.errors import UserError

    with pytest.raises(UserError, match="template"):
        GRPOConfig(template="chatml").validate()
