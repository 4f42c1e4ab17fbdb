"""Notebook 01: Gu et al. 2024, "Second-Order Information Matters: Revisiting Machine
Unlearning for LLMs" (arXiv 2403.10557), on the canary-exposure protocol
(`lib.benchmarks.canaries`).

The protocol, as functions that return DataFrames or finished results:

1. `setup` / `sanity`: the target (fine-tuned on every document) must have memorised the most
   repeated canaries and the oracle (retrained without deletion request 1) must not have.
2. `run`: every method point (first-order: GA with a learning-rate sweep, GradDiff, GA+KL,
   fine-tuning on retain only; second-order: Fisher Removal over gamma, Fisher Forgetting over
   its noise scale) processes deletion request 1; the default point of each cycle method (GA and
   the two Fisher methods) processes every request in turn. DP-SGD models (`dp_table`) are
   trained instead of the target and evaluated as they are.
3. `summary` (request 1), `cycles` (every request), `canary_rows` (per canary), `claims` (the
   paper's three claims, verdicts computed from the numbers) and `records`.

Per-cycle oracles (`per_cycle_oracles`): retraining without requests 1..c for every c costs one
fine-tuning per cycle; the CPU profile trains only the oracle of request 1 (distance to the
oracle is then reported for cycle 1 only), the GPU profile trains all of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from lib import methods as method_registry
from lib import models, runner
from lib.benchmarks import canaries as cb
from lib.benchmarks.tofu_suite import EvalSpec
from lib.metrics import stats as st
from lib.specs import ModelSpec, TrainSpec

__all__ = ["METRIC_HELP", "Config", "Point", "Results", "config", "run"]

METRIC_HELP = cb.METRIC_HELP
FIRST_ORDER = ("ga", "grad_diff", "ga_kl", "finetune_retain")
# rows drawn as references (greys, stars) in every figure: the model before and the oracle
REFERENCE_ROWS = ("target", "oracle")
SECOND_ORDER = ("fisher_removal", "fisher_forgetting")
#: Numbers recorded per method / per cycle in records.json (with `_ci` where there is one).
RECORDED = (
    "forget_exposure",
    "retain_exposure",
    "pending_exposure",
    "heldout_ppl",
    "retain_ppl",
    "forget_ppl",
    "mia_auc",
    "oracle_exposure_gap",
    "oracle_nll_distance",
    "model_utility",
    "forget_fact_acc",
    "retain_fact_acc",
    "n_estimated",
    "seconds",
    "flops",
    "peak_memory_mb",
)
#: Columns of the method table, with directions (for labels and the headline).
TABLE_DIRECTIONS: dict[str, Any] = {
    "forget_exposure": "lower",
    "retain_exposure": "higher",
    "heldout_ppl": "lower",
    "mia_auc": 0.5,
    "oracle_exposure_gap": 0.0,
    "model_utility": "higher",
    "seconds": "lower",
    "flops": "lower",
}
UNITS = {
    "forget_exposure": "bits",
    "retain_exposure": "bits",
    "exposure": "bits",
    "oracle_exposure_gap": "bits",
    "seconds": "s",
    "flops": "FLOPs",
    "peak_memory_mb": "MiB",
}
#: Sanity bars: the target's most repeated forget canaries at >= this fraction of log2|R| bits,
#: the oracle's forget canaries (never seen) below this many bits on average.
TARGET_EXPOSURE_FRACTION = 0.8
ORACLE_MAX_EXPOSURE = 4.0
#: A method "lowered" exposure when its mean is at least this many bits below the target's.
EXPOSURE_MARGIN = 1.0


@dataclass(frozen=True)
class Point:
    """One method at one hyperparameter setting; `cycles` requests are processed."""

    method: str
    hparams: tuple[tuple[str, Any], ...]
    label: str
    family: str  # first-order | second-order
    cycles: int
    default: bool  # the method's row in the table and records


@dataclass(frozen=True)
class Config:
    """Everything notebook 01 runs, built from its parameters cell (`config(...)`)."""

    target: cb.DocsFinetuneSpec
    unlearn: TrainSpec
    retain_finetune: TrainSpec
    evaluation: cb.CanaryEvalSpec
    points: tuple[Point, ...]
    cycle_methods: tuple[str, ...]
    oracle_cycles: tuple[int, ...]
    dp: tuple[cb.DPSpec, ...]
    utility_tolerance: float

    @property
    def data(self) -> cb.CanaryDataSpec:
        return self.target.data

    @property
    def oracle(self) -> cb.DocsFinetuneSpec:
        return cb.oracle_of(self.target, 1)


def _label(method: str, name: str | None, value: Any, default: bool) -> str:
    if name is None or default:
        return method
    return f"{method} ({name}={value:g})"


def _points(
    first_order: Sequence[str],
    sweeps: dict[str, tuple[str, Sequence[float]]],
    hparams: dict[str, dict[str, Any]],
    cycle_methods: Sequence[str],
    n_cycles: int,
) -> tuple[Point, ...]:
    """Every (method, setting): the FIRST value of a sweep is the method's default point."""
    out = []
    for method in (*first_order, *SECOND_ORDER):
        family = "second-order" if method in SECOND_ORDER else "first-order"
        fixed = hparams.get(method, {})
        name, values = sweeps.get(method, (None, [None]))
        for i, value in enumerate(values):
            setting = dict(fixed)
            if name is not None and name != "lr":
                setting[name] = value
            default = i == 0
            hp = tuple(sorted(setting.items()))
            if name == "lr":
                hp = (*hp, ("__lr__", value))
            cycles = n_cycles if default and method in cycle_methods else 1
            out.append(
                Point(method, hp, _label(method, name, value, default), family, cycles, default)
            )
    return tuple(out)


