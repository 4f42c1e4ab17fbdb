"""Notebook 04: the evaluation framework of Liu et al. 2024 ("Rethinking Machine Unlearning for
LLMs") applied to one method per family of its taxonomy, on the TOFU-style benchmark
(`lib.benchmarks.tofu`): configuration from the notebook's parameters, the sweep, soundness
checks of the setup, the five criteria as scores in [0, 1], rankings and summary tables.

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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lib import methods as method_registry
from lib import runner
from lib.benchmarks import tofu
from lib.benchmarks.tofu_suite import (
    METRIC_HELP,
    EvalSpec,
    SuiteStats,
    forget_truth_ratios,
    roc_curve,
)
from lib.specs import LoraSpec, ModelSpec, TrainSpec

CRITERIA = ("retraining", "hard in-scope", "detection", "utility", "efficiency")
__all__ = ["METRIC_HELP", "Config", "Sweep", "config", "setup", "sweep"]

HEADLINE = (
    "forget_quality",
    "model_utility",
    "forget_rouge",
    "mia_auc",
    "relearn_recovery",
    "flops",
    "seconds",
)


@dataclass(frozen=True)
class Config:
    """Everything notebook 04 runs, built from its parameters cell (`config(...)`)."""

    target: tofu.FinetuneSpec
    unlearn: TrainSpec
    evaluation: EvalSpec
    relearn: tofu.RelearnSpec | None

    @property
    def oracle(self) -> tofu.FinetuneSpec:
        return tofu.oracle_of(self.target)


def config(
    *,
    model: str,
    dtype: str,
    n_authors: int,
    qa_per_author: int,
    data_seed: int,
    forget_split: str,
    finetune_epochs: float,
    finetune_lr: float,
    finetune_batch: int,
    unlearn_epochs: float,
    unlearn_lr: float,
    unlearn_batch: int,
    use_lora: bool,
    n_retain_eval: int,
    n_probes: int,
    max_new_tokens: int,
    eval_batch: int,
    relearn_epochs: float,
    relearn_lr: float,
) -> Config:
    """The notebook's parameters as specs (each validated: a bad value raises before work)."""
    lora = LoraSpec() if use_lora else None
    data = tofu.DataSpec(n_authors, qa_per_author, data_seed, forget_split)
    finetune = TrainSpec(
        epochs=finetune_epochs, lr=finetune_lr, batch_size=finetune_batch, lora=lora
    )
    return Config(
        target=tofu.FinetuneSpec(ModelSpec(model, dtype=dtype), data, "full", finetune),
        unlearn=TrainSpec(
            epochs=unlearn_epochs, lr=unlearn_lr, batch_size=unlearn_batch, lora=lora
        ),
        evaluation=EvalSpec(n_retain_eval, n_probes, max_new_tokens, eval_batch),
        relearn=tofu.RelearnSpec(relearn_epochs, relearn_lr),
    )


def check(cfg: Config, methods: Sequence[str], hparams: dict[str, dict[str, Any]]) -> None:
    """Every method name and hyperparameter, validated before any work (KeyError/ValueError
    naming the allowed values)."""
    tofu.validate(methods, hparams, cfg.target.model)


def taxonomy() -> pd.DataFrame:
    """The survey's taxonomy of every registered method (one row each)."""
    return method_registry.taxonomy()


def split_hashes(cfg: Config) -> dict[str, str]:
    """Content hashes of every benchmark split (for the records)."""
    return tofu.benchmark_data(cfg.target.data).split_hashes


def setup(cfg: Config) -> pd.DataFrame:
    """Base, target and oracle on the suite: the soundness table (one row each)."""
    return tofu.setup_table(cfg.target, cfg.evaluation)


def probes_filtered(cfg: Config) -> bool:
    """Whether the real-world probes were filtered to those the base model knows."""
    return tofu.probes(cfg.target.model, cfg.evaluation)[1]


@dataclass(frozen=True)
class Sweep:
    """Every unlearning run of the notebook, finished: the table (one row per method and seed)
    and the runs themselves, plus the target's and the oracle's statistics."""

    table: pd.DataFrame
    runs: dict[tuple[str, int], tofu.RunResult]
    methods: tuple[str, ...]
    target: SuiteStats
    oracle: SuiteStats
    forget: list[dict[str, Any]]

    def first_seed(self, method: str) -> tofu.RunResult:
        """The run of `method` with the first seed (the one figures show)."""
        seeds = sorted(seed for (name, seed) in self.runs if name == method)
        return self.runs[(method, seeds[0])]


def sweep(
    cfg: Config,
    methods: Sequence[str],
    hparams: dict[str, dict[str, Any]] | None = None,
    seeds: Sequence[int] | None = None,
) -> Sweep:
    """Run (or read from the cache) every method for every unlearning seed."""
    specs = tofu.unlearn_specs(
        cfg.target, methods, cfg.unlearn, cfg.evaluation, cfg.relearn, hparams, seeds
    )
    results = runner.sweep(specs, desc="unlearning runs")
    return Sweep(
        table=tofu.results_table(results, methods),
        runs={(r.method, r.seed): r for r in results},
        methods=tuple(methods),
        target=tofu.finetuned_stats(cfg.target, cfg.evaluation),
        oracle=tofu.finetuned_stats(cfg.oracle, cfg.evaluation),
        forget=list(tofu.benchmark_data(cfg.target.data).forget),
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
    numeric = results.drop(columns=["seed", "message", "status"], errors="ignore")
    numeric = numeric.select_dtypes("number")
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


def generations(result: Sweep, n: int = 4) -> pd.DataFrame:
    """Side-by-side greedy answers to the first `n` forget questions: target, methods, oracle."""
    rows = []
    for i, qa in enumerate(result.forget[:n]):
        row = {
            "question": qa["question"],
            "true answer": qa["answer"],
            "target": result.target.forget_gen[i],
        }
        for m in result.methods:
            if m != "retrain":
                row[m] = result.first_seed(m).stats.forget_gen[i]
        row["retrain (oracle)"] = result.oracle.forget_gen[i]
        rows.append(row)
    return pd.DataFrame(rows)


def truth_ratio_samples(result: Sweep) -> dict[str, np.ndarray]:
    """Per-question forget truth ratios: target, each method (first seed), oracle."""
    samples = {"target": forget_truth_ratios(result.target)}
    for m in result.methods:
        if m != "retrain":
            samples[m] = forget_truth_ratios(result.first_seed(m).stats)
    samples["retrain (oracle)"] = forget_truth_ratios(result.oracle)
    return samples


def roc_curves(result: Sweep) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """Min-K% ROC curve (forget = members vs holdout) of each method (first seed)."""
    return {m: roc_curve(result.first_seed(m).stats, result.oracle) for m in result.methods}


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
