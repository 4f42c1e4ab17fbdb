"""Notebook 04: the evaluation framework of Liu et al. 2024 ("Rethinking Machine Unlearning for
LLMs") applied to one method per family of its taxonomy, on the TOFU-style benchmark
(`lib.benchmarks.tofu`).

The protocol, as functions that return DataFrames or finished results:

1. `setup`: base model, target, retain oracle and a second oracle (another fine-tuning seed) on
   the suite; `soundness` checks that the setup can measure unlearning at all, `noise_floor`
   says how far apart two exact unlearnings are, and `validity` marks every forgetting number
   whose target-oracle gap is not significant (those are left out of the criteria and rankings).
2. `tune`: every trainable method chooses its learning rate, epochs (and loss coefficient) on a
   validation request (`lib.benchmarks.tofu_tuning`); `sweep` then runs the choices on the test
   forget split, with the relearning and quantization attacks.
3. `criteria_table`: the survey's five criteria as the raw metrics behind them, with their
   author-level confidence intervals (no ad-hoc normalisation); `rankings` by single numbers
   with bootstrap rank intervals, and how much rankings by different numbers agree, against the
   agreement between unlearning seeds (the noise reference).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from lib import methods as method_registry
from lib import runner
from lib.benchmarks import tofu, tofu_tuning
from lib.benchmarks.tofu_suite import (
    METRIC_HELP,
    EvalSpec,
    SuiteStats,
    fact_vectors,
    forget_truth_ratios,
    gap_significant,
    roc_curve,
)
from lib.methods import GradientMethod
from lib.metrics import forget_quality_test
from lib.metrics import stats as st
from lib.specs import LoraSpec, ModelSpec, TrainSpec

__all__ = ["METRIC_HELP", "Config", "Sweep", "config", "setup", "sweep"]

# rows drawn as references (greys, stars) in every figure: the model before and the oracle
REFERENCE_ROWS = ("target", "retrain")

#: The survey's five criteria and the measured numbers behind each, with their direction:
#: "lower"/"higher" is better, or a number the metric should be close to (the oracle's value
#: is used where it is "oracle").
CRITERIA: dict[str, tuple[tuple[str, str], ...]] = {
    "1 comparison with retraining": (("forget_quality", "higher"), ("tr_wilcoxon_p", "higher")),
    "2 hard in-scope examples": (
        ("forget_fact_acc", "oracle"),
        ("paraphrase_fact_acc", "oracle"),
        ("multihop_fact_acc", "oracle"),
        ("combined_forget_fact_acc", "oracle"),
        ("relearn_fact_acc", "lower"),
        ("quant4_fact_acc", "lower"),
    ),
    "3 training-data detection": (("mia_auc", "oracle"), ("privleak", "0")),
    "4 utility": (
        ("model_utility", "higher"),
        ("combined_retain_fact_acc", "higher"),
        ("probe_fact_acc", "higher"),
    ),
    "5 efficiency": (("flops", "lower"), ("seconds", "lower"), ("inference_overhead", "lower")),
}
#: Metrics recorded per method in records.json (with `_low`/`_high` where there is a CI).
HEADLINE = (
    "forget_fact_acc",
    "paraphrase_fact_acc",
    "forget_quality",
    "forget_ks",
    "model_utility",
    "mia_auc",
    "relearn_fact_acc",
    "quant4_fact_acc",
    "flops",
    "seconds",
)
#: Probe sets whose target-oracle gap decides whether a forgetting metric is valid.
VALIDITY_SETS = ("forget", "paraphrase", "multihop", "combined_forget")


@dataclass(frozen=True)
class Tuning:
    """How methods choose their hyperparameters (see `lib.benchmarks.tofu_tuning`)."""

    lrs: tuple[float, ...]  # learning rates tried on the validation request
    max_epochs: float  # epochs of each validation run (scored after every epoch)
    grid: tuple[tuple[str, tuple[tuple[str, tuple[Any, ...]], ...]], ...]  # method -> hp grid
    split: str  # validation forget split ("" = the test split's `_val` twin)
    utility_floor: float  # fraction of the target's validation utility to keep


@dataclass(frozen=True)
class Config:
    """Everything notebook 04 runs, built from its parameters cell (`config(...)`)."""

    target: tofu.FinetuneSpec
    unlearn: TrainSpec
    evaluation: EvalSpec
    relearn: tofu.RelearnSpec | None
    tuning: Tuning | None  # None = every method runs with `unlearn` as given
    quant_bits: tuple[int, ...]

    @property
    def oracle(self) -> tofu.FinetuneSpec:
        return tofu.oracle_of(self.target)


def config(
    *,
    model: str,
    dtype: str,
    data: str,
    n_authors: int,
    qa_per_author: int,
    data_seed: int,
    forget_split: str,
    finetune_recipe: str,
    finetune_epochs: float,
    retain_epochs: float,
    finetune_lr: float,
    finetune_batch: int,
    finetune_seed: int,
    retain_replay: int,
    general_replay: int,
    unlearn_epochs: float,
    unlearn_lr: float,
    unlearn_batch: int,
    use_lora: bool,
    tune: bool,
    tune_lrs: Sequence[float],
    tune_grid: dict[str, dict[str, Sequence[Any]]],
    tune_split: str,
    utility_floor: float,
    n_retain_eval: int,
    n_probes: int,
    max_new_tokens: int,
    eval_batch: int,
    n_boot: int,
    relearn_epochs: float,
    relearn_lr: float,
    quant_bits: Sequence[int],
) -> Config:
    """The notebook's parameters as specs (each validated: a bad value raises before work)."""
    lora = LoraSpec() if use_lora else None
    source, _, path = data.partition(":")
    data_spec = tofu.DataSpec(
        n_authors, qa_per_author, data_seed, forget_split, source=source, path=path
    )
    target = _target(
        ModelSpec(model, dtype=dtype),
        data_spec,
        finetune_recipe,
        TrainSpec(
            epochs=finetune_epochs,
            lr=finetune_lr,
            batch_size=finetune_batch,
            seed=finetune_seed,
            lora=lora,
        ),
        retain_epochs,
        retain_replay,
        general_replay,
        tune_split if tune else "",
    )
    unknown_bits = set(quant_bits) - {2, 3, 4, 8}
    if unknown_bits:
        raise ValueError(f"quant_bits must be among (2, 3, 4, 8), got {sorted(unknown_bits)}")
    tuning = None
    if tune and (not tune_lrs or any(lr <= 0 for lr in tune_lrs)):
        raise ValueError(f"tune_lrs must be positive learning rates, got {list(tune_lrs)!r}")
    if tune and not 0 < utility_floor <= 1:
        raise ValueError(f"utility_floor must be in (0, 1], got {utility_floor}")
    if tune:
        grid = tuple(
            sorted(
                (m, tuple(sorted((k, tuple(v)) for k, v in g.items())))
                for m, g in tune_grid.items()
            )
        )
        tuning = Tuning(tuple(tune_lrs), unlearn_epochs, grid, tune_split, utility_floor)
    return Config(
        target=target,
        unlearn=TrainSpec(
            epochs=unlearn_epochs, lr=unlearn_lr, batch_size=unlearn_batch, lora=lora
        ),
        evaluation=EvalSpec(n_retain_eval, n_probes, max_new_tokens, eval_batch, n_boot=n_boot),
        relearn=tofu.RelearnSpec(relearn_epochs, relearn_lr),
        tuning=tuning,
        quant_bits=tuple(quant_bits),
    )


