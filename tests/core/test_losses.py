import math

import pytest
import torch

from r1lab.core import kl_k3, policy_loss


def test_kl_k3_hand_computed():
    lp = torch.tensor([[math.log(0.5), math.log(0.2)]])
    ref = torch.tensor([[math.log(0.25), math.log(0.2)]])
    kl = kl_k3(lp, ref)
    # ratio pi_ref/pi = 0.5: 0.5 - log 0.5 - 1 ; equal probabilities: 0
    assert kl[0, 0].item() == pytest.approx(0.5 - math.log(0.5) - 1.0)
    assert kl[0, 1].item() == pytest.approx(0.0, abs=1e-7)
    assert (kl_k3(torch.randn(4, 5), torch.randn(4, 5)) >= 0).all()


def _lp(ratio):
    """Log-probabilities whose ratio to old log-probabilities 0 is ``ratio``."""
    return torch.log(torch.tensor(ratio, dtype=torch.float32))


@pytest.mark.parametrize("ratio,adv,expected_obj,clipped", [
    (1.5, 1.0, 1.2, "high"),    # A>0, ratio above 1+eps: clipped to 1.2
    (0.5, 1.0, 0.5, None),      # A>0, ratio below 1-eps: min keeps 0.5 (no clipping benefit)
    (0.5, -1.0, -0.8, "low"),   # A<0, ratio below 1-eps: clipped to 0.8 * -1
    (1.5, -1.0, -1.5, None),    # A<0, ratio above 1+eps: min keeps -1.5
    (1.1, 2.0, 2.2, None),      # inside the trust region
])
def test_policy_loss_clipping_both_sides(ratio, adv, expected_obj, clipped):
    lp = _lp([[ratio]])
    loss, m = policy_loss(lp, torch.zeros(1, 1), torch.tensor([adv]), torch.ones(1, 1), clip_eps=0.2)
    assert loss.item() == pytest.approx(-expected_obj, rel=1e-5)
    assert m["clip_frac_high"] == (1.0 if clipped == "high" else 0.0)
    assert m["clip_frac_low"] == (1.0 if clipped == "low" else 0.0)


def test_clip_higher_is_asymmetric():
    lp = _lp([[1.25]])
    sym, _ = policy_loss(lp, torch.zeros(1, 1), torch.tensor([1.0]), torch.ones(1, 1), clip_eps=0.2)
    dapo, _ = policy_loss(lp, torch.zeros(1, 1), torch.tensor([1.0]), torch.ones(1, 1), clip_eps=0.2, clip_eps_high=0.28)
    assert sym.item() == pytest.approx(-1.2)
    assert dapo.item() == pytest.approx(-1.25)


def _two_rows():
    # row 0: three tokens (ratios 1, 1, 1), A=1 ; row 1: one token (ratio 1), A=-2 ; T=4
    lp = torch.zeros(2, 4)
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    adv = torch.tensor([1.0, -2.0])
    return lp, mask, adv


def test_aggregations_hand_computed():
    lp, mask, adv = _two_rows()
    # per-token loss = -A: row0 tokens -1 (x3), row1 token +2
    l1, _ = policy_loss(lp, lp, adv, mask, agg="seq-mean-token-mean")
    assert l1.item() == pytest.approx(((-1.0) + 2.0) / 2)  # mean of row means
    l2, _ = policy_loss(lp, lp, adv, mask, agg="token-mean")
    assert l2.item() == pytest.approx((-3.0 + 2.0) / 4)  # 4 tokens
    l3, _ = policy_loss(lp, lp, adv, mask, agg="seq-mean-token-sum-norm", max_tokens=8)
    assert l3.item() == pytest.approx(((-3.0 / 8) + (2.0 / 8)) / 2)
    l4, _ = policy_loss(lp, lp, adv, mask, agg="seq-mean-token-sum-norm")  # defaults to T = 4
    assert l4.item() == pytest.approx(((-3.0 / 4) + (2.0 / 4)) / 2)


def test_kl_term_added_with_coefficient():
    lp = torch.tensor([[math.log(0.5)]])
    ref = torch.tensor([[math.log(0.25)]])
    k3 = 0.5 - math.log(0.5) - 1.0
    loss, m = policy_loss(lp, lp.clone(), torch.tensor([1.0]), torch.ones(1, 1), ref_logprobs_BT=ref, kl_coef=0.1)
    assert loss.item() == pytest.approx(-1.0 + 0.1 * k3)
    assert m["kl"] == pytest.approx(k3)


def test_masked_tokens_do_not_count():
    lp = torch.tensor([[0.0, 5.0]])
    loss, _ = policy_loss(lp, torch.zeros(1, 2), torch.tensor([1.0]), torch.tensor([[1.0, 0.0]]))
    assert loss.item() == pytest.approx(-1.0)


def test_gradient_equals_paper_gradient_coefficient():
    """With pi_old = pi, d(-loss)/d logpi = (A + beta (pi_ref/pi - 1)) / n_tokens  (DeepSeekMath A.1.6), token-mean."""
    torch.manual_seed(0)
    lp = torch.log(torch.rand(2, 3) * 0.9 + 0.05).requires_grad_(True)
    ref = torch.log(torch.rand(2, 3) * 0.9 + 0.05)
    adv = torch.tensor([0.7, -1.3])
    mask = torch.ones(2, 3)
    beta = 0.04
    loss, _ = policy_loss(lp, lp.detach(), adv, mask, ref_logprobs_BT=ref, kl_coef=beta, agg="token-mean")
    loss.backward()
    gc = adv[:, None] + beta * (torch.exp(ref - lp.detach()) - 1.0)
    assert torch.allclose(-lp.grad, gc / mask.sum(), atol=1e-6)


def test_unknown_aggregation_lists_valid():
    with pytest.raises(ValueError, match="token-mean"):
        policy_loss(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1), torch.ones(1, 1), agg="sum")
