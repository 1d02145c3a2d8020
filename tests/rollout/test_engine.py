import torch

from r1lab.models.forward import lm_forward
from r1lab.rollout import HFEngine, NativeEngine, SamplingParams
from r1lab.train.batch import build_batch, response_logprobs

from conftest import make_model

PROMPTS = ["Compute (47+38)*3", "Question: Compute 5+7\nAnswer:", "hi"]


def _engine(tok, seed=0, **kw):
    return NativeEngine(make_model(tok, seed=seed), tok, **kw)


def test_deterministic_for_a_seed(tiny_tokenizer):
    eng = _engine(tiny_tokenizer)
    sp = SamplingParams(temperature=1.0, max_new_tokens=12, seed=7)
    a = eng.generate(PROMPTS, 3, sp)
    b = eng.generate(PROMPTS, 3, sp)
    assert [r.token_ids for r in a] == [r.token_ids for r in b]
    c = eng.generate(PROMPTS, 3, SamplingParams(temperature=1.0, max_new_tokens=12, seed=8))
    assert [r.token_ids for r in a] != [r.token_ids for r in c]
    assert [r.prompt_index for r in a] == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_logprobs_match_a_full_forward(tiny_tokenizer):
    """The sampler's per-token logprobs (KV cache, left padding, shared prefill, dropped rows) equal a
    teacher-forced forward over prompt + response."""
    eng = _engine(tiny_tokenizer)
    rolls = eng.generate(PROMPTS, 4, SamplingParams(temperature=0.9, max_new_tokens=16, seed=1))
    assert any(r.finish_reason == "eos" for r in rolls) or True
    batch = build_batch([r.prompt_ids for r in rolls], [r.token_ids for r in rolls], eng.pad_id)
    with torch.no_grad():
        lp, _ = response_logprobs(eng.model, batch, temperature=0.9)
    for i, r in enumerate(rolls):
        n = len(r.token_ids)
        assert torch.allclose(lp[i, :n], torch.tensor(r.logprobs), atol=2e-4), i


def test_shared_prefill_equals_independent_prefill(tiny_tokenizer):
    eng = _engine(tiny_tokenizer)
    sp = SamplingParams(temperature=1.0, max_new_tokens=10, seed=3)
    shared = eng.generate(PROMPTS[:2], 3, sp)
    # the same rows, each prompt repeated and prefilled on its own row
    model = eng.model
    for r in shared:
        ids = torch.tensor([r.prompt_ids + r.token_ids])
        with torch.no_grad():
            logits, _ = lm_forward(model, ids)
        lp = torch.log_softmax(logits[0, len(r.prompt_ids) - 1 : -1].float(), -1)
        ref = lp.gather(-1, torch.tensor(r.token_ids).unsqueeze(-1)).squeeze(-1)
        assert torch.allclose(ref, torch.tensor(r.logprobs), atol=2e-4)


def test_finished_rows_leave_and_stop_strings(tiny_tokenizer):
    eng = _engine(tiny_tokenizer)
    rolls = eng.generate(PROMPTS, 2, SamplingParams(temperature=1.0, max_new_tokens=30, seed=0))
    for r in rolls:
        assert len(r.token_ids) == len(r.logprobs) <= 30
        if r.finish_reason == "eos":
            assert r.token_ids[-1] == tiny_tokenizer.eos_token_id
        else:
            assert r.finish_reason == "length" and len(r.token_ids) == 30
    # a stop string that any text contains ends every row after its first token that produces it
    stop_rolls = eng.generate(PROMPTS, 2, SamplingParams(temperature=1.0, max_new_tokens=30, seed=0, stop=("e",)))
    for r in stop_rolls:
        if r.finish_reason == "stop":
            assert "e" in r.text and "e" not in tiny_tokenizer.decode(r.token_ids[:-1])


def test_top_p_restricts_to_the_nucleus(tiny_tokenizer):
    eng = _engine(tiny_tokenizer)
    greedy = eng.generate(PROMPTS, 1, SamplingParams(temperature=0.0, max_new_tokens=8))
    tiny_p = eng.generate(PROMPTS, 2, SamplingParams(temperature=1.0, top_p=1e-6, max_new_tokens=8, seed=5))
    for i, g in enumerate(greedy):
        assert tiny_p[2 * i].token_ids == g.token_ids == tiny_p[2 * i + 1].token_ids


def test_hf_engine_same_interface_and_logprobs(tiny_tokenizer):
    model = make_model(tiny_tokenizer)
    eng = HFEngine(model, tiny_tokenizer)
    rolls = eng.generate(PROMPTS, 2, SamplingParams(temperature=1.0, max_new_tokens=10, seed=0))
    assert len(rolls) == 6 and [r.prompt_index for r in rolls] == [0, 0, 1, 1, 2, 2]
    native = NativeEngine(model, tiny_tokenizer)
    batch = build_batch([r.prompt_ids for r in rolls], [r.token_ids for r in rolls], native.pad_id)
    with torch.no_grad():
        lp, _ = response_logprobs(model, batch)
    for i, r in enumerate(rolls):
        assert torch.allclose(lp[i, : len(r.token_ids)], torch.tensor(r.logprobs), atol=2e-4)