RECIPES = ("two_phase", "joint")


def _target(
    model: ModelSpec,
    data: tofu.DataSpec,
    recipe: str,
    train: TrainSpec,
    retain_epochs: float,
    retain_replay: int,
    general_replay: float,
    tune_split: str,
) -> tofu.FinetuneSpec:
    """The target's fine-tuning recipe.

    `joint` (TOFU): one pass over every author. `two_phase` (cheaper exact unlearning, as
    SISA's slices): phase 1 learns every author except the forget and validation authors;
    phase 2 continues from it on the forget and validation authors with a replay of retain
    questions. The oracle repeats phase 2 without the forget authors from the same checkpoint,
    so retraining costs one phase-2 run. General prompts answered by the base model itself are
    replayed in every phase (`tofu.general_rows`), `general_replay` times as many as the
    phase's benchmark rows.
    """
    if recipe not in RECIPES:
        raise ValueError(f"finetune_recipe must be one of {RECIPES}, got {recipe!r}")
    if retain_replay < 0 or general_replay < 0:
        raise ValueError("retain_replay and general_replay must be >= 0")

    def replay(n_rows: int) -> int:
        return int(round(general_replay * n_rows))

    if recipe == "joint":
        full = len(tofu.split_rows(data, "full"))
        return tofu.FinetuneSpec(model, data, "full", train, general_replay=replay(full))
    validation = tune_split or data.validation.forget_split
    first = f"full-{data.forget_split}-{validation}"
    last = f"{data.forget_split}+{validation}"
    phase1 = tofu.FinetuneSpec(
        model,
        data,
        first,
        replace(train, epochs=retain_epochs),
        general_replay=replay(len(tofu.split_rows(data, first))),
    )
    return tofu.FinetuneSpec(
        model,
        data,
        last,
        train,
        start=phase1,
        retain_replay=retain_replay,
        general_replay=replay(len(tofu.split_rows(data, last)) + retain_replay),
    )


