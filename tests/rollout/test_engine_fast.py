"""The fast paths of the native engine: the sampler, the Llama-family decoder against the generic HF
decoder and a teacher-forced forward (GQA, biases, q/k norms), stop strings, buffer reuse, bf16."""

import functools

import pytest
import torch

from r1lab.rollout import NativeEngine, SamplingParams
from r1lab.models.llama import llama_like
from r1lab.rollout.engine import sample_next
from r1lab.runtime import autocast_ctx
from r1lab.train.batch import build_batch, response_logprobs

from conftest import family_models, make_model

PROMPTS = ["Compute (47+38)*3", "Question: Compute 5+7\nAnswer:", "hi", "User: what is 12*12? Assistant:"]


def _frequencies(tokens: torch.Tensor, vocab: int) -> torch.Tensor:
    return torch.bincount(tokens, minlength=vocab).float() / tokens.numel()


def test_sampler_matches_the_tempered_distribution_and_its_logprobs():
    torch.manual_seed(0)
    logits = torch.randn(12) * 2
    rows = logits.expand(40000, -1)
    gen = torch.Generator().manual_seed(0)
    tok, lp = sample_next(rows, 0.7, 1.0, gen)
    expected = torch.softmax(logits / 0.7, -1)
    assert (_frequencies(tok, 12) - expected).abs().max() < 0.01
    assert torch.allclose(lp, torch.log_softmax(logits / 0.7, -1)[tok], atol=1e-5)


@pytest.mark.parametrize("top_p", [0.3, 0.8, 0.95])
def test_top_p_samples_the_renormalised_nucleus(top_p):
    torch.manual_seed(1)
    logits = torch.randn(10) * 1.5
    probs = torch.softmax(logits, -1)
    sorted_p, idx = probs.sort(descending=True)
    keep = (sorted_p.cumsum(-1) - sorted_p) < top_p  # the smallest prefix whose mass reaches top_p
    nucleus = torch.zeros_like(probs)
    nucleus[idx[keep]] = probs[idx[keep]]
    nucleus /= nucleus.sum()
    tok, lp = sample_next(logits.expand(40000, -1), 1.0, top_p, torch.Generator().manual_seed(2))
    assert (_frequencies(tok, 10) - nucleus).abs().max() < 0.01
    assert set(tok.unique().tolist()) <= set(idx[keep].tolist())
    # logprobs stay those of the full (untruncated) distribution
    assert torch.allclose(lp, torch.log_softmax(logits, -1)[tok], atol=1e-5)


def test_sampler_never_picks_a_zero_probability_token():
    logits = torch.full((2000, 50), float("-inf"))
    logits[:, 7] = 0.0
    logits[:, 42] = 0.5
    tok, _ = sample_next(logits, 1.0, 1.0, torch.Generator().manual_seed(0))
    assert set(tok.unique().tolist()) <= {7, 42}


@pytest.mark.parametrize("layout", ["row_cache", "row_cache_grid_for_many_rows", "shared_prompt_grid"])
@pytest.mark.parametrize("name", ["llama", "llama_gqa", "qwen2", "qwen3"])
def test_fast_decoder_logprobs_match_a_teacher_forced_forward(tiny_tokenizer, name, layout, monkeypatch):
    import r1lab.rollout.engine as E

    if layout == "shared_prompt_grid":  # the layout large caches use: prompt keys shared by the group on a grid
        monkeypatch.setattr(E, "ROW_CACHE_BYTES", 0)
    # row caches attend over the prompts on the grid while many rows are live (48; here any number: before
    # and after rows finish), else per row
    monkeypatch.setattr(E, "GRID_MIN_ROWS", 1 if layout == "row_cache_grid_for_many_rows" else 10**9)
    model = family_models(tiny_tokenizer)[name]
    eng = NativeEngine(model, tiny_tokenizer, max_batch=6)  # 2 prompts per chunk: chunking and compaction
    assert eng.fast and llama_like(model)
    rolls = eng.generate(PROMPTS, 3, SamplingParams(temperature=0.9, max_new_tokens=20, seed=4))
    assert [r.prompt_index for r in rolls] == [i for i in range(len(PROMPTS)) for _ in range(3)]
    batch = build_batch([r.prompt_ids for r in rolls], [r.token_ids for r in rolls], eng.pad_id)
    with torch.no_grad():
        lp, _ = response_logprobs(model, batch, temperature=0.9)
    for i, r in enumerate(rolls):
        assert torch.allclose(lp[i, : len(r.token_ids)], torch.tensor(r.logprobs), atol=2e-4), (name, i)


