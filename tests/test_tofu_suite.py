"""Tests of lib.benchmarks.tofu_suite on synthetic statistics (no model)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from lib.benchmarks.tofu_suite import (
    ATTACKS,
    METRIC_HELP,
    EvalSpec,
    SuiteStats,
    attack_scores,
    forget_truth_ratios,
    gap_significant,
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
    """12 forget questions of 4 authors (3 each); the gold value of question i is "City i"."""
    rng = np.random.default_rng(seed)
    answers = [f"The author was born in City {i}." for i in range(n)]
    authors = [f"author {i // 3}" for i in range(n)]
    return SuiteStats(
        forget=_scores(rng, n, forget_shift),
        forget_answers=answers,
        forget_values=[f"City {i}" for i in range(n)],
        forget_authors=authors,
        forget_scored=[True] * (n - 1) + [False],  # the last value is shared: not scored
        forget_para_nll=rng.uniform(1, 3, n),
        forget_pert_nll=rng.uniform(1, 3, (n, 5)),
        # 1 of the 11 scored answers states its fact (question 3); question 11 is not scored
        forget_gen=["No."] * 3
        + ["The author was born in City 3."]
        + ["I don't know."] * 7
        + ["City 11"],
        forget_para_gen=["I don't know."] * n,
        multihop_values=["Tallinn", "Porto"],
        multihop_authors=["author 0", "author 1"],
        multihop_gen=["Tallinn", "Lisbon"],
        combined_forget_values=["City 0"],
        combined_retain_values=["Riga"],
        combined_authors=["author 0"],
        combined_gen=["City 0 and Riga"],
        holdout=_scores(rng, n, -3.0),
        holdout_answers=[f"The holdout author writes genre {i}." for i in range(n)],
        holdout_authors=[f"holdout {i // 3}" for i in range(n)],
        retain_nll=rng.uniform(0.1, 1, 8),
        retain_para_nll=rng.uniform(0.5, 1, 8),
        retain_pert_nll=rng.uniform(2, 3, (8, 5)),
        retain_answers=[f"She studied subject {i}." for i in range(8)],
        retain_values=[f"subject {i}" for i in range(8)],
        retain_authors=[f"retain {i // 2}" for i in range(8)],
        retain_gen=[f"She studied subject {i}." for i in range(8)],
        probe_nll=rng.uniform(0.1, 1, 6),
        probe_pert_nll=rng.uniform(2, 4, (6, 3)),
        probe_answers=["Paris", "Berlin", "Rome", "Madrid", "Lisbon", "Vienna"],
        probe_aliases=[["Paris"], ["Berlin"], ["Rome"], ["Madrid"], ["Lisbon"], ["Vienna", "Wien"]],
        probe_gen=["Paris", "Berlin", "Rome", "no", "no", "Wien"],
        eval_tokens=1234,
    )


SPEC = EvalSpec(n_boot=20)


def test_summarize_returns_the_documented_keys():
    oracle = _stats(0)
    out = summarize(_stats(1), oracle, SPEC)
    assert set(METRIC_HELP) <= set(out)
    for attack in ATTACKS:
        assert f"mia_{attack}_auc" in out and f"mia_{attack}_tpr1" in out
    for key in ("mia_auc_low", "mia_auc_high", "forget_ks", "retain_prob", "probe_rouge"):
        assert key in out
    for key in ("forget_fact_acc", "model_utility", "forget_quality", "paraphrase_fact_acc"):
        assert f"{key}_low" in out and f"{key}_high" in out
    assert all(isinstance(v, float) for v in out.values())
    assert 0.0 <= out["forget_quality"] <= 1.0
    assert out["mia_auc"] == out["mia_min_k_auc"]  # Min-K% is the headline attack
    assert out["mia_auc_low"] <= out["mia_auc"] <= out["mia_auc_high"]
    assert out["forget_n"] == 12


def test_fact_accuracies_by_hand():
    out = summarize(_stats(1), _stats(0), SPEC)
    assert out["forget_fact_acc"] == pytest.approx(1 / 11)  # the shared-value row is left out
    assert out["paraphrase_fact_acc"] == 0.0
    assert out["multihop_fact_acc"] == 0.5
    assert out["combined_forget_fact_acc"] == 1.0 and out["combined_retain_fact_acc"] == 1.0
    assert out["retain_fact_acc"] == 1.0
    assert out["probe_fact_acc"] == pytest.approx(4 / 6)  # "Wien" is an accepted alias
    assert out["forget_fact_acc_low"] <= out["forget_fact_acc"] <= out["forget_fact_acc_high"]
    assert out["forget_fact_acc_high"] <= 1 / 3  # one author of four knows one fact of three
    assert out["probe_rouge"] == pytest.approx(0.5)
    assert out["retain_rouge"] == 1.0
    assert 0.0 < out["model_utility"] <= 1.0


def test_summarize_oracle_against_itself():
    oracle = _stats(0)
    out = summarize(oracle, oracle, SPEC)
    assert out["forget_quality"] == 1.0
    assert out["forget_ks"] == 0.0
    assert out["tr_wilcoxon_p"] == 1.0
    assert out["privleak"] == 0.0
    assert out["mia_reference_auc"] == 0.5  # reference attack against itself: all ties


def test_summarize_memorised_forget_set_leaks():
    oracle = _stats(0)
    target = copy.deepcopy(oracle)
    rng = np.random.default_rng(5)
    target.forget = _scores(rng, 12, -0.2)  # forget answers far likelier than holdout
    target.forget_para_nll = np.full(12, 0.05)  # and preferred over every perturbed answer
    out = summarize(target, oracle, SPEC)
    assert out["mia_auc"] == 1.0
    assert out["privleak"] < -50  # under-unlearned: strongly negative
    assert out["forget_quality"] < 0.05
    assert out["tr_wilcoxon_p"] < 0.05
    assert out["forget_prob"] > summarize(oracle, oracle, SPEC)["forget_prob"]


def test_memorisation_and_min_k_ignore_the_closing_eos_by_default():
    stats = _stats(1)
    for lp, correct in zip(stats.forget.logprobs, stats.forget.correct, strict=True):
        correct[:] = True  # the answer text is memorised ...
        lp[-1], correct[-1] = -20.0, False  # ... but not its closing EOS
    without = summarize(stats, _stats(0), SPEC)
    with_eos = summarize(stats, _stats(0), EvalSpec(n_boot=20, score_eos=True))
    assert without["exact_memorization"] == 1.0
    assert with_eos["exact_memorization"] == pytest.approx(5 / 6)
    assert (
        with_eos["mia_min_k_auc"] != without["mia_min_k_auc"]
        or with_eos["mia_loss_auc"] != without["mia_loss_auc"]
    )


def test_without_multihop_the_fact_accuracy_is_nan():
    stats = _stats(1)
    stats.multihop_gen, stats.multihop_values, stats.multihop_authors = [], [], []
    assert math.isnan(summarize(stats, _stats(0), SPEC)["multihop_fact_acc"])


def test_summarize_is_deterministic_in_the_bootstrap_seed():
    a = summarize(_stats(1), _stats(0), SPEC, seed=3)
    b = summarize(_stats(1), _stats(0), SPEC, seed=3)
    assert a == b or all((math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in a)


def test_gap_significance():
    oracle = _stats(0)
    knows = copy.deepcopy(oracle)
    knows.forget_gen = [f"born in City {i}" for i in range(12)]
    diff, low, high = gap_significant(knows, oracle, "forget", n_boot=50)
    assert diff == pytest.approx(10 / 11)  # 1/11 -> 11/11 of the scored questions
    assert low > 0  # significant
    same = gap_significant(oracle, oracle, "forget", n_boot=50)
    assert same == (0.0, 0.0, 0.0)


def test_attack_scores_and_roc():
    stats, oracle = _stats(1), _stats(0)
    member, nonmember = attack_scores(stats, "loss", None, score_eos=True)
    assert member.shape == (12,) and nonmember.shape == (12,)
    assert member == pytest.approx([-lp.mean() for lp in stats.forget.logprobs])
    short, _ = attack_scores(stats, "loss", None)  # answer text only: the last token dropped
    assert short == pytest.approx([-lp[:-1].mean() for lp in stats.forget.logprobs])
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