def check(cfg: Config, methods: Sequence[str], hparams: dict[str, dict[str, Any]]) -> None:
    """Every method name and hyperparameter (fixed and tuning grid), validated before any work
    (KeyError/ValueError naming the allowed values)."""
    tofu.validate(methods, hparams, cfg.target.model)
    tofu.check_sizes(cfg.target.data, cfg.evaluation)
    if cfg.tuning is not None:
        unknown = {m for m, _ in cfg.tuning.grid} - set(methods)
        if unknown:
            raise KeyError(f"tuning grid given for methods not run: {sorted(unknown)}")
        for method, grid in cfg.tuning.grid:
            for name, values in grid:
                for value in values:
                    method_registry.get(method, **{**hparams.get(method, {}), name: value})


def taxonomy() -> pd.DataFrame:
    """The survey's taxonomy of every registered method (one row each)."""
    return method_registry.taxonomy()


def split_hashes(cfg: Config) -> dict[str, str]:
    """Content hashes of every benchmark split (for the records)."""
    return tofu.benchmark_data(cfg.target.data).split_hashes


# --------------------------------------------------------------------------- is the setup sound
def setup(cfg: Config) -> pd.DataFrame:
    """Base, target, oracle and second oracle on the suite (one row each, vs the oracle)."""
    return tofu.setup_table(cfg.target, cfg.evaluation)


def probes_filtered(cfg: Config) -> bool:
    """Whether the real-world probes were filtered to those the base model knows."""
    return tofu.probes(cfg.target.model, cfg.evaluation)[1]


def soundness(
    setup_table: pd.DataFrame,
    min_target_fact_acc: float = 0.9,
    utility_tolerance: float = 0.1,
    oracle_margin: float = 0.1,
    max_target_fq: float = 1e-3,
    min_oracle_fq: float = 0.05,
) -> pd.DataFrame:
    """The bars the setup must meet to measure unlearning at all (one row each)."""
    base, target = setup_table.loc["base"], setup_table.loc["target"]
    oracle, oracle2 = setup_table.loc["retrain"], setup_table.loc["retrain (seed 2)"]
    rows = [
        (
            "the target learned the forget facts",
            "forget fact accuracy of the target",
            target["forget_fact_acc"],
            f">= {min_target_fact_acc}",
            target["forget_fact_acc"] >= min_target_fact_acc,
        ),
        (
            "fine-tuning kept general knowledge",
            "probe fact accuracy, target / base",
            target["probe_fact_acc"] / base["probe_fact_acc"]
            if base["probe_fact_acc"] > 0
            else float("nan"),
            f">= {1 - utility_tolerance:.2f}",
            base["probe_fact_acc"] > 0
            and target["probe_fact_acc"] >= (1 - utility_tolerance) * base["probe_fact_acc"],
        ),
        (
            "the oracle never learned them",
            "forget fact accuracy of the oracle (base model's + margin)",
            oracle["forget_fact_acc"],
            f"<= {base['forget_fact_acc'] + oracle_margin:.3f}",
            oracle["forget_fact_acc"] <= base["forget_fact_acc"] + oracle_margin,
        ),
        (
            "the target is distinguishable from the oracle",
            "forget quality of the target",
            target["forget_quality"],
            f"< {max_target_fq:g}",
            target["forget_quality"] < max_target_fq,
        ),
        (
            "two exact unlearnings are not",
            "forget quality of the second oracle",
            oracle2["forget_quality"],
            f"> {min_oracle_fq}",
            oracle2["forget_quality"] > min_oracle_fq,
        ),
    ]
    return pd.DataFrame(rows, columns=["check", "measured", "value", "bar", "passed"])


def verdict(checks: pd.DataFrame) -> str:
    """One markdown paragraph stating plainly which soundness bars hold (from the numbers)."""
    failed = checks[~checks["passed"].astype(bool)]
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


def _stats(cfg: Config) -> dict[str, SuiteStats]:
    ev = cfg.evaluation
    return {
        "base": tofu.base_stats(cfg.target.model, cfg.target.data, ev),
        "target": tofu.finetuned_stats(cfg.target, ev),
        "oracle": tofu.finetuned_stats(cfg.oracle, ev),
        "oracle2": tofu.finetuned_stats(tofu.oracle_of(cfg.target, replica=1), ev),
    }