def config(
    *,
    model: str,
    dtype: str,
    n_authors: int,
    n_holdout_authors: int,
    qa_per_author: int,
    data_seed: int,
    n_cycles: int,
    forget_per_cycle: int,
    n_retain_canaries: int,
    repetitions: Sequence[int],
    secret_digits: int,
    doc_sentences: int,
    passage_sentences: int,
    finetune_epochs: float,
    finetune_lr: float,
    finetune_batch: int,
    finetune_seed: int,
    first_order_methods: Sequence[str],
    unlearn_epochs: float,
    unlearn_lr: float,
    unlearn_batch: int,
    ga_lrs: Sequence[float],
    retain_ft_epochs: float,
    fisher_hparams: dict[str, Any],
    fr_gamma_scales: Sequence[float],
    ff_noises: Sequence[float],
    cycle_methods: Sequence[str],
    per_cycle_oracles: bool,
    dp_epsilons: Sequence[float],
    dp_control: bool,
    dp_scope: str,
    dp_k: int,
    dp_epochs: float,
    dp_lr: float,
    dp_batch: int,
    dp_clip: float,
    dp_delta: float,
    exposure_max_nodes: int,
    exposure_samples: int,
    qa_eval: bool,
    n_retain_eval: int,
    n_probes: int,
    max_new_tokens: int,
    eval_batch: int,
    n_boot: int,
    utility_tolerance: float,
    cpu_threads: int = 0,
) -> Config:
    """Build and validate the configuration (ValueError/KeyError before any work).

    `cpu_threads` > 0 sets torch's CPU threads (one thread is faster on a shared, busy CPU);
    0 keeps torch's default."""
    if isinstance(cpu_threads, bool) or not isinstance(cpu_threads, int) or cpu_threads < 0:
        raise ValueError(f"cpu_threads must be an integer >= 0, got {cpu_threads!r}")
    if cpu_threads:
        torch.set_num_threads(cpu_threads)
    unknown = set(first_order_methods) - set(FIRST_ORDER)
    if unknown:
        raise KeyError(f"unknown first-order method(s) {sorted(unknown)}; allowed: {FIRST_ORDER}")
    bad_cycle = set(cycle_methods) - set(first_order_methods) - set(SECOND_ORDER)
    if bad_cycle:
        raise KeyError(
            f"cycle methods {sorted(bad_cycle)} are not run; run: "
            f"{[*first_order_methods, *SECOND_ORDER]}"
        )
    for name, values in (
        ("ga_lrs", ga_lrs),
        ("fr_gamma_scales", fr_gamma_scales),
        ("ff_noises", ff_noises),
    ):
        if not values or any(not v > 0 for v in values):
            raise ValueError(f"{name} must be a non-empty list of numbers > 0, got {values}")
    if not utility_tolerance >= 0:
        raise ValueError(f"utility_tolerance must be >= 0, got {utility_tolerance}")
    n_counts = len(set(repetitions))
    # Canaries are dealt by insertion count: with fewer canaries than counts, request 1 (or the
    # controls) would miss the most repeated count and the sanity bars could not be read.
    if forget_per_cycle < n_counts or n_retain_canaries < n_counts:
        raise ValueError(
            f"forget_per_cycle ({forget_per_cycle}) and n_retain_canaries ({n_retain_canaries}) "
            f"must be >= the number of insertion counts ({n_counts}, {list(repetitions)}): every "
            "request and the controls need a canary of every count"
        )
    data = cb.CanaryDataSpec(
        n_authors=n_authors,
        n_holdout_authors=n_holdout_authors,
        qa_per_author=qa_per_author,
        seed=data_seed,
        n_cycles=n_cycles,
        forget_per_cycle=forget_per_cycle,
        n_retain_canaries=n_retain_canaries,
        repetitions=tuple(int(r) for r in repetitions),
        n_digits=secret_digits,
        doc_sentences=doc_sentences,
        passage_sentences=passage_sentences,
    )
    tokenizer = cb.tokenizer_of(model)
    # Every document fits: a cut document would lose the canaries at its end.
    max_length = max(128, cb.longest_document(data, tokenizer))
    finetune = TrainSpec(
        epochs=finetune_epochs,
        lr=finetune_lr,
        batch_size=finetune_batch,
        max_length=max_length,
        seed=finetune_seed,
    )
    target = cb.DocsFinetuneSpec(ModelSpec(model, dtype), data, finetune)
    unlearn = TrainSpec(
        epochs=unlearn_epochs, lr=unlearn_lr, batch_size=unlearn_batch, max_length=max_length
    )
    retain_finetune = replace(unlearn, epochs=retain_ft_epochs, lr=finetune_lr)
    qa = (
        EvalSpec(
            n_retain=n_retain_eval,
            n_probes=n_probes,
            max_new_tokens=max_new_tokens,
            batch_size=eval_batch,
            n_boot=n_boot,
        )
        if qa_eval
        else None
    )
    evaluation = cb.CanaryEvalSpec(
        exposure=cb.ExposureSpec(max_nodes=exposure_max_nodes, n_samples=exposure_samples),
        batch_size=eval_batch,
        n_boot=n_boot,
        qa=qa,
        qa_cycles=(1,),
    )
    sweeps = {
        "ga": ("lr", [unlearn_lr, *[v for v in ga_lrs if v != unlearn_lr]]),
        "fisher_removal": ("gamma_scale", list(fr_gamma_scales)),
        "fisher_forgetting": ("noise", list(ff_noises)),
    }
    shared = {"scope", "k", "include_head", "m", "damping", "damping_relative", "chunk_size"}
    unknown_hp = set(fisher_hparams) - shared
    if unknown_hp:
        raise KeyError(
            f"fisher_hparams has unknown key(s) {sorted(unknown_hp)}; allowed: {sorted(shared)}"
        )
    hparams = {m: dict(fisher_hparams) for m in SECOND_ORDER}
    points = _points(first_order_methods, sweeps, hparams, cycle_methods, n_cycles)
    cb.validate([p.method for p in points], {}, target.model)
    for p in points:
        method_registry.get(p.method, **_method_hparams(p)).check(models.n_layers(model))
    dp_specs = [
        cb.DPSpec(
            epsilon=float(e),
            delta=dp_delta,
            clip_norm=dp_clip,
            lr=dp_lr,
            batch_size=dp_batch,
            epochs=dp_epochs,
            scope=dp_scope,
            k=dp_k,
        )
        for e in dp_epsilons
    ]
    if dp_control and dp_specs:
        dp_specs.insert(0, replace(dp_specs[0], epsilon=None))
    oracle_cycles = tuple(range(1, n_cycles + 1)) if per_cycle_oracles else (1,)
    cfg = Config(
        target=target,
        unlearn=unlearn,
        retain_finetune=retain_finetune,
        evaluation=evaluation,
        points=points,
        cycle_methods=tuple(cycle_methods),
        oracle_cycles=oracle_cycles,
        dp=tuple(dp_specs),
        utility_tolerance=float(utility_tolerance),
    )
    n_docs = len(cb.canary_data(data).documents)
    for dp in cfg.dp:
        cb.dp_noise(dp, n_docs)  # batch larger than the data -> ValueError now
    return cfg


