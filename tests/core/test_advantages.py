import math

import pytest
import torch

from r1lab.core import group_advantages


def test_group_scale_hand_computed():
    # group [1, 0, 0, 1]: mean 0.5, sample std sqrt(((.5^2)*4)/3) = sqrt(1/3)
    adv = group_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0]]), scale="group", eps=0.0)
    s = math.sqrt(1 / 3)
    assert torch.allclose(adv, torch.tensor([[0.5 / s, -0.5 / s, -0.5 / s, 0.5 / s]]))


def test_group_scale_per_group_independent():
    rewards = torch.tensor([[2.0, 0.0], [10.0, 4.0]])
    adv = group_advantages(rewards, scale="group", eps=0.0)
    # each group of two: (r - mean) / (|r1 - r2| / sqrt(2)) = +-1/sqrt(2)
    expect = torch.tensor([[1.0, -1.0], [1.0, -1.0]]) / math.sqrt(2)
    assert torch.allclose(adv, expect, atol=1e-6)


def test_batch_scale_uses_global_std():
    rewards = torch.tensor([[2.0, 0.0], [10.0, 4.0]])
    adv = group_advantages(rewards, scale="batch", eps=0.0)
    std = torch.tensor([2.0, 0.0, 10.0, 4.0]).std()
    expect = torch.tensor([[1.0, -1.0], [3.0, -3.0]]) / std
    assert torch.allclose(adv, expect, atol=1e-6)


def test_none_scale_is_centred_only():
    adv = group_advantages(torch.tensor([[3.0, 1.0, 2.0]]), scale="none")
    assert torch.allclose(adv, torch.tensor([[1.0, -1.0, 0.0]]))


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_equal_rewards_give_zeros_not_nan(scale):
    adv = group_advantages(torch.ones(3, 4), scale=scale)
    assert torch.equal(adv, torch.zeros(3, 4))
    adv = group_advantages(torch.tensor([[0.0, 0.0], [1.0, 0.0]]), scale=scale)
    assert torch.isfinite(adv).all() and torch.equal(adv[0], torch.zeros(2))


def test_unknown_scale_lists_valid():
    with pytest.raises(ValueError, match="group, batch, none"):
        group_advantages(torch.ones(1, 2), scale="zscore")
