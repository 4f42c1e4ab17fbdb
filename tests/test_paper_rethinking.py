"""Notebook 04's paper module: soundness bars, criteria scores, rankings."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from lib.papers import rethinking as framework


def _setup(target_rouge: float = 0.8, oracle_rouge: float = 0.3, target_fq: float = 1e-4):
    cols = ["forget_rouge", "forget_quality", "paraphrase_rouge", "multihop_rouge", "model_utility"]
    return pd.DataFrame(
        [[target_rouge, target_fq, 0.7, 0.6, 0.5], [oracle_rouge, 1.0, 0.3, 0.2, 0.5]],
        index=["target", "retrain"],
        columns=cols,
    )


def _summary() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "forget_quality": [1.0, 1e-5, 1e-12],
            "paraphrase_rouge": [0.3, 0.5, 0.7],
            "multihop_rouge": [0.2, 0.4, 0.6],
            "relearn_recovery": [0.0, 0.5, float("nan")],
            "privleak": [0.0, -50.0, -100.0],
            "model_utility": [0.5, 0.25, 0.6],
            "flops": [100.0, 10.0, 0.0],
            "forget_rouge": [0.3, 0.5, 0.8],
            "mia_auc": [0.5, 0.7, 0.95],
        },
        index=["retrain", "m1", "m2"],
    )


def test_soundness_bars_and_verdict() -> None:
    checks = framework.soundness(_setup())
    assert checks["passed"].all()
    assert "sound" in framework.verdict(checks)
    bad = framework.soundness(_setup(target_rouge=0.5, oracle_rouge=0.45))
    assert list(bad["passed"]) == [False, False, True]
    text = framework.verdict(bad)
    assert "2 of 3" in text and "0.45" in text


def test_criteria_scores_are_bounded_and_follow_the_formulas() -> None:
    scores = framework.criteria_scores(_summary(), _setup())
    assert ((scores.fillna(0) >= 0) & (scores.fillna(0) <= 1)).all().all()
    assert scores.loc["retrain", "retraining"] == 1.0
    assert scores.loc["m1", "retraining"] == pytest.approx(0.5)  # FQ 1e-5 -> 1 - 5/10
    assert scores.loc["m2", "retraining"] == 0.0  # FQ <= 1e-10
    assert scores.loc["m1", "detection"] == pytest.approx(0.5)  # |privleak| 50
    assert scores.loc["m1", "utility"] == pytest.approx(0.5)  # MU / MU_target
    assert scores.loc["m1", "efficiency"] == pytest.approx(0.9)  # 1 - 10/100
    assert scores.loc["retrain", "efficiency"] == 0.0
    # hard in-scope of m2: paraphrase and multi-hop at the target's level -> 0, no relearn
    assert scores.loc["m2", "hard in-scope"] == pytest.approx(0.0)
    assert scores.loc["retrain", "hard in-scope"] == pytest.approx(1.0)


def test_rankings_and_findings() -> None:
    ranks = framework.rankings(_summary())
    assert list(ranks.index) == ["m1", "m2"]  # retrain is the reference, not ranked
    assert ranks.loc["m1", "forget_rouge"] == 1 and ranks.loc["m2", "model_utility"] == 1
    assert ranks.loc["m1", "mia_auc_gap"] == 1  # |0.7 - 0.5| < |0.95 - 0.5|
    text = framework.ranking_findings(ranks)
    assert "forget_rouge → **m1**" in text and "Kendall" in text


def test_aggregate_means_over_seeds() -> None:
    frame = pd.DataFrame(
        {"forget_quality": [0.2, 0.4, 1.0], "seed": [0, 1, 0], "message": ["", "", ""]},
        index=["a", "a", "b"],
    )
    mean = framework.aggregate(frame)
    assert mean.loc["a", "forget_quality"] == pytest.approx(0.3)
    assert math.isclose(mean.loc["a", "forget_quality_std"], 0.1414, rel_tol=1e-3)
