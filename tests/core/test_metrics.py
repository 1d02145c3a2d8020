import itertools
import math

import pytest

from r1lab.core import pass_at_k


def brute_force(n, c, k):
    """Fraction of k-subsets of n samples (c correct) that contain a correct one."""
    outcomes = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_matches_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force(n, c, k), abs=1e-12)


def test_pass_at_1_is_fraction_correct():
    assert pass_at_k(16, 4, 1) == pytest.approx(0.25)


def test_large_n_is_stable():
    assert pass_at_k(1000, 1, 1000) == 1.0
    assert pass_at_k(1000, 0, 10) == 0.0
    assert pass_at_k(1000, 10, 1) == pytest.approx(0.01)
    assert pass_at_k(200, 3, 50) == pytest.approx(1 - math.comb(197, 50) / math.comb(200, 50))


def test_bad_arguments():
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)