def _method_hparams(point: Point) -> dict[str, Any]:
    return {k: v for k, v in point.hparams if k != "__lr__"}


def split_hashes(cfg: Config) -> dict[str, str]:
    """Content hashes of the benchmark, documents and canaries (for the records)."""
    return dict(cb.canary_data(cfg.data).hashes)


def data_overview(cfg: Config) -> pd.DataFrame:
    """One row per canary: owner, group, the request that deletes it, insertion count."""
    data = cb.canary_data(cfg.data)
    rows = [
        {
            "canary_id": c["canary_id"],
            "owner": c["owner"],
            "group": c["group"],
            "request": c["cycle"] or "-",
            "repetitions": c["repetitions"],
            "text": c["text"],
        }
        for c in data.canaries
    ]
    return pd.DataFrame(rows).set_index("canary_id")


# --------------------------------------------------------------------------- setup and sanity
def _qa_cycles(cfg: Config) -> tuple[int, ...]:
    return (1,) if cfg.evaluation.qa is not None else ()


def _model_row(spec: cb.DocsFinetuneSpec, cfg: Config, cycle: int = 1) -> dict[str, float]:
    """Summary of a fine-tuned model after request `cycle` (vs that cycle's oracle)."""
    data = cb.canary_data(cfg.data)
    stats = cb.finetuned_stats(spec, cfg.evaluation, _qa_cycles(cfg))
    oracle = cb.finetuned_stats(cb.oracle_of(cfg.target, cycle), cfg.evaluation, _qa_cycles(cfg))
    row = cb.summarize(stats, data, cycle, cfg.evaluation, oracle)
    record = cb.train_record(spec)
    row.update(
        seconds=record["seconds"],
        flops=_train_flops(record, spec),
        peak_memory_mb=record["peak_memory_mb"],
    )
    return row


