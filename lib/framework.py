"""The evaluation framework of Liu et al. 2024 ("Rethinking Machine Unlearning for LLMs") as
numbers: soundness checks of the setup, the five criteria as scores in [0, 1], summary tables.

The five criteria (section "evaluation" of the survey) and how each becomes a score here, where
1 = as good as retraining and 0 = as bad as not unlearning (or worse):
1. comparison with retraining: forget quality (KS p-value vs the oracle), log-scaled:
   clip(1 + log10(FQ) / 10, 0, 1), so FQ = 1 -> 1, 1e-5 -> 0.5, <= 1e-10 -> 0;
2. hard in-scope examples: mean over paraphrased, multi-hop and relearning-attack ROUGE of the
   fraction of the target-to-oracle gap closed, clip((R_target - R) / (R_target - R_oracle));
3. training-data detection: clip(1 - |PrivLeak| / 100) (PrivLeak vs the oracle's Min-K% AUC);
4. utility: model utility relative to the target, clip(MU / MU_target);
5. efficiency: clip(1 - FLOPs / FLOPs_retrain) (the oracle's fine-tuning cost).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lib.suite import forget_truth_ratios, roc_curve

CRITERIA = ("retraining", "hard in-scope", "detection", "utility", "efficiency")
HEADLINE = (
    "forget_quality",
    "model_utility",
    "forget_rouge",
    "mia_auc",
    "relearn_recovery",
    "flops",
    "seconds",
)


def _clip(x: float) -> float:
    return float(np.clip(x, 0.0, 1.0)) if math.isfinite(x) else float("nan")


def _gap_closed(value: float, target: float, oracle: float) -> float:
    gap = target - oracle
    if not math.isfinite(value) or abs(gap) < 1e-6:
        return float("nan")
    return _clip((target - value) / gap)


def soundness(
    setup: pd.DataFrame,
    min_target_rouge: float = 0.7,
    max_oracle_rouge: float = 0.4,
    max_target_fq: float = 0.05,
) -> pd.DataFrame:
    """The three checks that the benchmark can measure unlearning at all (one row each)."""
    rows = [
        (
            "target learned the forget facts",
            "forget ROUGE-L recall of the target",
            setup.loc["target", "forget_rouge"],
            f">= {min_target_rouge}",
            setup.loc["target", "forget_rouge"] >= min_target_rouge,
        ),
        (
            "oracle never saw them",
            "forget ROUGE-L recall of the retain oracle",
            setup.loc["retrain", "forget_rouge"],
            f"<= {max_oracle_rouge}",
            setup.loc["retrain", "forget_rouge"] <= max_oracle_rouge,
        ),
        (
            "target is distinguishable from the oracle",
            "forget quality of the target",
            setup.loc["target", "forget_quality"],
            f"< {max_target_fq}",
            setup.loc["target", "forget_quality"] < max_target_fq,
        ),
    ]
    return pd.DataFrame(rows, columns=["check", "measured", "value", "bar", "passed"])


def verdict(checks: pd.DataFrame) -> str:
    """One markdown paragraph stating plainly which soundness bars hold (from the numbers)."""
    failed = checks[~checks["passed"]]
    if failed.empty:
        return (
            "**The setup is sound:** every bar holds, so differences between methods below "
            "measure unlearning, not an untrained target or a leaky oracle."
        )
    items = "; ".join(
        f"{r.check}: {r.measured} = {r.value:.3g} (bar {r.bar})" for r in failed.itertuples()
    )
    return (
        f"**The setup does not meet {len(failed)} of {len(checks)} bars at this scale:** "
        f"{items}. Read the method comparison below with this in mind."
    )


def aggregate(results: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per method (and `<col>_std` columns when there is more than one seed)."""
    numeric = results.drop(columns=["seed", "message"], errors="ignore").select_dtypes("number")
    grouped = numeric.groupby(level=0, sort=False)
    mean = grouped.mean()
    if results.get("seed") is not None and results["seed"].nunique() > 1:
        mean = mean.join(grouped.std().add_suffix("_std"))
    return mean


