"""Unit tests of lib.metrics.mia."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lib.metrics import mia

LP = np.array([-1.0, -2.0, -3.0, -4.0, -5.0])


def test_loss_and_zlib_scores():
    lp = [math.log(0.5), math.log(0.25)]
    assert mia.loss_score(lp) == pytest.approx(1.5 * math.log(2))
    text = "abcabcabcabc"
    assert mia.zlib_score(lp, text) == pytest.approx(
        1.5 * math.log(2) / len(zlib.compress(text.encode()))
    )
    # More compressible text of the same length divides by fewer bytes -> larger score.
    assert mia.zlib_score(lp, "a" * 40) > mia.zlib_score(lp, "the quick brown fox jumps over it")


@pytest.mark.parametrize(("k", "expected"), [(0.4, 4.5), (1.0, 3.0), (0.1, 5.0), (0.2, 5.0)])
def test_min_k_hand_values(k, expected):
    # k=0.1: int(0.5) = 0 tokens -> falls back to the single lowest token.
    assert mia.min_k_score(LP, k) == pytest.approx(expected)


@pytest.mark.parametrize("k", [0.0, -0.1, 1.5])
def test_min_k_rejects_bad_k(k):
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        mia.min_k_score(LP, k)


def test_min_k_plus_plus():
    zeros, ones = np.zeros(5), np.ones(5)
    assert mia.min_k_plus_plus_score(LP, zeros, ones) == pytest.approx(mia.min_k_score(LP))
    # z = (lp - mu) / sigma = (-5 + 1) / 2 = -2 and (-4 + 1) / 2 = -1.5
    assert mia.min_k_plus_plus_score(LP, -ones, 2 * ones) == pytest.approx(1.75)
    # sigma = 0 is clamped to 1e-3: z = -1 / 1e-3
    assert mia.min_k_plus_plus_score([-1.0], [0.0], [0.0], k=1.0) == pytest.approx(1000.0)
    with pytest.raises(ValueError, match="mismatch"):
        mia.min_k_plus_plus_score(LP, zeros[:3], ones)


def test_reference_score():
    assert mia.reference_score([-1.0, -3.0], [-0.5]) == pytest.approx(1.5)


def test_scores_dispatch_and_errors():
    examples = [LP, LP[:2], np.array([-0.1])]
    np.testing.assert_allclose(mia.scores("loss", examples), [3.0, 1.5, 0.1])
    np.testing.assert_allclose(mia.scores("min_k", examples, k=0.4), [4.5, 2.0, 0.1])
    texts = ["one", "two words", "x"]
    np.testing.assert_allclose(
        mia.scores("zlib", examples, texts=texts),
        [mia.zlib_score(e, t) for e, t in zip(examples, texts, strict=True)],
    )
    mu = [np.zeros(len(e)) for e in examples]
    sd = [np.ones(len(e)) for e in examples]
    np.testing.assert_allclose(
        mia.scores("min_k_plus_plus", examples, mu=mu, sigma=sd), [4.5, 2.0, 0.1]
    )
    np.testing.assert_allclose(
        mia.scores("reference", examples, references=examples), [0.0, 0.0, 0.0]
    )
    with pytest.raises(KeyError, match="allowed"):
        mia.scores("gradnorm", examples)
    with pytest.raises(ValueError, match="texts"):
        mia.scores("zlib", examples)
    with pytest.raises(ValueError, match="entries"):
        mia.scores("zlib", examples, texts=["a"])


def _brute_auc(member, nonmember):
    wins = sum((n > m) + 0.5 * (n == m) for m in member for n in nonmember)
    return wins / (len(member) * len(nonmember))


def test_mia_auc_matches_pairwise_count_with_ties():
    rng = np.random.default_rng(3)
    member = rng.integers(0, 6, 30).astype(float)  # integer scores -> many ties
    nonmember = rng.integers(1, 8, 25).astype(float)
    assert mia.mia_auc(member, nonmember) == pytest.approx(_brute_auc(member, nonmember))


def test_mia_auc_orientation():
    assert mia.mia_auc([0.1, 0.2], [1.0, 2.0]) == 1.0  # members have lower loss: still seen
    assert mia.mia_auc([1.0, 2.0], [0.1, 0.2]) == 0.0
    assert mia.mia_auc([1.0, 1.0], [1.0, 1.0]) == 0.5
    with pytest.raises(ValueError, match="empty"):
        mia.mia_auc([], [1.0])


def test_roc_auc_equals_mia_auc_and_is_monotone():
    rng = np.random.default_rng(4)
    member, nonmember = rng.normal(0, 1, 40), rng.normal(0.8, 1, 50)
    fpr, tpr, auc = mia.roc(member, nonmember)
    assert auc == pytest.approx(mia.mia_auc(member, nonmember))
    assert auc == pytest.approx(
        roc_auc_score(np.r_[np.zeros(40), np.ones(50)], np.r_[member, nonmember])
    )
    assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)


def test_tpr_at_fpr_hand_example():
    member = [1.0, 2.0, 3.0, 10.0]
    nonmember = np.arange(4.0, 104.0)  # 100 non-members, the lowest at 4
    assert mia.tpr_at_fpr(member, nonmember, fpr=0.0) == pytest.approx(0.75)
    assert mia.tpr_at_fpr(member, nonmember, fpr=0.01) == pytest.approx(0.75)
    # Catching the member at 10 needs 7 false positives (4..10): FPR 0.07.
    assert mia.tpr_at_fpr(member, nonmember, fpr=0.069) == pytest.approx(0.75)
    assert mia.tpr_at_fpr(member, nonmember, fpr=0.07) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mia.tpr_at_fpr(member, nonmember, fpr=1.5)


def test_bootstrap_ci_contains_estimate_and_is_deterministic():
    rng = np.random.default_rng(5)
    member, nonmember = rng.normal(0, 1, 60), rng.normal(1, 1, 70)
    point = mia.mia_auc(member, nonmember)
    low, high = mia.bootstrap_ci(mia.mia_auc, member, nonmember, n_boot=150, seed=7)
    assert low < point < high
    assert (low, high) == mia.bootstrap_ci(mia.mia_auc, member, nonmember, n_boot=150, seed=7)
    assert (low, high) != mia.bootstrap_ci(mia.mia_auc, member, nonmember, n_boot=150, seed=8)


def test_bootstrap_ci_of_mean_matches_normal_theory():
    x = np.random.default_rng(6).normal(10, 2, 400)
    low, high = mia.bootstrap_ci(np.mean, x, n_boot=2000, seed=0)
    half_width = 1.96 * x.std() / math.sqrt(len(x))
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.15)
    with pytest.raises(ValueError, match="alpha"):
        mia.bootstrap_ci(np.mean, x, alpha=1.0)
    with pytest.raises(ValueError, match="n_boot"):
        mia.bootstrap_ci(np.mean, x, n_boot=0)


def test_privleak():
    assert mia.privleak(1.0, 0.5) == pytest.approx(-100.0)  # target-like vs chance oracle
    assert mia.privleak(0.5, 0.5) == pytest.approx(0.0)
    assert mia.privleak(0.0, 0.5) == pytest.approx(100.0)  # over-unlearned
    # MUSE AUCs are 1 - ours: (0.2 - 0.55) / 0.55 * 100
    assert mia.privleak(0.8, 0.45) == pytest.approx((0.2 - 0.55) / 0.55 * 100)
    with pytest.raises(ValueError, match="undefined"):
        mia.privleak(0.5, 1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mia.privleak(1.2, 0.5)
