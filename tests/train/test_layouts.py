"""The three training layouts compute the same log-probabilities and gradients: padded (the model's own
forward), packed (block mask) and grouped (projections on real tokens, attention on a grid)."""

import pytest
import torch

from r1lab.models.llama import grouped_layout
from r1lab.train.batch import build_batch, grouped_response_logprobs, packed_response_logprobs, response_logprobs

from conftest import family_models


def _batch():
    """Groups of 3, 1 and 2 rows with prompts of different lengths; one empty response; then a prompt that
    reappears after a different one (a new group, not merged with the first)."""
    g = torch.Generator().manual_seed(0)
    rnd = lambda n: torch.randint(3, 200, (n,), generator=g).tolist()  # noqa: E731
    pa, pb, pc = rnd(6), rnd(9), rnd(3)
    prompts = [pa, pa, pa, pb, pc, pc, pa]
    resps = [rnd(5), rnd(1), rnd(7), rnd(4), [], rnd(6), rnd(3)]
    mask = [[1.0] * len(r) for r in resps]
    return build_batch(prompts, resps, 0, mask)


def _padded(model, batch, temperature):
    import r1lab.train.batch as B  # the padded path: the one DDP-wrapped models take

    orig = B.supports_packing
    B.supports_packing = lambda m: False
    try:
        return response_logprobs(model, batch, temperature)[0]
    finally:
        B.supports_packing = orig


def test_grouped_layout_groups_consecutive_equal_prompts():
    batch = _batch()
    lay = grouped_layout(batch.input_ids, batch.attention, batch.response)
    assert lay.prompt_idx.shape == (4, 9)           # groups pa x3, pb, pc x2, pa again; widest prompt 9
    # the 6 non-empty responses by length (1, 3, 4, 5, 6, 7) in 4 buckets, each padded to its longest
    # (keys: the row's prompt, 9 wide, then its own tokens)
    assert [tuple(b.idx.shape) for b in lay.buckets] == [(2, 9 + 3), (2, 9 + 5), (1, 9 + 6), (1, 9 + 7)]
    assert [b.width for b in lay.buckets] == [3, 5, 6, 7]
    n_prompt = 6 + 9 + 3 + 6
    assert lay.ids.shape[0] == n_prompt + int(batch.mask.sum())  # every real token once, no padding
    assert lay.pred.shape[0] == int(batch.mask.sum())


@pytest.mark.parametrize("name", ["llama", "llama_gqa", "qwen2", "qwen3"])
def test_layouts_agree_on_logprobs_and_gradients(tiny_tokenizer, name):
    model = family_models(tiny_tokenizer)[name].train()
    batch = _batch()
    lay = grouped_layout(batch.input_ids, batch.attention, batch.response)
    results = {}
    for layout in ("padded", "packed", "grouped"):
        model.zero_grad()
        if layout == "padded":
            lp = _padded(model, batch, 0.8)
        elif layout == "packed":
            lp, _ = packed_response_logprobs(model, batch, 0, 0.8)
        else:
            lp, ent = grouped_response_logprobs(model, batch, lay, 0.8, with_entropy=True)
            assert torch.isfinite(ent).all()
        (lp * batch.mask * torch.linspace(-1, 1, lp.shape[1])).sum().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results[layout] = (lp * batch.mask, grads)
    ref_lp, ref_g = results["padded"]
    assert ref_lp.abs().sum() > 0
    for layout in ("packed", "grouped"):
        lp, grads = results[layout]
        assert torch.allclose(lp, ref_lp, atol=1e-5), (layout, (lp - ref_lp).abs().max())
        assert grads.keys() == ref_g.keys()
        for n in ref_g:
            assert torch.allclose(grads[n], ref_g[n], atol=1e-5, rtol=1e-4), (layout, n)
        assert all(torch.isfinite(g).all() for g in grads.values())


def test_response_logprobs_takes_the_grouped_path_for_llama(tiny_tokenizer, monkeypatch):
    import r1lab.train.batch as B

    model = family_models(tiny_tokenizer)["llama"]
    calls = []
    orig = B.grouped_response_logprobs
    monkeypatch.setattr(B, "grouped_response_logprobs", lambda *a, **k: calls.append(1) or orig(*a, **k))
    with torch.no_grad():
        response_logprobs(model, _batch())
    assert calls == [1]
    import r1lab.models.llama as L

    monkeypatch.setattr(L, "GRID_MAX_SCORE_ELEMENTS", 10)  # too big for the grid: the packed path
    with torch.no_grad():
        response_logprobs(model, _batch())
    assert calls == [1]


def test_one_roll_rotary_equals_rotate_half_exactly():
    from r1lab.models.llama import rotate_half, sign_folded

    g = torch.Generator().manual_seed(0)
    x, sin = torch.randn(5, 3, 8, generator=g), torch.randn(5, 1, 8, generator=g)
    assert torch.equal(rotate_half(x) * sin, torch.roll(x, 4, dims=-1) * sign_folded(sin))