def criteria_scores(summary: pd.DataFrame, setup: pd.DataFrame) -> pd.DataFrame:
    """The five criteria as scores in [0, 1] (higher = closer to retraining), one row per
    method; see the module docstring for each formula."""
    target, oracle = setup.loc["target"], setup.loc["retrain"]
    retrain_flops = summary.loc["retrain", "flops"] if "retrain" in summary.index else np.nan
    rows = {}
    for method, r in summary.iterrows():
        hard = [
            _gap_closed(
                r["paraphrase_rouge"], target["paraphrase_rouge"], oracle["paraphrase_rouge"]
            ),
            _gap_closed(r["multihop_rouge"], target["multihop_rouge"], oracle["multihop_rouge"]),
        ]
        if math.isfinite(r.get("relearn_recovery", np.nan)):
            hard.append(_clip(1.0 - r["relearn_recovery"]))
        hard = [h for h in hard if math.isfinite(h)]
        rows[method] = {
            "retraining": _clip(1.0 + math.log10(max(r["forget_quality"], 1e-300)) / 10.0),
            "hard in-scope": float(np.mean(hard)) if hard else float("nan"),
            "detection": _clip(1.0 - abs(r["privleak"]) / 100.0),
            "utility": _clip(r["model_utility"] / target["model_utility"])
            if target["model_utility"] > 0
            else float("nan"),
            "efficiency": _clip(1.0 - r["flops"] / retrain_flops)
            if retrain_flops and retrain_flops > 0
            else float("nan"),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def headline_records(summary: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per method: the headline numbers that go to records.json."""
    return {
        method: {k: float(row[k]) for k in HEADLINE if k in row}
        for method, row in summary.iterrows()
    }


def generations(study, methods: list[str], n: int = 4) -> pd.DataFrame:
    """Side-by-side greedy answers to the first `n` forget questions: target, methods, oracle."""
    target, oracle = study.target_stats(), study.oracle_stats()
    rows = []
    for i, qa in enumerate(study.forget[:n]):
        row = {"question": qa.question, "true answer": qa.answer, "target": target.forget_gen[i]}
        for m in methods:
            if m in study.results and m != "retrain":
                row[m] = study.results[m].stats.forget_gen[i]
        row["retrain (oracle)"] = oracle.forget_gen[i]
        rows.append(row)
    return pd.DataFrame(rows)


def truth_ratio_samples(study, methods: list[str]) -> dict[str, np.ndarray]:
    """Per-question forget truth ratios: target, each method (first seed), oracle."""
    samples = {"target": forget_truth_ratios(study.target_stats())}
    for m in methods:
        if m != "retrain":
            samples[m] = forget_truth_ratios(study.results[m].stats)
    samples["retrain (oracle)"] = forget_truth_ratios(study.oracle_stats())
    return samples


def roc_curves(study, methods: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """Min-K% ROC curve (forget = members vs holdout) of each method (first seed)."""
    oracle = study.oracle_stats()
    return {m: roc_curve(study.results[m].stats, oracle) for m in methods}


def soundness_record(checks: pd.DataFrame) -> dict[str, dict[str, object]]:
    """The soundness checks as a JSON-ready mapping for records.json."""
    return {
        r.check: {"value": float(r.value), "bar": r.bar, "passed": bool(r.passed)}
        for r in checks.itertuples()
    }


def long_format(df: pd.DataFrame, var_name: str, value_name: str) -> pd.DataFrame:
    """Method-indexed wide table -> long (method, var_name, value_name) for grouped bars."""
    return df.reset_index(names="method").melt(
        id_vars="method", var_name=var_name, value_name=value_name
    )


#: Single numbers a paper might report alone, and which direction is better.
SINGLE_NUMBERS = {
    "forget_rouge": "lower",
    "forget_quality": "higher",
    "mia_auc_gap": "lower",
    "model_utility": "higher",
    "relearn_recovery": "lower",
}


def rankings(summary: pd.DataFrame) -> pd.DataFrame:
    """Rank of each unlearning method (retrain and target excluded) by each single number;
    1 = best. `mia_auc_gap` = |AUC - oracle AUC|."""
    frame = summary.drop(index=["target", "retrain"], errors="ignore").copy()
    oracle_auc = summary.loc["retrain", "mia_auc"] if "retrain" in summary.index else 0.5
    frame["mia_auc_gap"] = (frame["mia_auc"] - oracle_auc).abs()
    ranks = {
        name: frame[name].rank(ascending=(better == "lower"), method="min")
        for name, better in SINGLE_NUMBERS.items()
    }
    return pd.DataFrame(ranks).astype("Int64")


def ranking_findings(ranks: pd.DataFrame) -> str:
    """Markdown: which method each single number crowns, and how much the rankings agree
    (Kendall's tau between every pair of single numbers), computed from the table."""
    from scipy.stats import kendalltau

    winners = "; ".join(
        f"{name} → **{', '.join(ranks.index[ranks[name] == 1])}**" for name in ranks.columns
    )
    taus = []
    columns = list(ranks.columns)
    for i, a in enumerate(columns):
        for b in columns[i + 1 :]:
            valid = ranks[[a, b]].dropna()
            if len(valid) > 2:
                taus.append(kendalltau(valid[a], valid[b]).statistic)
    mean_tau = float(np.nanmean(taus)) if taus else float("nan")
    return (
        f"Best method by each single number: {winners}. Mean Kendall's tau between the "
        f"rankings of different single numbers: {mean_tau:.2f} (1 = they always agree, "
        f"0 = unrelated, < 0 = they disagree)."
    )
