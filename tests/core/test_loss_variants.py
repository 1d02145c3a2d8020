"""The GRPO-family options of ``policy_loss``: values and gradients computed by hand."""

import math

import pytest
import torch

from r1lab.core import policy_loss


def _grad(lp_values, old, adv, mask, **kw):
    """(loss, metrics, d loss / d logprobs) for log-probabilities ``lp_values``."""
    lp = torch.tensor(lp_values, dtype=torch.float32).requires_grad_(True)
    loss, m = policy_loss(lp, old, adv, mask, **kw)
    loss.backward()
    return loss.item(), m, lp.grad


def _old_formula(lp, old, adv, mask, clip_eps, kl_coef, ref):
    # the loss as it was before the options existed (DeepSeekMath Eq. 3, seq-mean-token-mean)
    ratio = torch.exp((lp - old).clamp(-20.0, 20.0))
    a = adv.unsqueeze(1)
    per = -torch.minimum(ratio * a, ratio.clamp(1 - clip_eps, 1 + clip_eps) * a)
    per = per + kl_coef * (torch.exp(ref - lp) - (ref - lp) - 1.0)
    return ((per * mask).sum(1) / mask.sum(1).clamp(min=1.0)).mean()


def test_defaults_are_the_old_loss_bit_for_bit():
    torch.manual_seed(1)
    lp = (torch.randn(4, 6) * 0.3 - 1.0).requires_grad_(True)
    old, ref = lp.detach() + 0.2 * torch.randn(4, 6), lp.detach() + 0.2 * torch.randn(4, 6)
    adv, mask = torch.randn(4), (torch.rand(4, 6) > 0.3).float()
    loss, _ = policy_loss(lp, old, adv, mask, ref_logprobs_BT=ref, kl_coef=0.04)
    (g_new,) = torch.autograd.grad(loss, lp)
    want = _old_formula(lp, old, adv, mask, 0.2, 0.04, ref)
    (g_old,) = torch.autograd.grad(want, lp)
    assert torch.equal(loss, want) and torch.equal(g_new, g_old)


# -- GSPO ----------------------------------------------------------------------------------------------------------

def test_gspo_value_and_gradient_inside_the_clip_range():
    # one row, ratios 1.5 and 0.5: s = sqrt(0.75) = 0.866 (inside [0.8, 1.2]); objective s*A on each token
    old, mask, adv = torch.zeros(1, 2), torch.ones(1, 2), torch.tensor([2.0])
    s = math.sqrt(0.75)
    loss, m, g = _grad([[math.log(1.5), math.log(0.5)]], old, adv, mask, ratio_level="sequence")
    assert loss == pytest.approx(-2.0 * s, rel=1e-6)
    # d loss / d logp_t = -(1/|o|) * s * A for every token (token level would give -(1/2) * r_t * A)
    assert torch.allclose(g, torch.full((1, 2), -0.5 * s * 2.0), atol=1e-6)
    assert m["ratio_mean"] == pytest.approx(s, rel=1e-6) and m["clip_frac"] == 0.0


def test_gspo_clips_the_whole_sequence():
    # ratios 2.0 and 0.9: token level would clip only the first token; s = sqrt(1.8) = 1.342 > 1.2 clips both
    old, mask = torch.zeros(1, 2), torch.ones(1, 2)
    loss, m, g = _grad([[math.log(2.0), math.log(0.9)]], old, torch.tensor([1.0]), mask, ratio_level="sequence")
    assert loss == pytest.approx(-1.2, rel=1e-6)
    assert torch.equal(g, torch.zeros(1, 2))
    assert m["clip_frac_high"] == 1.0
    # A < 0: min keeps the unclipped branch, gradient +s/2 on each token
    loss, m, g = _grad([[math.log(2.0), math.log(0.9)]], old, torch.tensor([-1.0]), mask, ratio_level="sequence")
    s = math.sqrt(1.8)
    assert loss == pytest.approx(s, rel=1e-6)
    assert torch.allclose(g, torch.full((1, 2), 0.5 * s), atol=1e-6)


