"""Notebook 04's paper module: soundness bars, criteria table, rankings, claims."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from lib.papers import rethinking


def _setup(target_fact: float = 0.95, oracle_fact: float = 0.05, target_fq: float = 1e-5):
    cols = ["forget_fact_acc", "probe_fact_acc", "forget_quality"]
    return pd.DataFrame(
        [
            [0.0, 0.9, 0.3],
            [target_fact, 0.88, target_fq],
            [oracle_fact, 0.87, 1.0],
            [oracle_fact + 0.02, 0.86, 0.6],
        ],
        index=["base", "target", "retrain", "retrain (seed 2)"],
        columns=cols,
    )


def _summary() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "forget_fact_acc": [0.05, 0.1, 0.9, 0.5, 0.95],
            "paraphrase_fact_acc": [0.0, 0.1, 0.5, 0.3, 0.6],
            "forget_quality": [1.0, 1e-3, 1e-8, 1e-4, 1e-9],
            "model_utility": [0.5, 0.45, 0.6, 0.3, 0.6],
            "mia_auc": [0.5, 0.55, 0.9, 0.7, 0.95],
            "relearn_fact_acc": [0.05, 0.6, 0.9, 0.5, float("nan")],
            "quant4_fact_acc": [0.05, 0.1, 0.9, 0.5, float("nan")],
            "flops": [100.0, 10.0, 1.0, 5.0, 0.0],
        },
        index=["retrain", "m1", "m2", "m3", "target"],
    )


VALID = pd.DataFrame({"valid": [True, False]}, index=["forget_fact_acc", "paraphrase_fact_acc"])


def test_soundness_bars_and_verdict() -> None:
    checks = rethinking.soundness(_setup())
    assert checks["passed"].all()
    assert "sound" in rethinking.verdict(checks)
    bad = rethinking.soundness(_setup(target_fact=0.7, oracle_fact=0.3, target_fq=0.2))
    assert list(bad["passed"]) == [False, True, False, False, True]
    text = rethinking.verdict(bad)
    assert "3 of 5" in text and "0.7" in text


def test_criteria_table_marks_invalid_metrics() -> None:
    table = rethinking.criteria_table(_summary(), VALID)
    para = table[table["metric"] == "paraphrase_fact_acc"]
    assert not para["valid"].any()
    assert table[table["metric"] == "forget_fact_acc"]["valid"].all()
    assert set(table["criterion"]) >= {"1 comparison with retraining", "4 utility"}
    fact = table[(table["metric"] == "forget_fact_acc") & (table["method"] == "m1")].iloc[0]
    assert fact["better"] == "closer to the oracle" and fact["oracle"] == 0.05


def test_rankings_use_closeness_to_the_oracle_and_skip_invalid_numbers() -> None:
    ranks = rethinking.rankings(_summary(), VALID)
    assert list(ranks.index) == ["m1", "m2", "m3"]
    assert "paraphrase_fact_acc" not in ranks.columns  # invalid at this scale
    assert ranks.loc["m1", "forget_fact_acc"] == 1  # |0.1 - 0.05| < |0.9 - 0.05|
    assert ranks.loc["m2", "model_utility"] == 1
    assert ranks.loc["m1", "mia_auc"] == 1


def test_claims_from_the_numbers() -> None:
    summary = _summary()
    ranks = rethinking.rankings(summary, VALID)
    noise = {"forget_fact_acc_diff_high": 0.05, "forget_quality": 0.6}
    found = {c["name"]: c for c in rethinking.claims(summary, ranks, float("nan"), noise)}
    assert found["single_numbers_disagree"]["verdict"] == "not testable at this scale"
    robust = found["forgetting_is_not_robust"]
    assert robust["verdict"] == "held"  # m1 forgets (0.1 <= 0.05 + 0.05) but relearning restores
    assert "m1" in robust["evidence"]["of those restored by an attack"]
    assert found["approximate_is_not_retraining"]["verdict"] == "held"
    tau_claim = rethinking.claims(summary, ranks, 1.0, noise)[0]
    assert tau_claim["verdict"] in {"held", "did not hold"}
    assert "Kendall tau between seeds" in tau_claim["evidence"]
    markdown = rethinking.claims_markdown(rethinking.claims(summary, ranks, float("nan"), noise))
    assert markdown.count("- **") == 3


def test_aggregate_means_over_seeds() -> None:
    frame = pd.DataFrame(
        {"forget_quality": [0.2, 0.4, 1.0], "seed": [0, 1, 0], "message": ["", "", ""]},
        index=["a", "a", "b"],
    )
    mean = rethinking.aggregate(frame)
    assert mean.loc["a", "forget_quality"] == pytest.approx(0.3)
    assert math.isclose(mean.loc["a", "forget_quality_std"], 0.1414, rel_tol=1e-3)


def test_config_validates_before_any_work() -> None:
    kw = dict(
        model="tiny-random",
        dtype="auto",
        data="generated",
        n_authors=10,
        qa_per_author=4,
        data_seed=0,
        forget_split="forget10",
        finetune_recipe="two_phase",
        finetune_epochs=1.0,
        retain_epochs=1.0,
        finetune_lr=1e-3,
        finetune_batch=8,
        finetune_seed=0,
        retain_replay=4,
        general_replay=0.5,
        unlearn_epochs=1.0,
        unlearn_lr=1e-4,
        unlearn_batch=4,
        use_lora=False,
        tune=True,
        tune_lrs=[1e-4],
        tune_grid={},
        tune_split="",
        utility_floor=0.9,
        n_retain_eval=6,
        n_probes=6,
        max_new_tokens=4,
        eval_batch=8,
        n_boot=10,
        relearn_epochs=1.0,
        relearn_lr=1e-4,
        quant_bits=[4],
    )
    cfg = rethinking.config(**kw)
    assert cfg.tuning is not None
    # two phases: the target adds the forget and validation authors to a phase-1 checkpoint,
    # the oracle repeats that last phase without the forget authors
    assert cfg.target.split == "forget10+forget10_val"
    assert cfg.target.start.split == "full-forget10-forget10_val"
    assert cfg.oracle.split == "forget10_val" and cfg.oracle.start == cfg.target.start
    second = rethinking.tofu.oracle_of(cfg.target, 1)
    assert second.start == cfg.target.start and second.train.seed == 1  # last phase retrained
    assert cfg.target.general_replay == 6  # 0.5 x (forget 4 + validation 4 + retain replay 4)
    joint = rethinking.config(**{**kw, "finetune_recipe": "joint"})
    assert joint.target.split == "full" and joint.oracle.split == "retain10"
    with pytest.raises(ValueError, match="finetune_recipe"):
        rethinking.config(**{**kw, "finetune_recipe": "three"})
    with pytest.raises(ValueError, match="quant_bits"):
        rethinking.config(**{**kw, "quant_bits": [5]})
    with pytest.raises(ValueError, match="source"):
        rethinking.config(**{**kw, "data": "wikipedia"})
    with pytest.raises(ValueError, match="lrs"):
        rethinking.config(**{**kw, "tune_lrs": []})
    with pytest.raises(ValueError, match="n_retain = 500"):
        rethinking.check(rethinking.config(**{**kw, "n_retain_eval": 500}), ["ga"], {})
    with pytest.raises(ValueError, match="n_probes = 999"):
        rethinking.check(rethinking.config(**{**kw, "n_probes": 999}), ["ga"], {})
    with pytest.raises(ValueError, match="RelearnSpec"):
        rethinking.config(**{**kw, "relearn_epochs": 0.0})
    with pytest.raises(KeyError, match="not run"):
        rethinking.check(
            rethinking.config(**{**kw, "tune_grid": {"npo": {"beta": [0.1]}}}), ["ga"], {}
        )
    with pytest.raises(KeyError, match="hyperparameter"):
        rethinking.check(
            rethinking.config(**{**kw, "tune_grid": {"npo": {"gamma2": [0.1]}}}), ["npo"], {}
        )
