"""Tests of lib.benchmarks.tofu_suite on synthetic statistics (no model)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from lib.benchmarks.tofu_suite import (
    ATTACKS,
    METRIC_HELP,
    SuiteStats,
    attack_scores,
    forget_truth_ratios,
    retain_subset,
    roc_curve,
    summarize,
)
from lib.data import build_benchmark
from lib.evaluate import AnswerScores

# --------------------------------------------------------------------------- retain_subset


def test_retain_subset_spreads_over_the_split():
    retain = build_benchmark(n_authors=6, qa_per_author=4).records("retain10")
    assert len(retain) == 20
    picked = retain_subset(retain, 5)
    idx = [retain.index(q) for q in picked]
    assert idx == [0, 5, 10, 14, 19]  # np.linspace(0, 19, 5) rounded (9.5 -> 10, 14.25 -> 14)
    assert retain_subset(retain, 5) == picked  # deterministic
    assert {q.author for q in picked} == {q.author for q in retain}  # every author appears


def test_retain_subset_sizes():
    items = list(range(10))
    assert retain_subset(items, 10) == items
    assert retain_subset(items, 50) == items
    assert retain_subset(items, 1) == [0]
    assert retain_subset(items, 0) == []
    for n in range(1, 10):
        picked = retain_subset(items, n)
        assert len(picked) == len(set(picked)) == n  # no duplicates
        assert picked == sorted(picked)
        assert picked[0] == 0
        if n > 1:
            assert picked[-1] == 9


# --------------------------------------------------------------------------- summarize


def _scores(rng: np.random.Generator, n: int, shift: float) -> AnswerScores:
    """n examples of 6 answer tokens with log-probs around `shift` (higher = better known)."""
    scores = AnswerScores()
    for _ in range(n):
        lp = np.minimum(rng.normal(shift, 0.5, 6), -1e-3)
        scores.logprobs.append(lp)
        scores.correct.append(lp > -1.0)
        scores.mu.append(np.full(6, -4.0))
        scores.sigma.append(np.full(6, 1.5))
    return scores


def _stats(seed: int, forget_shift: float = -3.0, n: int = 12) -> SuiteStats:
    rng = np.random.default_rng(seed)
    answers = [f"The author was born in City {i}." for i in range(n)]
    return SuiteStats(
        forget=_scores(rng, n, forget_shift),
        forget_answers=answers,
        forget_para_nll=rng.uniform(1, 3, n),
        forget_pert_nll=rng.uniform(1, 3, (n, 5)),
        forget_gen=["The author was born in City 3."] + ["I don't know."] * (n - 1),
        forget_para_gen=["I don't know."] * n,
        multihop_answers=["Tallinn"],
        multihop_gen=["Tallinn"],
        holdout=_scores(rng, n, -3.0),
        holdout_answers=[f"The holdout author writes genre {i}." for i in range(n)],
        retain_nll=rng.uniform(0.1, 1, 8),
        retain_para_nll=rng.uniform(0.5, 1, 8),
        retain_pert_nll=rng.uniform(2, 3, (8, 5)),
        retain_answers=[f"She studied subject {i}." for i in range(8)],
        retain_gen=[f"She studied subject {i}." for i in range(8)],
        probe_nll=rng.uniform(0.1, 1, 6),
        probe_pert_nll=rng.uniform(2, 4, (6, 3)),
        probe_answers=["Paris", "Berlin", "Rome", "Madrid", "Lisbon", "Vienna"],
        probe_gen=["Paris", "Berlin", "Rome", "no", "no", "no"],
        eval_tokens=1234,
    )


def test_summarize_returns_the_documented_keys():
    oracle = _stats(0)
    out = summarize(_stats(1), oracle, n_boot=20)
    assert set(METRIC_HELP) <= set(out)
    for attack in ATTACKS:
        assert f"mia_{attack}_auc" in out and f"mia_{attack}_tpr1" in out
    for key in ("mia_auc_low", "mia_auc_high", "forget_ks", "retain_prob", "probe_rouge"):
        assert key in out
    assert all(isinstance(v, float) for v in out.values())
    assert all(math.isfinite(v) for v in out.values())
    assert 0.0 <= out["forget_quality"] <= 1.0
    assert out["mia_auc"] == out["mia_min_k_auc"]  # Min-K% is the headline attack
    assert out["mia_auc_low"] <= out["mia_auc"] <= out["mia_auc_high"]
    assert out["multihop_rouge"] == 1.0
    assert out["probe_rouge"] == pytest.approx(0.5)
    assert out["retain_rouge"] == 1.0
    assert 0.0 < out["model_utility"] <= 1.0


def test_summarize_oracle_against_itself():
    oracle = _stats(0)
    out = summarize(oracle, oracle, n_boot=20)
    assert out["forget_quality"] == 1.0
    assert out["forget_ks"] == 0.0
    assert out["privleak"] == 0.0
    assert out["mia_reference_auc"] == 0.5  # reference attack against itself: all ties


def test_summarize_memorised_forget_set_leaks():
    oracle = _stats(0)
    target = copy.deepcopy(oracle)
    rng = np.random.default_rng(5)
    target.forget = _scores(rng, 12, -0.2)  # forget answers far likelier than holdout
    target.forget_para_nll = np.full(12, 0.05)  # and preferred over every perturbed answer
    out = summarize(target, oracle, n_boot=20)
    assert out["mia_auc"] == 1.0
    assert out["privleak"] < -50  # under-unlearned: strongly negative
    assert out["forget_quality"] < 0.05
    assert out["forget_prob"] > summarize(oracle, oracle, n_boot=20)["forget_prob"]


def test_summarize_without_multihop_is_nan():
    stats = _stats(1)
    stats.multihop_gen, stats.multihop_answers = [], []
    assert math.isnan(summarize(stats, _stats(0), n_boot=10)["multihop_rouge"])


def test_summarize_is_deterministic_in_the_bootstrap_seed():
    a = summarize(_stats(1), _stats(0), n_boot=30, seed=3)
    b = summarize(_stats(1), _stats(0), n_boot=30, seed=3)
    assert a == b


def test_attack_scores_and_roc():
    stats, oracle = _stats(1), _stats(0)
    member, nonmember = attack_scores(stats, "loss", None)
    assert member.shape == (12,) and nonmember.shape == (12,)
    assert member == pytest.approx([-lp.mean() for lp in stats.forget.logprobs])
    with pytest.raises(ValueError, match="oracle"):
        attack_scores(stats, "reference", None)
    fpr, tpr, auc = roc_curve(stats, oracle)
    assert fpr[0] == 0.0 and tpr[-1] == 1.0
    assert 0.0 <= auc <= 1.0


def test_forget_truth_ratios():
    stats = _stats(2)
    tr = forget_truth_ratios(stats)
    expected = np.exp(stats.forget_para_nll - stats.forget_pert_nll.mean(axis=1))
    assert tr == pytest.approx(expected)