def test_gspo_token_gradient_equals_sequence_level_gspo_with_padding():
    """GSPO-token's gradient equals the gradient of sequence-level GSPO, min(s_i A, clip(s_i) A) per sequence
    with s_i differentiated as a whole, under seq-mean-token-mean (Zheng et al. 2025, §4.3)."""
    torch.manual_seed(0)
    lp0 = torch.randn(3, 5) * 0.1 - 1.0
    old = lp0 + 0.05 * torch.randn(3, 5)
    lp0[2, 3:] = float("-inf")  # padding may hold anything
    mask = torch.ones(3, 5)
    mask[2, 3:] = 0.0
    adv = torch.tensor([1.0, -0.5, 2.0])
    lp = lp0.clone().requires_grad_(True)
    loss, _ = policy_loss(lp, old, adv, mask, ratio_level="sequence", clip_eps=0.02)
    loss.backward()
    lp2 = lp0.clone().requires_grad_(True)
    diff = torch.where(mask > 0, lp2 - old, torch.zeros_like(lp2))
    s = torch.exp(diff.sum(1) / mask.sum(1))
    want = -torch.minimum(s * adv, s.clamp(0.98, 1.02) * adv).mean()
    want.backward()
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)
    assert torch.allclose(lp.grad, lp2.grad, atol=1e-7)
    assert torch.isfinite(lp.grad).all()


# -- CISPO ---------------------------------------------------------------------------------------------------------

def test_cispo_value_and_gradient():
    # ratios 1.5 (truncated to 1.2) and 0.5 (kept: no lower bound), A = 1, token-mean over 2 tokens
    old, mask = torch.zeros(1, 2), torch.ones(1, 2)
    lp = [[math.log(1.5), math.log(0.5)]]
    loss, m, g = _grad(lp, old, torch.tensor([1.0]), mask, objective="cispo", agg="token-mean")
    assert loss == pytest.approx(-(1.2 * math.log(1.5) + 0.5 * math.log(0.5)) / 2, rel=1e-6)
    assert torch.allclose(g, torch.tensor([[-1.2 / 2, -0.5 / 2]]), atol=1e-6)
    assert m["clip_frac_high"] == 0.5 and m["clip_frac_low"] == 0.0
    # padding holding -inf changes nothing
    padded = [[math.log(1.5), math.log(0.5), float("-inf")]]
    loss_p, _, g_p = _grad(padded, torch.zeros(1, 3), torch.tensor([1.0]), torch.tensor([[1.0, 1.0, 0.0]]),
                           objective="cispo", agg="token-mean")
    assert loss_p == pytest.approx(loss, rel=1e-6) and torch.allclose(g_p[:, :2], g) and g_p[0, 2] == 0.0


def test_cispo_keeps_gradients_that_ppo_clips():
    # A < 0 with ratio 0.5: PPO's clip (1 - 0.2) zeroes the gradient, CISPO weighs it by 0.5
    old, mask, adv = torch.zeros(1, 1), torch.ones(1, 1), torch.tensor([-1.0])
    _, _, g_clip = _grad([[math.log(0.5)]], old, adv, mask)
    _, _, g_cispo = _grad([[math.log(0.5)]], old, adv, mask, objective="cispo")
    assert g_clip.item() == 0.0
    assert g_cispo.item() == pytest.approx(0.5, rel=1e-6)
    # DAPO-style clip_eps_high is the truncation point
    _, _, g = _grad([[math.log(1.5)]], old, torch.tensor([1.0]), mask, objective="cispo", clip_eps_high=0.28)
    assert g.item() == pytest.approx(-1.28, rel=1e-6)


def test_cispo_with_sequence_ratio_uses_the_sequence_weight():
    # s = sqrt(1.5 * 0.5) = 0.866 below the cap: every token weighs 0.866
    old, mask = torch.zeros(1, 2), torch.ones(1, 2)
    _, _, g = _grad([[math.log(1.5), math.log(0.5)]], old, torch.tensor([1.0]), mask,
                    objective="cispo", ratio_level="sequence")
    assert torch.allclose(g, torch.full((1, 2), -math.sqrt(0.75) / 2), atol=1e-6)


# -- dual-clip -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ratio,adv,obj,grad,dual", [
    (4.0, -1.0, -3.0, 0.0, 1.0),   # A<0, ratio above c: bounded at c*A, no gradient
    (2.0, -1.0, -2.0, 2.0, 0.0),   # A<0, ratio between 1+eps and c: the ordinary min, gradient -A*r
    (0.5, -1.0, -0.8, 0.0, 0.0),   # A<0, ratio below 1-eps: clipped low as before
    (4.0, 1.0, 1.2, 0.0, 0.0),     # A>0 is never touched
])
def test_dual_clip(ratio, adv, obj, grad, dual):
    loss, m, g = _grad([[math.log(ratio)]], torch.zeros(1, 1), torch.tensor([adv]), torch.ones(1, 1), dual_clip=3.0)
    assert loss == pytest.approx(-obj, rel=1e-6)
    assert g.item() == pytest.approx(grad, rel=1e-6, abs=1e-7)
    assert m["clip_frac_dual"] == dual