def test_fast_and_generic_decoders_sample_the_same_tokens(tiny_tokenizer):
    model = make_model(tiny_tokenizer, seed=1)
    fast = NativeEngine(model, tiny_tokenizer)
    slow = NativeEngine(model, tiny_tokenizer)
    slow.fast = False  # the HF forward + DynamicCache decoder
    sp = SamplingParams(temperature=1.0, max_new_tokens=24, seed=11)
    a, b = fast.generate(PROMPTS, 4, sp), slow.generate(PROMPTS, 4, sp)
    assert [r.token_ids for r in a] == [r.token_ids for r in b]
    assert [r.finish_reason for r in a] == [r.finish_reason for r in b]
    for x, y in zip(a, b):
        assert torch.allclose(torch.tensor(x.logprobs), torch.tensor(y.logprobs), atol=1e-4)


def test_buffer_reuse_across_calls_of_different_shapes(tiny_tokenizer):
    model = make_model(tiny_tokenizer, seed=2)
    sp_long = SamplingParams(temperature=1.0, max_new_tokens=30, seed=5)
    sp_short = SamplingParams(temperature=1.0, max_new_tokens=6, seed=6)
    reused = NativeEngine(model, tiny_tokenizer)
    first = reused.generate(PROMPTS, 4, sp_long)
    reused.generate(PROMPTS[:1], 2, sp_short)
    again = reused.generate(PROMPTS, 4, sp_long)
    fresh = NativeEngine(model, tiny_tokenizer).generate(PROMPTS, 4, sp_long)
    assert [r.token_ids for r in first] == [r.token_ids for r in again] == [r.token_ids for r in fresh]


@pytest.mark.parametrize("stop", [("e",), ("12", "ab"), (" ",)])
def test_stop_strings_end_rows_exactly_when_their_text_first_contains_one(tiny_tokenizer, stop):
    eng = NativeEngine(make_model(tiny_tokenizer), tiny_tokenizer)
    rolls = eng.generate(PROMPTS, 4, SamplingParams(temperature=1.0, max_new_tokens=25, seed=0, stop=stop))
    decode = functools.partial(tiny_tokenizer.decode, skip_special_tokens=True)
    for r in rolls:
        body = r.token_ids[:-1] if r.finish_reason == "eos" else r.token_ids
        if r.finish_reason == "stop":
            assert any(s in r.text for s in stop)
            assert not any(s in decode(r.token_ids[:-1]) for s in stop)
        else:  # no stop string was missed
            assert not any(s in decode(body) for s in stop), r


def test_bf16_autocast_runs_and_stays_close(tiny_tokenizer):
    model = make_model(tiny_tokenizer)
    bf16 = functools.partial(autocast_ctx, torch.device("cpu"), "bf16")
    eng = NativeEngine(model, tiny_tokenizer, autocast=bf16)
    rolls = eng.generate(PROMPTS, 2, SamplingParams(temperature=1.0, max_new_tokens=12, seed=0))
    batch = build_batch([r.prompt_ids for r in rolls], [r.token_ids for r in rolls], eng.pad_id)
    with torch.no_grad():
        lp, _ = response_logprobs(model, batch)
    for i, r in enumerate(rolls):
        assert torch.allclose(lp[i, : len(r.token_ids)], torch.tensor(r.logprobs), atol=0.1)
