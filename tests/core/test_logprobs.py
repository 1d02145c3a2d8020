import pytest
import torch

from r1lab.core import entropy_from_logits, token_logprobs
from r1lab.core.logprobs import token_logprobs_entropy


def _reference(logits, ids, temperature):
    x = logits.clone().requires_grad_()
    lp = token_logprobs(x.unsqueeze(0), ids.unsqueeze(0), temperature).squeeze(0)
    ent = entropy_from_logits(x.detach().float() / temperature)
    return x, lp, ent


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_fused_logprobs_and_entropy_equal_the_separate_functions_bit_for_bit(temperature):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(300, 97, generator=g) * 4
    ids = torch.randint(0, 97, (300,), generator=g)
    weights = torch.randn(300, generator=g)
    x_ref, lp_ref, ent_ref = _reference(logits, ids, temperature)
    (lp_ref * weights).sum().backward()

    x = logits.clone().requires_grad_()
    lp, ent = token_logprobs_entropy(x, ids, temperature, with_entropy=True)
    (lp * weights).sum().backward()
    assert torch.equal(lp, lp_ref) and torch.equal(ent, ent_ref)
    assert torch.equal(x.grad, x_ref.grad)
    assert not ent.requires_grad

    # the log-probabilities are log softmax at the ids (not only equal to the old code)
    expect = torch.log_softmax(logits / temperature, -1).gather(-1, ids[:, None]).squeeze(-1)
    assert torch.allclose(lp, expect, atol=1e-5)


def test_fused_logprobs_without_gradient_or_entropy():
    logits = torch.randn(50, 11) * 3
    ids = torch.randint(0, 11, (50,))
    with torch.no_grad():
        lp, ent = token_logprobs_entropy(logits, ids, 1.0, with_entropy=False)
    assert ent is None
    assert torch.equal(lp, token_logprobs(logits[None], ids[None]).squeeze(0))
    # bf16 logits are computed in float32
    lp16, ent16 = token_logprobs_entropy(logits.bfloat16(), ids, 1.0, with_entropy=True)
    assert lp16.dtype == torch.float32 and torch.allclose(lp16, lp, atol=0.1)
    assert torch.allclose(ent16, entropy_from_logits(logits), atol=0.1)