def noise_floor(cfg: Config) -> dict[str, float]:
    """How far apart two exact unlearnings (oracles of two fine-tuning seeds) are: the smallest
    difference between a method and the oracle that can mean anything."""
    s = _stats(cfg)
    ks = forget_quality_test(forget_truth_ratios(s["oracle2"]), forget_truth_ratios(s["oracle"]))
    out = {"forget_quality": ks.pvalue, "forget_ks": ks.statistic}
    for probe_set in ("forget", "paraphrase", "multihop", "probe"):
        diff, low, high = gap_significant(
            s["oracle2"], s["oracle"], probe_set, cfg.evaluation.n_boot
        )
        out[f"{probe_set}_fact_acc_diff"] = diff
        out[f"{probe_set}_fact_acc_diff_low"], out[f"{probe_set}_fact_acc_diff_high"] = low, high
    table = setup(cfg)
    out["model_utility_diff"] = float(
        table.loc["retrain (seed 2)", "model_utility"] - table.loc["retrain", "model_utility"]
    )
    out["mia_auc_diff"] = float(
        table.loc["retrain (seed 2)", "mia_auc"] - table.loc["retrain", "mia_auc"]
    )
    return out


def validity(cfg: Config) -> pd.DataFrame:
    """Per forgetting probe set: is the target's fact accuracy significantly above the
    oracle's? (author-level bootstrap interval of the gap excludes 0). Invalid sets cannot
    tell unlearning from not unlearning and are left out of the criteria and rankings."""
    s = _stats(cfg)
    rows = []
    for probe_set in VALIDITY_SETS:
        diff, low, high = gap_significant(
            s["target"], s["oracle"], probe_set, cfg.evaluation.n_boot
        )
        rows.append(
            {
                "metric": f"{probe_set}_fact_acc",
                "target - oracle": diff,
                "low": low,
                "high": high,
                "valid": bool(np.isfinite(low) and low > 0),
            }
        )
    return pd.DataFrame(rows).set_index("metric")


# --------------------------------------------------------------------------- tuning and runs
def tunable(method: str) -> bool:
    """Methods whose budget is chosen on the validation request (those that train)."""
    cls = method_registry.METHODS[method]
    return issubclass(cls, GradientMethod) or method in _GRID_ONLY


#: Weight-changing methods that are not iterative losses but have a coefficient to choose.
_GRID_ONLY = ("task_vector",)  # its coefficient alpha; tuned once per grid point


def _tune_specs(cfg: Config, methods: Sequence[str], hparams: dict) -> list[tofu_tuning.TuneSpec]:
    assert cfg.tuning is not None
    grids = dict(cfg.tuning.grid)
    return [
        tofu_tuning.TuneSpec(
            target=cfg.target,
            method=m,
            train=replace(cfg.unlearn, epochs=cfg.tuning.max_epochs),
            evaluation=cfg.evaluation,
            lrs=cfg.tuning.lrs,
            grid=grids.get(m, ()),
            hparams=tuple(sorted(hparams.get(m, {}).items())),
            validation_split=cfg.tuning.split,
            utility_floor=cfg.tuning.utility_floor,
        )
        for m in methods
        if tunable(m) and m in method_registry.METHODS
    ]


def tune(
    cfg: Config, methods: Sequence[str], hparams: dict[str, dict[str, Any]] | None = None
) -> list[tofu_tuning.TuneResult]:
    """Choose each trainable method's budget on the validation request (cached)."""
    if cfg.tuning is None:
        return []
    specs = _tune_specs(cfg, methods, hparams or {})
    return runner.sweep(specs, desc="tuning on the validation authors")


def trajectories(tuned: Sequence[tofu_tuning.TuneResult]) -> pd.DataFrame:
    """Every validation checkpoint (method, lr, epochs, scores); epoch 0 = the target."""
    return tofu_tuning.trajectories(tuned)


def selected_hparams(tuned: Sequence[tofu_tuning.TuneResult]) -> pd.DataFrame:
    """The chosen setting of each tuned method, and whether it kept the utility floor."""
    return (
        pd.DataFrame(
            [{"method": r.method, **r.selected, "utility floor kept": r.floor_met} for r in tuned]
        ).set_index("method")
        if tuned
        else pd.DataFrame()
    )


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

    def seeds(self) -> list[int]:
        return sorted({seed for (_, seed) in self.runs})


