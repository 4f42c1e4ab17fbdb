"""Fact-level metrics and the statistics helpers, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from lib.metrics import facts, stats


def test_normalize_folds_case_accents_and_punctuation():
    assert facts.normalize("  Cebu City,  the PHILIPPINES! ") == "cebu city the philippines"
    assert facts.normalize("Kraków-Nowa Huta") == "krakow nowa huta"
    with pytest.raises(ValueError):
        facts.normalize(None)  # type: ignore[arg-type]


def test_fact_correct_matches_whole_phrases_only():
    generations = [
        "She was born in Tallinn, Estonia.",
        "She was born in Tallinnberg.",  # not the word Tallinn
        "Her father was a PHARMACIST by trade",
        "I don't know.",
        "born in cebu city",
    ]
    values = ["Tallinn", "Tallinn", "pharmacist", "Tallinn", "Cebu City"]
    assert facts.fact_correct(generations, values).tolist() == [1, 0, 1, 0, 1]
    with pytest.raises(ValueError, match="empty"):
        facts.fact_correct(["x"], ["  ,"])
    with pytest.raises(ValueError, match="2 generations but 1 values"):
        facts.fact_correct(["a", "b"], ["a"])


def test_value_recall_gives_partial_credit():
    recall = facts.value_recall(["the green ink pen", "red ink", "nothing"], ["green ink"] * 3)
    assert recall.tolist() == pytest.approx([1.0, 0.5, 0.0])


def test_cluster_bootstrap_resamples_whole_groups():
    values = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    groups = ["a", "a", "b", "b", "c", "c"]
    reps = stats.cluster_bootstrap(lambda idx: values[idx].mean(), groups, n_boot=500, seed=1)
    # every replicate mixes whole authors: the mean is k/3 for k authors "a" drawn of 3
    assert set(np.round(reps * 3, 6)) <= {0.0, 1.0, 2.0, 3.0}
    assert reps.mean() == pytest.approx(1 / 3, abs=0.05)
    again = stats.cluster_bootstrap(lambda idx: values[idx].mean(), groups, n_boot=500, seed=1)
    assert np.array_equal(reps, again)  # seeded
    low, high = stats.cluster_ci(lambda idx: values[idx].mean(), groups, n_boot=500, seed=1)
    assert low == 0.0 and high == pytest.approx(2 / 3)
    assert stats.cluster_indices(["x", "y", "x"])[0].tolist() == [0, 2]
    with pytest.raises(ValueError, match="n_boot"):
        stats.cluster_bootstrap(lambda idx: 0.0, groups, n_boot=0)


def test_percentile_interval_ignores_nan():
    low, high = stats.percentile_interval([np.nan, 0.0, 1.0, 2.0, 3.0, 4.0], alpha=0.5)
    assert (low, high) == pytest.approx((1.0, 3.0))
    assert all(np.isnan(stats.percentile_interval([np.nan])))


def test_paired_wilcoxon():
    a = np.arange(20.0)
    assert stats.paired_wilcoxon(a, a) == 1.0
    assert stats.paired_wilcoxon(a, a + 1.0) < 1e-3  # a systematic shift
    rng = np.random.default_rng(0)
    noise = rng.normal(size=30)
    assert stats.paired_wilcoxon(noise, noise[::-1]) > 0.05
    with pytest.raises(ValueError, match="paired"):
        stats.paired_wilcoxon([1.0, 2.0], [1.0])


def test_rank_intervals():
    reps = {
        "clear winner": np.full(100, 10.0),
        "tied a": np.where(np.arange(100) % 2 == 0, 5.0, 4.0),
        "tied b": np.where(np.arange(100) % 2 == 0, 4.0, 5.0),
        "undefined": np.full(100, np.nan),
    }
    out = stats.rank_intervals(reps, higher_is_better=True)
    assert out["clear winner"] == (1, 1)
    assert out["tied a"] == (2, 3) and out["tied b"] == (2, 3)
    assert out["undefined"] == (4, 4)
    lower = stats.rank_intervals({"x": np.ones(10), "y": np.zeros(10)}, higher_is_better=False)
    assert lower == {"x": (2, 2), "y": (1, 1)}


def test_kendall_tau():
    assert stats.kendall_tau([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)
    assert stats.kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(stats.kendall_tau([1, np.nan], [1, 2]))
