"""LoRA through PEFT: the native sampler and the grouped training forward compute the adapted model; the
reference is the base; the saved model/ and model_adapter/ load back to the same function."""

import copy

import pytest
import torch

pytest.importorskip("peft")

from peft import PeftModel  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

from r1lab.errors import UserError  # noqa: E402
from r1lab.models.llama import grouped_ok  # noqa: E402
from r1lab.models.lora import (AdapterOff, LoraSettings, attach_lora, linear_weight, peft_model_of,  # noqa: E402
                               reference_view, save_trained_model)
from r1lab.rollout import NativeEngine, SamplingParams  # noqa: E402
from r1lab.runtime.fsdp import model_state  # noqa: E402
from r1lab.train.batch import build_batch, response_logprobs  # noqa: E402

from conftest import make_model  # noqa: E402


def _lora_model(tok, r=4, dropout=0.0, seed=0):
    """A tiny Llama with a LoRA adapter whose B is random (PEFT starts it at 0: the adapter would be a no-op)."""
    base = make_model(tok, seed=seed)
    model = attach_lora(copy.deepcopy(base), LoraSettings(r=r, dropout=dropout))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return base, model.eval()


def _peft_logprobs(peft_model, batch):
    """Response-token log-probabilities from PEFT's own forward (the padded HF path, no r1lab fast path)."""
    out = peft_model(input_ids=batch.input_ids, attention_mask=batch.attention, position_ids=batch.positions)
    R = batch.response.shape[1]
    logits = out.logits[:, -R - 1 : -1].float()
    return torch.log_softmax(logits, -1).gather(-1, batch.response.unsqueeze(-1)).squeeze(-1)


def _sample(model, tok, n=3):
    engine = NativeEngine(model, tok)
    assert engine.fast  # the Llama decoder with fused weights, not the HF fallback
    prompts = ["Q: 3 + 4 * 2 = ?", "Q: 12 - 5 = ?"]
    rs = engine.generate(prompts, n, SamplingParams(max_new_tokens=12, seed=0))
    batch = build_batch([r.prompt_ids for r in rs], [r.token_ids for r in rs], engine.pad_id)
    lp = torch.zeros(batch.mask.shape)
    for i, r in enumerate(rs):
        lp[i, : len(r.logprobs)] = torch.tensor(r.logprobs)
    return batch, lp


def test_linear_weight_is_the_lora_layers_function():
    tok_model = torch.nn.Sequential(torch.nn.Linear(6, 5))
    from peft import LoraConfig, get_peft_model

    pm = get_peft_model(tok_model, LoraConfig(r=2, lora_alpha=6, target_modules=["0"], init_lora_weights=False))
    layer = pm.base_model.model[0]
    x = torch.randn(3, 6)
    w = linear_weight(layer)
    assert torch.allclose(torch.nn.functional.linear(x, w, layer.get_base_layer().bias), layer(x), atol=1e-6)
    assert not torch.allclose(w, layer.get_base_layer().weight)
    w.sum().backward()  # gradients reach the adapter through the effective weight
    assert layer.lora_A["default"].weight.grad is not None and layer.lora_B["default"].weight.grad is not None


def test_native_sampler_logprobs_equal_the_peft_forward(tiny_tokenizer):
    base, model = _lora_model(tiny_tokenizer)
    batch, sampled = _sample(model, tiny_tokenizer)
    with torch.no_grad():
        want = _peft_logprobs(peft_model_of(model), batch)
        grouped, _ = response_logprobs(model, batch)  # the training forward's fast path
        plain = _peft_logprobs(base, batch)
    m = batch.mask > 0
    assert torch.allclose(sampled[m], want[m], atol=1e-4)
    assert torch.allclose(grouped[m], want[m], atol=1e-4)
    assert (plain[m] - want[m]).abs().max() > 1e-2  # the adapter does change the policy


def test_reference_is_the_base_model_with_the_adapter_off(tiny_tokenizer):
    base, model = _lora_model(tiny_tokenizer)
    batch, _ = _sample(model, tiny_tokenizer)
    with torch.no_grad():
        with reference_view(AdapterOff(model)) as ref:
            off, _ = response_logprobs(ref, batch)
        on, _ = response_logprobs(model, batch)
        want, _ = response_logprobs(base, batch)
    m = batch.mask > 0
    assert torch.allclose(off[m], want[m], atol=1e-5)
    assert not torch.allclose(on[m], want[m], atol=1e-3)  # the adapter is back on after the block
    assert all(p.requires_grad for n, p in model.named_parameters() if "lora_" in n)


def test_grouped_gradients_equal_the_peft_forward_gradients(tiny_tokenizer):
    _, model = _lora_model(tiny_tokenizer)
    batch, _ = _sample(model, tiny_tokenizer)
    model.train()
    assert grouped_ok(model)
    adapter = [p for n, p in model.named_parameters() if "lora_" in n]
    lp, _ = response_logprobs(model, batch)
    g_fast = torch.autograd.grad((lp * batch.mask).sum(), adapter)
    ref = _peft_logprobs(peft_model_of(model), batch)
    g_peft = torch.autograd.grad((ref * batch.mask).sum(), adapter)
    assert all(torch.allclose(a, b, atol=1e-4, rtol=1e-3) for a, b in zip(g_fast, g_peft))
    assert all(not p.requires_grad for n, p in model.named_parameters() if "lora_" not in n)  # base frozen


def test_lora_dropout_leaves_the_grouped_forward_while_training(tiny_tokenizer):
    _, model = _lora_model(tiny_tokenizer, dropout=0.1)
    assert grouped_ok(model.eval())
    assert not grouped_ok(model.train())


def test_checkpoint_state_is_the_adapter_only(tiny_tokenizer):
    _, model = _lora_model(tiny_tokenizer, r=2)
    state = model_state(model)
    assert state and all(".lora_" in k for k in state)
    # layers x 7 projections x (A, B): the trainable parameters, nothing of the frozen base
    layers = model.config.num_hidden_layers
    assert len(state) == layers * 7 * 2 == len([n for n, p in model.named_parameters() if p.requires_grad])


def test_saved_merged_model_and_adapter_load_back(tmp_path, tiny_tokenizer):
    base, model = _lora_model(tiny_tokenizer)
    batch, _ = _sample(model, tiny_tokenizer)
    with torch.no_grad():
        want = _peft_logprobs(peft_model_of(model), batch)
    save_trained_model(model, tiny_tokenizer, tmp_path / "model")
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "model").eval()
    assert not any("lora" in k for k in merged.state_dict())
    base_dir = tmp_path / "base"
    base.save_pretrained(base_dir)
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), tmp_path / "model_adapter").eval()
    m = batch.mask > 0
    with torch.no_grad():
        assert torch.allclose(_peft_logprobs(merged, batch)[m], want[m], atol=1e-4)
        assert torch.allclose(_peft_logprobs(adapted, batch)[m], want[m], atol=1e-5)
    assert (tmp_path / "model_adapter" / "tokenizer.json").is_file()


def test_targets_the_model_lacks_are_a_user_error(tiny_tokenizer):
    with pytest.raises(UserError, match="config key 'lora.target_modules'.*PEFT cannot adapt LlamaForCausalLM"):
        attach_lora(make_model(tiny_tokenizer), LoraSettings(r=2, target_modules=["query_key_value"]))


def test_r_zero_is_no_lora(tiny_tokenizer):
    m = make_model(tiny_tokenizer)
    assert attach_lora(m, LoraSettings()) is m and all(p.requires_grad for p in m.parameters())