# -- truncated importance sampling ---------------------------------------------------------------------------------

def test_token_truncated_is_weights_value_gradient_and_metrics():
    # on-policy (old = logp = 0), sampler log-probs log 0.5 and log 0.25: w = min(2, 3), min(4, 3) = 2, 3
    lp0 = torch.zeros(1, 2)
    beh = torch.log(torch.tensor([[0.5, 0.25]]))
    ref = torch.log(torch.tensor([[0.5, 0.5]]))
    loss, m, g = _grad([[0.0, 0.0]], lp0, torch.tensor([1.0]), torch.ones(1, 2), behaviour_logprobs_BT=beh, is_cap=3.0,
                       ref_logprobs_BT=ref, kl_coef=0.1)
    k3 = 0.5 - math.log(0.5) - 1.0
    assert loss == pytest.approx(-(2.0 + 3.0) / 2 + 0.1 * k3, rel=1e-6)  # the KL term is not weighted
    kl_grad = 0.1 * (1.0 - 0.5) / 2  # d k3 / d logp = 1 - pi_ref/pi, averaged over 2 tokens
    assert torch.allclose(g, torch.tensor([[-2.0 / 2 + kl_grad, -3.0 / 2 + kl_grad]]), atol=1e-6)
    assert m["is_weight_mean"] == pytest.approx(2.5) and m["is_capped_frac"] == 0.5


def test_sequence_truncated_is_weights():
    # sum of log weights log 2 + log 4: w = 8 on both tokens (cap 10), capped to 5 with cap 5
    old, mask, adv = torch.zeros(1, 2), torch.ones(1, 2), torch.tensor([1.0])
    beh = torch.log(torch.tensor([[0.5, 0.25]]))
    loss, m, g = _grad([[0.0, 0.0]], old, adv, mask, behaviour_logprobs_BT=beh, is_level="sequence", is_cap=10.0)
    assert loss == pytest.approx(-8.0, rel=1e-6)
    assert torch.allclose(g, torch.full((1, 2), -8.0 / 2), atol=1e-5)
    assert m["is_capped_frac"] == 0.0
    loss, m, _ = _grad([[0.0, 0.0]], old, adv, mask, behaviour_logprobs_BT=beh, is_level="sequence", is_cap=5.0)
    assert loss == pytest.approx(-5.0, rel=1e-6)
    assert m["is_weight_mean"] == pytest.approx(5.0) and m["is_capped_frac"] == 1.0


def test_is_weights_ignore_masked_tokens_and_equal_behaviour_is_a_no_op():
    torch.manual_seed(0)
    lp = torch.randn(2, 3) * 0.2 - 1.0
    old = lp + 0.1 * torch.randn(2, 3)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    adv = torch.tensor([1.0, -1.0])
    plain, _ = policy_loss(lp, old, adv, mask)
    for level in ("token", "sequence"):
        beh = old.clone()
        beh[mask == 0] = -50.0  # a wild value in the padding must not leak into the weights
        same, m = policy_loss(lp, old, adv, mask, behaviour_logprobs_BT=beh, is_level=level)
        assert same.item() == pytest.approx(plain.item(), rel=1e-6)
        assert m["is_weight_mean"] == pytest.approx(1.0) and m["is_capped_frac"] == 0.0


@pytest.mark.parametrize("kw,match", [
    ({"ratio_level": "seq"}, "ratio_level 'seq'; valid: token, sequence"),
    ({"objective": "gspo"}, "valid: clip, cispo"),
    ({"is_level": "row"}, "valid: token, sequence"),
    ({"dual_clip": 1.0}, "dual_clip must be > 1"),
    ({"is_cap": 0.0}, "is_cap must be > 0"),
    ({"objective": "cispo", "dual_clip": 3.0}, "does not apply to objective 'cispo'"),
])
def test_bad_options_raise_naming_the_option(kw, match):
    with pytest.raises(ValueError, match=match):
        policy_loss(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1), torch.ones(1, 1), **kw)