def _train_flops(record: dict[str, Any], spec: cb.DocsFinetuneSpec) -> float:
    """Training FLOPs from the record (6 N per token; DP on a subset: forward + backward of P)."""
    n, tokens = record["n_params"], record["train_tokens"]
    if spec.dp is not None and "p_size" in record:
        return 2.0 * n * tokens + 4.0 * record["p_size"] * tokens
    return 6.0 * n * tokens


def setup(cfg: Config) -> pd.DataFrame:
    """Target and oracle of request 1 (one row each, the metrics of `summarize`)."""
    rows = {
        "target": _model_row(cfg.target, cfg),
        "oracle": _model_row(cfg.oracle, cfg),
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def sanity(setup_table: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """The bars the setup must meet before any unlearning number means something."""
    top = max(cfg.data.repetitions)
    bits = math.log2(cfg.data.space_size)
    target, oracle = setup_table.loc["target"], setup_table.loc["oracle"]
    rows = [
        {
            "check": f"target memorised the {top}x forget canaries",
            "value": target[f"forget_exposure_r{top}"],
            "bar": f">= {TARGET_EXPOSURE_FRACTION:g} x log2|R| = "
            f"{TARGET_EXPOSURE_FRACTION * bits:.1f} bits",
            "passed": bool(target[f"forget_exposure_r{top}"] >= TARGET_EXPOSURE_FRACTION * bits),
        },
        {
            "check": "oracle did not (forget canaries of request 1)",
            "value": oracle["forget_exposure"],
            "bar": f"< {ORACLE_MAX_EXPOSURE:g} bits (never seen: ~1.4)",
            "passed": bool(oracle["forget_exposure"] < ORACLE_MAX_EXPOSURE),
        },
        {
            "check": f"oracle memorised the {top}x retain canaries (it trained on them)",
            "value": oracle[f"retain_exposure_r{top}"],
            "bar": f">= {TARGET_EXPOSURE_FRACTION * bits:.1f} bits",
            "passed": bool(oracle[f"retain_exposure_r{top}"] >= TARGET_EXPOSURE_FRACTION * bits),
        },
    ]
    return pd.DataFrame(rows).set_index("check")


def sanity_record(checks: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The sanity checks as a JSON-ready mapping for records.json."""
    return {
        str(c): {"value": float(r["value"]), "bar": r["bar"], "passed": bool(r["passed"])}
        for c, r in checks.iterrows()
    }


SETUP_COLUMNS = (
    "forget_exposure",
    "forget_exposure_r1",
    "forget_exposure_r4",
    "forget_exposure_r16",
    "retain_exposure",
    "pending_exposure",
    "heldout_ppl",
    "retain_ppl",
    "forget_ppl",
    "mia_auc",
    "model_utility",
    "forget_fact_acc",
    "n_estimated",
)


def sanity_markdown(checks: pd.DataFrame) -> str:
    """One sentence on whether the setup can measure erasure, from the checks."""
    failed = [c for c, r in checks.iterrows() if not r["passed"]]
    if not failed:
        return (
            "**Sanity: every bar holds**: the target memorised the canaries and the oracle did not."
        )
    return (
        "**Sanity: not every bar holds** (" + "; ".join(failed) + "). Read the unlearning numbers "
        "below with this in mind: a canary the target never memorised cannot be erased."
    )


# --------------------------------------------------------------------------- running
@dataclass
class Results:
    """Every unlearning point and its result, in the order of `Config.points`."""

    points: list[Point]
    runs: list[cb.CyclesResult]

    def of(self, label: str) -> cb.CyclesResult:
        for p, r in zip(self.points, self.runs, strict=True):
            if p.label == label:
                return r
        raise KeyError(f"no point {label!r}; have {[p.label for p in self.points]}")


def specs(cfg: Config) -> list[cb.CyclesSpec]:
    """One runner spec per point."""
    out = []
    for p in cfg.points:
        train = cfg.retain_finetune if p.method == "finetune_retain" else cfg.unlearn
        lr = dict(p.hparams).get("__lr__")
        if lr is not None:
            train = replace(train, lr=float(lr))
        out.append(
            cb.CyclesSpec(
                target=cfg.target,
                method=p.method,
                train=train,
                cycles=p.cycles,
                hparams=tuple(sorted(_method_hparams(p).items())),
                evaluation=cfg.evaluation,
                oracle_cycles=cfg.oracle_cycles,
            )
        )
    return out


def run(cfg: Config) -> Results:
    """Every point (cached by spec; an interrupted run resumes at the first missing point)."""
    results = runner.sweep(specs(cfg), desc="unlearning runs")
    return Results(list(cfg.points), list(results))


# --------------------------------------------------------------------------- tables
def summary(cfg: Config, results: Results, setup_table: pd.DataFrame) -> pd.DataFrame:
    """Request 1: one row per point (label), plus target and oracle; `family`, `default`."""
    rows = {}
    for name in ("target", "oracle"):
        rows[name] = {**setup_table.loc[name].to_dict(), "family": "reference", "default": True}
    for p, r in zip(results.points, results.runs, strict=True):
        rows[p.label] = {
            **r.rows[0],
            "family": p.family,
            "default": p.default,
            "method_name": p.method,
            "status": r.status,
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "method"
    return table


def cycles(cfg: Config, results: Results, setup_table: pd.DataFrame) -> pd.DataFrame:
    """Long table: one row per (cycle method, request) with the metrics after that request;
    the target at request 0 is every method's starting point."""
    rows = []
    start = setup_table.loc["target"].to_dict()
    for p, r in zip(results.points, results.runs, strict=True):
        if p.cycles < 2:
            continue
        rows.append({**start, "method": p.method, "cycle": 0})
        for i, row in enumerate(r.rows, start=1):
            rows.append({**row, "method": p.method, "cycle": i})
    return pd.DataFrame(rows)


def canary_rows(cfg: Config, results: Results) -> pd.DataFrame:
    """One row per (model, canary) after request 1: target, oracle, every default point, the
    DP models; columns model, group (forget = deleted, pending, retain), repetitions,
    exposure (bits), exposure_method."""
    data = cb.canary_data(cfg.data)
    qa = _qa_cycles(cfg)
    models_stats = [
        ("target", cb.finetuned_stats(cfg.target, cfg.evaluation, qa)),
        ("oracle", cb.finetuned_stats(cfg.oracle, cfg.evaluation, qa)),
    ]
    models_stats += [
        (p.label, r.stats[0])
        for p, r in zip(results.points, results.runs, strict=True)
        if p.default
    ]
    models_stats += [
        (_dp_label(dp), cb.finetuned_stats(cb.dp_of(cfg.target, dp), cfg.evaluation, qa))
        for dp in cfg.dp
    ]
    rows = []
    for name, stats in models_stats:
        for row in cb.canary_table(stats, data, 1):
            rows.append({"model": name, **row})
    return pd.DataFrame(rows)


def cycle_canary_rows(cfg: Config, results: Results) -> pd.DataFrame:
    """One row per (model, request c, canary deleted by requests 1..c) for the cycle methods'
    default points, and the target on the same canaries (its exposure does not change: the
    reference line); columns model, cycle, repetitions, exposure (bits). Seaborn's intervals
    over these rows are 95% CIs over canaries."""
    data = cb.canary_data(cfg.data)
    target = cb.finetuned_stats(cfg.target, cfg.evaluation, _qa_cycles(cfg))
    runs = [
        (p.label, r.stats)
        for p, r in zip(results.points, results.runs, strict=True)
        if p.cycles > 1
    ]
    n_cycles = max((len(stats) for _, stats in runs), default=0)
    rows = []
    for name, per_cycle in [("target", [target] * n_cycles), *runs]:
        for cycle, stats in enumerate(per_cycle, start=1):
            for row in cb.canary_table(stats, data, cycle):
                if row["group"] == "forget":
                    rows.append(
                        {
                            "model": name,
                            "cycle": cycle,
                            "repetitions": row["repetitions"],
                            "exposure": row["exposure"],
                        }
                    )
    return pd.DataFrame(rows, columns=["model", "cycle", "repetitions", "exposure"])


def exposure_by_count(canaries: pd.DataFrame, group: str = "forget") -> pd.DataFrame:
    """Canary rows of one group, with `insertions` as a category label (for grouped bars)."""
    rows = canaries[canaries["group"] == group].copy()
    rows["insertions"] = rows["repetitions"].map(lambda r: f"{r}x")
    return rows


def dp_points(cfg: Config) -> pd.DataFrame:
    """The target and every DP-SGD model as points of the privacy-utility plane: held-out
    perplexity and mean exposure of every forget canary (deleted or pending), with 95% CIs
    over canaries; `model` names the point (epsilon in the label)."""
    mask = _forget_mask(cfg)
    qa = _qa_cycles(cfg)
    named = [("target", cfg.target)] + [(_dp_label(d), cb.dp_of(cfg.target, d)) for d in cfg.dp]
    rows = []
    for name, spec in named:
        exposure = cb.finetuned_stats(spec, cfg.evaluation, qa).exposure[mask]
        low, high = cb._boot_mean_ci(exposure, cfg.evaluation.n_boot)
        ppl = _model_row(spec, cfg)["heldout_ppl"]  # cached: trained and evaluated once
        rows.append(
            {
                "model": name,
                "heldout_ppl": float(ppl),
                "all_forget_exposure": float(exposure.mean()),
                "all_forget_exposure_low": low,
                "all_forget_exposure_high": high,
            }
        )
    return pd.DataFrame(rows)


def _dp_label(dp: cb.DPSpec) -> str:
    return "dp_sgd (eps=inf)" if dp.epsilon is None else f"dp_sgd (eps={dp.epsilon:g})"


def dp_table(cfg: Config) -> pd.DataFrame:
    """One row per DP-SGD model (trained instead of the target), with the target and oracle
    for reference: exposures per insertion count, perplexities, epsilon, cost."""
    rows = {}
    for dp in cfg.dp:
        spec = cb.dp_of(cfg.target, dp)
        row = _model_row(spec, cfg)
        record = cb.train_record(spec)
        row.update(
            epsilon=float("inf") if dp.epsilon is None else record.get("epsilon", np.nan),
            target_epsilon=np.nan if dp.epsilon is None else dp.epsilon,
            noise_multiplier=record.get("noise_multiplier", np.nan),
            all_forget_exposure=float(
                np.mean(
                    cb.finetuned_stats(spec, cfg.evaluation, _qa_cycles(cfg)).exposure[
                        _forget_mask(cfg)
                    ]
                )
            ),
        )
        rows[_dp_label(dp)] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    return table


DP_COLUMNS = (
    "epsilon",
    "noise_multiplier",
    "all_forget_exposure",
    "forget_exposure_r1",
    "forget_exposure_r4",
    "forget_exposure_r16",
    "retain_exposure",
    "heldout_ppl",
    "retain_ppl",
    "model_utility",
    "seconds",
)


def dp_exposure_rows(canaries: pd.DataFrame) -> pd.DataFrame:
    """Every forget canary (deleted or pending: a DP model saw them all alike) of the DP
    models, the target and the oracle, with `insertions` labels (for grouped bars)."""
    keep = canaries["model"].str.startswith("dp_sgd") | canaries["model"].isin(["target"])
    rows = canaries[keep & canaries["group"].isin(["forget", "pending"])].copy()
    rows["insertions"] = rows["repetitions"].map(lambda r: f"{r}x")
    return rows


def _forget_mask(cfg: Config) -> np.ndarray:
    return np.array([c["group"] == "forget" for c in cb.canary_data(cfg.data).canaries])


def columns(table: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """The named columns of `table` that exist (in the given order)."""
    return table[[c for c in names if c in table.columns]]


TABLE_COLUMNS = (
    "forget_exposure",
    "forget_exposure_low",
    "forget_exposure_high",
    "retain_exposure",
    "retain_exposure_low",
    "retain_exposure_high",
    "heldout_ppl",
    "retain_ppl",
    "mia_auc",
    "mia_auc_low",
    "mia_auc_high",
    "oracle_exposure_gap",
    "model_utility",
    "forget_fact_acc",
    "n_estimated",
    "seconds",
    "flops",
    "peak_memory_mb",
)


def cost_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Long table (method, measure, value) of seconds and FLOPs of the default points and
    the oracle (retraining), for the cost bars."""
    keep = table[(table["default"].astype(bool)) & (table.index != "target")]
    rows = []
    for name, r in keep.iterrows():
        label = "oracle (retraining)" if name == "oracle" else name
        rows.append({"method": label, "flops": r["flops"], "seconds": r["seconds"]})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- claims
def _within(table: pd.DataFrame, tolerance: float) -> pd.Series:
    budget = (1 + tolerance) * table.loc["target", "heldout_ppl"]
    return table["heldout_ppl"] <= budget


def _paired_ci(a: np.ndarray, b: np.ndarray, n_boot: int) -> tuple[float, float, float]:
    diff = np.asarray(a, float) - np.asarray(b, float)
    low, high = st.cluster_ci(lambda i: float(diff[i].mean()), list(range(len(diff))), n_boot)
    return float(diff.mean()), low, high


def claims(
    cfg: Config,
    results: Results,
    table: pd.DataFrame,
    cycle_table: pd.DataFrame,
    dp: pd.DataFrame,
    checks: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """The paper's three claims as tested here, each with a verdict computed from the numbers
    ((name, text, verdict, evidence) dicts for `Report.claim`). When the setup fails a sanity
    bar, every claim is "not testable at this scale"."""
    out = [
        _claim_newton(cfg, results, table),
        _claim_removal_vs_forgetting(cfg, table, cycle_table),
        _claim_dp(cfg, table, dp),
    ]
    failed = [] if checks is None else [c for c, r in checks.iterrows() if not r["passed"]]
    if failed:
        for claim in out:
            claim["verdict"] = "not testable at this scale"
            claim["evidence"] = {"sanity bars not met": "; ".join(failed), **claim["evidence"]}
    return out


def _claim_newton(cfg: Config, results: Results, table: pd.DataFrame) -> dict[str, Any]:
    text = (
        "Newton-style unlearning with an inverse empirical Fisher erases memorised canaries "
        "(lower forget exposure) better than first-order methods at equal or better utility "
        f"(held-out perplexity within {cfg.utility_tolerance:.0%} of the target's), request 1."
    )
    points = table[table["family"].isin(["first-order", "second-order"])]
    points = points[points["status"] == "ok"]
    ok = points[_within(table, cfg.utility_tolerance).loc[points.index].astype(bool)]
    evidence: dict[str, Any] = {
        "target held-out ppl": float(table.loc["target", "heldout_ppl"]),
        "target forget exposure (bits)": float(table.loc["target", "forget_exposure"]),
    }
    best = {}
    for family in ("second-order", "first-order"):
        rows = ok[ok["family"] == family]
        if len(rows):
            name = rows["forget_exposure"].astype(float).idxmin()
            best[family] = name
            evidence[f"best {family} within budget"] = (
                f"{name}: {rows.loc[name, 'forget_exposure']:.2f} bits, held-out ppl "
                f"{rows.loc[name, 'heldout_ppl']:.2f}"
            )
        else:
            evidence[f"best {family} within budget"] = "none"
    if not best:
        verdict = "not testable at this scale"
    elif "second-order" not in best:
        verdict = "did not hold"
    elif "first-order" not in best:
        verdict = "held"
    else:
        mask = _deleted_mask(cfg, 1)
        a = results.of(best["second-order"]).stats[0].exposure[mask]
        b = results.of(best["first-order"]).stats[0].exposure[mask]
        diff, low, high = _paired_ci(a, b, cfg.evaluation.n_boot)
        evidence["exposure difference second - first (bits, 95% CI over canaries)"] = (
            f"{diff:+.2f} [{low:+.2f}, {high:+.2f}] over {int(mask.sum())} canaries"
        )
        verdict = "held" if high < 0 else "did not hold"
    return {
        "name": "newton_beats_first_order",
        "text": text,
        "verdict": verdict,
        "evidence": evidence,
    }


def _deleted_mask(cfg: Config, cycle: int) -> np.ndarray:
    data = cb.canary_data(cfg.data)
    return np.array([c["group"] == "forget" and 0 < c["cycle"] <= cycle for c in data.canaries])


def _claim_removal_vs_forgetting(
    cfg: Config, table: pd.DataFrame, cycle_table: pd.DataFrame
) -> dict[str, Any]:
    text = (
        "Fisher Removal erases harder than Fisher Forgetting but costs more utility (request 1), "
        "and Fisher Forgetting keeps utility best over several deletion requests (lowest "
        "held-out perplexity after the last request among the cycle methods, while lowering "
        f"forget exposure by >= {EXPOSURE_MARGIN:g} bit)."
    )
    fr, ff = table.loc["fisher_removal"], table.loc["fisher_forgetting"]
    harder = fr["forget_exposure"] < ff["forget_exposure"]
    costlier = fr["heldout_ppl"] > ff["heldout_ppl"]
    evidence: dict[str, Any] = {
        "request 1 forget exposure FR / FF (bits)": f"{fr['forget_exposure']:.2f} / "
        f"{ff['forget_exposure']:.2f}",
        "request 1 held-out ppl FR / FF": f"{fr['heldout_ppl']:.2f} / {ff['heldout_ppl']:.2f}",
    }
    part_a = bool(harder and costlier)
    if cycle_table.empty or cycle_table["cycle"].max() < 2:
        evidence["cycles"] = "fewer than 2 requests: part (b) not testable"
        verdict = "not testable at this scale"
    else:
        last = cycle_table[cycle_table["cycle"] == cycle_table["cycle"].max()].set_index("method")
        target_exposure = float(table.loc["target", "forget_exposure"])
        n_last = int(cycle_table["cycle"].max())
        for m in last.index:
            ppl, exposure = last.loc[m, "heldout_ppl"], last.loc[m, "forget_exposure"]
            key = f"after request {n_last}: {m} held-out ppl / forget exposure"
            evidence[key] = f"{ppl:.2f} / {exposure:.2f}"
        if "fisher_forgetting" not in last.index:
            verdict = "not testable at this scale"
        else:
            best = last["heldout_ppl"].astype(float).idxmin()
            ff_last = last.loc["fisher_forgetting"]
            # every cycle's exposure is over the canaries deleted so far; the target's at
            # request 1 stands for "not erased" (all forget canaries are memorised alike)
            lowered = ff_last["forget_exposure"] <= target_exposure - EXPOSURE_MARGIN
            part_b = bool(best == "fisher_forgetting" and lowered)
            evidence["lowest held-out ppl after the last request"] = best
            verdict = "held" if (part_a and part_b) else "did not hold"
    evidence["part (a) FR harder and costlier"] = part_a
    return {"name": "removal_vs_forgetting", "text": text, "verdict": verdict, "evidence": evidence}


def _claim_dp(cfg: Config, table: pd.DataFrame, dp: pd.DataFrame) -> dict[str, Any]:
    text = (
        "DP-SGD training is not a substitute for unlearning: no privacy level tested gives "
        "both oracle-level exposure of the forget canaries (within "
        f"{EXPOSURE_MARGIN:g} bit) and held-out perplexity within "
        f"{cfg.utility_tolerance:.0%} of the target's."
    )
    noisy = dp[np.isfinite(dp["target_epsilon"].astype(float))] if len(dp) else dp
    if noisy.empty:
        return {
            "name": "dp_not_a_substitute",
            "text": text,
            "verdict": "not testable at this scale",
            "evidence": "no DP-SGD model was trained",
        }
    oracle_level = float(table.loc["oracle", "forget_exposure"]) + EXPOSURE_MARGIN
    budget = (1 + cfg.utility_tolerance) * float(table.loc["target", "heldout_ppl"])
    evidence: dict[str, Any] = {
        "oracle forget exposure + margin (bits)": oracle_level,
        "held-out ppl budget": budget,
    }
    substitutes = []
    for name, row in noisy.iterrows():
        reps = [c for c in row.index if c.startswith("forget_exposure_r")]
        per_count = ", ".join(f"{c.removeprefix('forget_exposure_r')}x {row[c]:.1f}" for c in reps)
        evidence[name] = (
            f"epsilon {row['epsilon']:.3g}: forget exposure {row['all_forget_exposure']:.2f} bits "
            f"({per_count}), retain {row['retain_exposure']:.2f}, held-out ppl "
            f"{row['heldout_ppl']:.2f}"
        )
        if row["all_forget_exposure"] <= oracle_level and row["heldout_ppl"] <= budget:
            substitutes.append(name)
    verdict = "did not hold" if substitutes else "held"
    return {"name": "dp_not_a_substitute", "text": text, "verdict": verdict, "evidence": evidence}


def claims_markdown(found: Sequence[dict[str, Any]]) -> str:
    """The claims and their verdicts as a markdown list, numbers included."""

    def show(value: Any) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    lines = []
    for c in found:
        evidence = c["evidence"]
        detail = (
            "; ".join(f"{k}: {show(v)}" for k, v in evidence.items())
            if isinstance(evidence, dict)
            else str(evidence)
        )
        lines.append(f"- **{c['verdict']}**: {c['text']} ({detail})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- records
def _numbers(row: pd.Series | dict) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in RECORDED:
        if key in row:
            out[key] = float(row[key])
            if f"{key}_low" in row:
                out[f"{key}_ci"] = [float(row[f"{key}_low"]), float(row[f"{key}_high"])]
    return out


def records(table: pd.DataFrame, cycle_table: pd.DataFrame, dp: pd.DataFrame) -> dict[str, Any]:
    """records.json content: per method (default point, by method name) and per point, per
    cycle of the cycle methods ("1", "2", ..., "final"), the reference models and DP models."""
    methods = {}
    points = {}
    for name, row in table.iterrows():
        points[str(name)] = _numbers(row)
        if row["family"] != "reference" and row["default"]:
            methods[str(row["method_name"])] = _numbers(row)
    per_cycle: dict[str, dict[str, Any]] = {}
    for method, rows in cycle_table.groupby("method") if len(cycle_table) else []:
        entry = {}
        for _, row in rows.iterrows():
            if int(row["cycle"]) >= 1:
                entry[str(int(row["cycle"]))] = _numbers(row)
        entry["final"] = entry[str(int(rows["cycle"].max()))]
        per_cycle[str(method)] = entry
    return {
        "methods": methods,
        "points": points,
        "cycles": per_cycle,
        "reference": {k: points[k] for k in ("target", "oracle")},
        "dp": {
            str(k): {
                **_numbers(r),
                "epsilon": float(r["epsilon"]),
                "all_forget_exposure": float(r["all_forget_exposure"]),
            }
            for k, r in dp.iterrows()
        },
    }


def headline_table(table: pd.DataFrame, dp: pd.DataFrame) -> pd.DataFrame:
    """The compact table of the index page: target, oracle, default points, DP models."""
    keep = table[table["default"].astype(bool)]
    both = pd.concat([keep, dp]) if len(dp) else keep
    columns_ = [c for c in TABLE_DIRECTIONS if c in both.columns]
    return both[columns_]


def headline_directions(table: pd.DataFrame) -> dict[str, Any]:
    return {k: v for k, v in TABLE_DIRECTIONS.items() if k in table.columns}


def headline_units(table: pd.DataFrame) -> dict[str, str]:
    return {k: v for k, v in UNITS.items() if k in table.columns}
