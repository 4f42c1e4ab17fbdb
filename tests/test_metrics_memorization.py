"""Unit tests of lib.metrics.memorization."""

from __future__ import annotations

import numpy as np
import pytest

from lib.metrics.memorization import exact_memorization, extraction_strength

T, F = True, False


def test_exact_memorization():
    assert exact_memorization([T, F, T, T]) == pytest.approx(0.75)
    assert exact_memorization(np.array([1, 0])) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("correct", "fixed", "ou"),
    [
        ([T, T, T, T], 1.0, 1.0),
        ([F, F, F, F], 0.0, 0.25),
        ([F, T, T, T], 0.75, 0.75),
        ([T, T, F, T], 0.25, 0.25),
        ([T, T, T, F], 0.0, 0.25),
        ([T], 1.0, 1.0),
        ([F], 0.0, 1.0),  # OU: 1 - 0/1, its minimum 1/|y| is 1 here
    ],
)
def test_extraction_strength_edge_cases(correct, fixed, ou):
    assert extraction_strength(correct) == pytest.approx(fixed)
    assert extraction_strength(correct, ou_off_by_one=True) == pytest.approx(ou)


def _ou_loop(correct: np.ndarray) -> float:
    """OpenUnlearning's suffix loop, reproduced to check the switch."""
    n = len(correct)
    for k in range(n):  # k is read after the loop, as in OU
        if correct[k:].all():
            break
    return 1 - k / n


def test_ou_switch_matches_ou_loop_on_random_inputs():
    rng = np.random.default_rng(0)
    for _ in range(200):
        correct = rng.random(rng.integers(1, 12)) < 0.7
        assert extraction_strength(correct, ou_off_by_one=True) == pytest.approx(_ou_loop(correct))


@pytest.mark.parametrize("bad", [[], [[T, F]], [0, 2]])
def test_bad_inputs_raise(bad):
    with pytest.raises(ValueError):
        extraction_strength(bad)
    with pytest.raises(ValueError):
        exact_memorization(bad)