def sweep(
    cfg: Config,
    methods: Sequence[str],
    hparams: dict[str, dict[str, Any]] | None = None,
    seeds: Sequence[int] | None = None,
    tuned: Sequence[tofu_tuning.TuneResult] = (),
) -> Sweep:
    """Run (or read from the cache) every method for every unlearning seed, each trainable
    method with its tuned setting when `tuned` holds it."""
    hparams = hparams or {}
    seeds = list(seeds) if seeds else [cfg.unlearn.seed]
    chosen = {r.method: r for r in tuned}
    by_method = {s.method: s for s in (_tune_specs(cfg, methods, hparams) if cfg.tuning else [])}
    specs = []
    for seed in seeds:
        for m in methods:
            if m in chosen and m in by_method:
                spec = tofu_tuning.tuned_spec(by_method[m], chosen[m], seed, cfg.relearn)
            else:
                (spec,) = tofu.unlearn_specs(
                    cfg.target,
                    [m],
                    cfg.unlearn,
                    cfg.evaluation,
                    cfg.relearn,
                    {m: hparams[m]} if m in hparams else {},
                    [seed],
                )
            specs.append(replace(spec, quant_bits=cfg.quant_bits))
    results = runner.sweep(specs, desc="unlearning runs")
    return Sweep(
        table=tofu.results_table(results, methods),
        runs={(r.method, r.seed): r for r in results},
        methods=tuple(methods),
        target=tofu.finetuned_stats(cfg.target, cfg.evaluation),
        oracle=tofu.finetuned_stats(cfg.oracle, cfg.evaluation),
        forget=list(tofu.benchmark_data(cfg.target.data).forget),
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


# --------------------------------------------------------------------------- criteria, rankings
def _closeness(value: float, direction: str, oracle_value: float) -> float:
    """A number where higher = better, for ranking (not shown as a score)."""
    if direction == "higher":
        return value
    if direction == "lower":
        return -value
    reference = oracle_value if direction == "oracle" else float(direction)
    return -abs(value - reference)


def criteria_table(summary: pd.DataFrame, valid: pd.DataFrame) -> pd.DataFrame:
    """The five criteria as raw metrics (one row per method x metric) with their CI and
    direction; forgetting metrics whose target-oracle gap is not significant are marked
    invalid."""
    oracle = summary.loc["retrain"] if "retrain" in summary.index else None
    rows = []
    for criterion, items in CRITERIA.items():
        for metric, direction in items:
            if metric not in summary.columns:
                continue
            ok = bool(valid["valid"].get(metric, True))
            for method, r in summary.iterrows():
                rows.append(
                    {
                        "criterion": criterion,
                        "metric": metric,
                        "method": method,
                        "value": r[metric],
                        "low": r.get(f"{metric}_low", np.nan),
                        "high": r.get(f"{metric}_high", np.nan),
                        "better": "closer to the oracle"
                        if direction == "oracle"
                        else ("closer to 0" if direction == "0" else direction),
                        "oracle": oracle[metric] if oracle is not None else np.nan,
                        "valid": ok,
                    }
                )
    return pd.DataFrame(rows)


def _single_numbers(valid: pd.DataFrame) -> dict[str, str]:
    numbers = {
        "forget_fact_acc": "oracle",
        "paraphrase_fact_acc": "oracle",
        "forget_quality": "higher",
        "mia_auc": "oracle",
        "model_utility": "higher",
        "relearn_fact_acc": "lower",
    }
    return {m: d for m, d in numbers.items() if bool(valid["valid"].get(m, True))}


def excluded(result: Sweep) -> list[str]:
    """Methods left out of the rankings: a run that diverged or did not converge (e.g. RMU
    whose forget activation loss did not fall) is not a result about the method's family."""
    return sorted({r.method for r in result.runs.values() if r.status != "ok"})


def rankings(
    summary: pd.DataFrame, valid: pd.DataFrame, exclude: Sequence[str] = ()
) -> pd.DataFrame:
    """Rank of each unlearning method (target, oracle and `exclude` left out) by each valid
    single number; 1 = best."""
    frame = summary.drop(index=["target", "retrain", *exclude], errors="ignore")
    oracle = summary.loc["retrain"] if "retrain" in summary.index else None
    ranks = {}
    for metric, direction in _single_numbers(valid).items():
        if metric not in frame.columns:
            continue
        ref = oracle[metric] if oracle is not None else np.nan
        keyed = frame[metric].map(lambda v, d=direction, o=ref: _closeness(v, d, o))
        ranks[metric] = keyed.rank(ascending=False, method="min")
    return pd.DataFrame(ranks).astype("Int64")


def rank_intervals(result: Sweep, valid: pd.DataFrame, n_boot: int = 200) -> pd.DataFrame:
    """95% bootstrap interval of each method's rank by forget fact accuracy (closeness to the
    oracle's) and by forget quality, resampling forget authors (the same resample for every
    method); methods left out of the rankings (`excluded`) are left out here too."""
    methods = [m for m in result.methods if m != "retrain" and m not in excluded(result)]
    oracle = result.oracle
    o_fact = fact_vectors(oracle)["forget"]
    o_tr = forget_truth_ratios(oracle)
    authors = oracle.forget_authors
    out = {}
    numbers = {
        "forget_fact_acc": lambda s, i: (
            -abs(np.nanmean(fact_vectors(s)["forget"][i]) - np.nanmean(o_fact[i]))
        ),
        "forget_quality": lambda s, i: (
            forget_quality_test(forget_truth_ratios(s)[i], o_tr[i]).pvalue
        ),
    }
    for metric, fn in numbers.items():
        if not bool(valid["valid"].get(metric, True)):
            continue
        reps = {}
        for m in methods:
            stats = result.first_seed(m).stats
            reps[m] = st.cluster_bootstrap(
                lambda i, s=stats, f=fn: f(s, i), authors, n_boot, seed=0
            )
        intervals = st.rank_intervals(reps, higher_is_better=True)
        out[metric] = {
            m: f"{lo}-{hi}" if lo != hi else f"{lo}" for m, (lo, hi) in intervals.items()
        }
    return pd.DataFrame(out)


def seed_agreement(result: Sweep, valid: pd.DataFrame) -> float:
    """Mean Kendall tau between the rankings of the methods under different unlearning seeds,
    averaged over the valid single numbers: the noise reference for comparing rankings by
    different numbers (NaN with one seed)."""
    seeds = result.seeds()
    if len(seeds) < 2:
        return float("nan")
    table = result.table.reset_index()
    taus = []
    for metric, direction in _single_numbers(valid).items():
        if metric not in table.columns:
            continue
        oracle_value = (
            float(result.runs[("retrain", seeds[0])].metrics.get(metric, np.nan))
            if ("retrain", seeds[0]) in result.runs
            else np.nan
        )
        per_seed = []
        for seed in seeds:
            rows = table[(table["seed"] == seed) & (table["method"] != "retrain")].set_index(
                "method"
            )
            per_seed.append(
                rows[metric].map(lambda v, d=direction, o=oracle_value: _closeness(v, d, o))
            )
        for a in range(len(per_seed)):
            for b in range(a + 1, len(per_seed)):
                joined = pd.concat([per_seed[a], per_seed[b]], axis=1).dropna()
                taus.append(st.kendall_tau(joined.iloc[:, 0], joined.iloc[:, 1]))
    return float(np.nanmean(taus)) if taus else float("nan")


def ranking_findings(ranks: pd.DataFrame, seed_tau: float) -> str:
    """Markdown: which method each single number crowns, and how much the rankings agree
    (Kendall's tau between every pair of single numbers) against the seed-to-seed agreement."""
    winners = "; ".join(
        f"{name} → **{', '.join(ranks.index[ranks[name] == 1])}**" for name in ranks.columns
    )
    taus = []
    columns = list(ranks.columns)
    for i, a in enumerate(columns):
        for b in columns[i + 1 :]:
            valid_rows = ranks[[a, b]].dropna()
            if len(valid_rows) > 2:
                taus.append(
                    st.kendall_tau(valid_rows[a].astype(float), valid_rows[b].astype(float))
                )
    mean_tau = float(np.nanmean(taus)) if taus else float("nan")
    noise = (
        f"Between two unlearning seeds, the rankings by the same number agree with tau = "
        f"{seed_tau:.2f}"
        if math.isfinite(seed_tau)
        else "With one unlearning seed there is no seed-to-seed reference (run SEEDS with two "
        "or more values, as the GPU profile does)"
    )
    return (
        f"Best method by each single number: {winners}. Mean Kendall's tau between the "
        f"rankings of different single numbers: {mean_tau:.2f} (1 = they always agree, 0 = "
        f"unrelated, < 0 = they disagree). {noise}; a disagreement between numbers means "
        "something only when it is clearly larger than the disagreement between seeds."
    )


# --------------------------------------------------------------------------- figures' data
def generations(result: Sweep, n: int = 4) -> pd.DataFrame:
    """Side-by-side greedy answers to the first `n` forget questions: target, methods, oracle."""
    rows = []
    for i, qa in enumerate(result.forget[:n]):
        row = {
            "question": qa["question"],
            "gold fact": qa["value"],
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


def headline_records(summary: pd.DataFrame, tuned: Sequence[tofu_tuning.TuneResult] = ()) -> dict:
    """Per method: the headline numbers (and their CIs) that go to records.json."""
    chosen = {r.method: r.selected for r in tuned}
    out = {}
    for method, row in summary.iterrows():
        record = {}
        for key in HEADLINE:
            if key in row:
                record[key] = float(row[key])
                for bound in ("low", "high"):
                    if f"{key}_{bound}" in row:
                        record.setdefault(f"{key}_ci", [None, None])
                        record[f"{key}_ci"][0 if bound == "low" else 1] = float(
                            row[f"{key}_{bound}"]
                        )
        if method in chosen:
            record["selected_hparams"] = chosen[method]
        out[method] = record
    return out


def long_format(df: pd.DataFrame, var_name: str, value_name: str) -> pd.DataFrame:
    """Method-indexed wide table -> long (method, var_name, value_name) for grouped bars."""
    return df.reset_index(names="method").melt(
        id_vars="method", var_name=var_name, value_name=value_name
    )


# --------------------------------------------------------------------------- claims
#: How much lower than the seed-to-seed agreement the agreement between single numbers must be
#: before "single numbers disagree" counts as held (a documented margin, not a test).
TAU_MARGIN = 0.2


def claims(
    summary: pd.DataFrame,
    ranks: pd.DataFrame,
    seed_tau: float,
    noise: dict[str, float],
    utility_floor: float = 0.9,
    checks: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """The survey's claims as tested here, each with its verdict and the numbers behind it:
    (name, text, verdict, evidence) dicts for `Report.claim`. When the setup fails a
    soundness bar (`checks`), every claim is "not testable at this scale": a target that
    never learned the facts, or an oracle that knows them, cannot test unlearning."""
    out = _claims(summary, ranks, seed_tau, noise, utility_floor)
    failed = [] if checks is None else list(checks.loc[~checks["passed"].astype(bool), "check"])
    if failed:
        for claim in out:
            claim["verdict"] = "not testable at this scale"
            claim["evidence"] = {"soundness bars not met": "; ".join(failed), **claim["evidence"]}
    return out


def _claims(
    summary: pd.DataFrame,
    ranks: pd.DataFrame,
    seed_tau: float,
    noise: dict[str, float],
    utility_floor: float,
) -> list[dict[str, Any]]:
    out = []
    taus = []
    columns = list(ranks.columns)
    for i, a in enumerate(columns):
        for b in columns[i + 1 :]:
            rows = ranks[[a, b]].dropna()
            if len(rows) > 2:
                taus.append(st.kendall_tau(rows[a].astype(float), rows[b].astype(float)))
    tau_numbers = float(np.nanmean(taus)) if taus else float("nan")
    if not math.isfinite(seed_tau) or not math.isfinite(tau_numbers):
        verdict = "not testable at this scale"
    else:
        verdict = "held" if tau_numbers < seed_tau - TAU_MARGIN else "did not hold"
    out.append(
        {
            "name": "single_numbers_disagree",
            "text": "Rankings by different single numbers disagree more than rankings by the "
            "same number under another unlearning seed",
            "verdict": verdict,
            "evidence": {
                "Kendall tau between numbers": tau_numbers,
                "Kendall tau between seeds": seed_tau,
            },
        }
    )
    oracle = summary.loc["retrain"]
    margin = max(abs(noise.get("forget_fact_acc_diff_high", 0.0)), 0.05)
    forgot = summary[
        (summary["forget_fact_acc"] <= oracle["forget_fact_acc"] + margin)
        & ~summary.index.isin(["retrain", "target"])
    ]
    attack_cols = [c for c in ("relearn_fact_acc", "quant4_fact_acc") if c in summary.columns]
    if forgot.empty or not attack_cols:
        verdict, restored = "not testable at this scale", []
    else:
        restored = [
            m
            for m, r in forgot.iterrows()
            if any(
                r[c] > oracle["forget_fact_acc"] + margin for c in attack_cols if np.isfinite(r[c])
            )
        ]
        verdict = "held" if restored else "did not hold"
    out.append(
        {
            "name": "forgetting_is_not_robust",
            "text": "Methods that forget on the output still hold the facts: a relearning or "
            "4-bit quantization attack brings them back",
            "verdict": verdict,
            "evidence": {
                "methods at the oracle's forget fact accuracy": ", ".join(forgot.index) or "none",
                "of those restored by an attack": ", ".join(restored) or "none",
                "oracle forget fact accuracy": float(oracle["forget_fact_acc"]),
            },
        }
    )
    target_mu = summary.loc["target", "model_utility"] if "target" in summary.index else np.nan
    methods = summary.drop(index=["retrain", "target"], errors="ignore")
    matched = methods[
        (methods["forget_quality"] > 0.05) & (methods["model_utility"] >= utility_floor * target_mu)
    ]
    out.append(
        {
            "name": "approximate_is_not_retraining",
            "text": "No approximate method reaches the retrained oracle (forget quality > 0.05) "
            "while keeping utility",
            "verdict": "held" if matched.empty else "did not hold",
            "evidence": {
                "best forget quality": float(methods["forget_quality"].max()),
                "its method": str(methods["forget_quality"].idxmax()),
                "methods matching the oracle with utility kept": ", ".join(matched.index) or "none",
                "two oracles' forget quality": noise.get("forget_quality", float("nan")),
            },
        }
    )
    return out


def headline_directions(table: pd.DataFrame) -> dict[str, Any]:
    """The direction of each column of a headline table (for `Report.headline`)."""
    return {k: v for k, v in HEADLINE_DIRECTIONS.items() if k in table.columns}


def headline_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The compact table of the index page: one row per model, the headline numbers."""
    # The summary's columns without the FLOP count (seconds say the cost more plainly there).
    columns = [c for c in SUMMARY_COLUMNS if c != "flops" and c in summary.columns]
    return summary[columns]


HEADLINE_DIRECTIONS = {
    "forget_fact_acc": "lower",
    "paraphrase_fact_acc": "lower",
    "forget_quality": "higher",
    "model_utility": "higher",
    "mia_auc": 0.5,
    "relearn_fact_acc": "lower",
    "quant4_fact_acc": "lower",
    "seconds": "lower",
}


# --------------------------------------------------------------------------- notebook helpers
def fact_intervals(
    table: pd.DataFrame, metrics: Sequence[str] = ("forget_fact_acc", "paraphrase_fact_acc")
) -> pd.DataFrame:
    """Long table (method, probe set, fact accuracy, low, high) for `plotting.interval_chart`."""
    rows = []
    for method, r in table.iterrows():
        for metric in metrics:
            rows.append(
                {
                    "method": method,
                    "probe set": metric.removesuffix("_fact_acc"),
                    "fact accuracy": r[metric],
                    "low": r.get(f"{metric}_low", np.nan),
                    "high": r.get(f"{metric}_high", np.nan),
                }
            )
    return pd.DataFrame(rows)


def trajectory_points(
    trajectories_table: pd.DataFrame, selected: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(checkpoints after at least one epoch with a `path` label per learning rate, the chosen
    checkpoints) for `plotting.trajectory_chart`."""
    if trajectories_table.empty:
        return trajectories_table, trajectories_table
    points = trajectories_table[trajectories_table["epochs"] > 0].copy()
    points["path"] = "lr " + points["lr"].map("{:g}".format)
    chosen = points.merge(
        selected.reset_index()[["method", "lr", "epochs"]], on=["method", "lr", "epochs"]
    )
    return points, chosen


def noise_band(setup_table: pd.DataFrame, noise: dict[str, float]) -> dict[str, Any]:
    """The noise floor around the oracle's forget fact accuracy, as a plot band."""
    oracle = setup_table.loc["retrain", "forget_fact_acc"]
    return {
        "y": (
            oracle + noise["forget_fact_acc_diff_low"],
            oracle + noise["forget_fact_acc_diff_high"],
        ),
        "label": "noise floor (second oracle vs oracle, 95% CI)",
    }


def noise_markdown(noise: dict[str, float]) -> str:
    """One paragraph on the noise floor, from its numbers."""
    return (
        f"**Noise floor** (second oracle vs oracle): forget quality {noise['forget_quality']:.3g}, "
        f"forget fact accuracy difference {noise['forget_fact_acc_diff']:+.3f} "
        f"[{noise['forget_fact_acc_diff_low']:+.3f}, {noise['forget_fact_acc_diff_high']:+.3f}], "
        f"model utility difference {noise['model_utility_diff']:+.3f}. A forgetting metric whose "
        "target-oracle gap is not significant (`valid` = False above) cannot tell unlearning from "
        "not unlearning here and is left out of the criteria and the rankings."
    )


def claims_markdown(found: Sequence[dict[str, Any]]) -> str:
    """The claims and their verdicts as a markdown list, numbers included."""

    def show(value: Any) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    return "\n".join(
        f"- **{c['verdict']}**: {c['text']} ("
        + "; ".join(f"{k}: {show(v)}" for k, v in c["evidence"].items())
        + ")"
        for c in found
    )


HARD_INSCOPE = (
    "forget_fact_acc",
    "paraphrase_fact_acc",
    "multihop_fact_acc",
    "combined_forget_fact_acc",
    "relearn_fact_acc",
    "quant4_fact_acc",
    "quant8_fact_acc",
)
SUMMARY_COLUMNS = (
    "forget_fact_acc",
    "paraphrase_fact_acc",
    "forget_quality",
    "model_utility",
    "mia_auc",
    "relearn_fact_acc",
    "quant4_fact_acc",
    "flops",
    "seconds",
)
UTILITY_COLUMNS = (
    "model_utility",
    "model_utility_low",
    "model_utility_high",
    "retain_fact_acc",
    "probe_fact_acc",
    "combined_retain_fact_acc",
    "retain_prob",
    "retain_truth",
    "probe_prob",
    "probe_truth",
)


def columns(table: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """The named columns of `table` that exist (in the given order)."""
    return table[[c for c in names if c in table.columns]]
