"""Notebook 03: exact unlearning of task-adaptation data, in-context (ERASE) vs fine-tuning
(SISA, full retraining), on accuracy and on holistic cost (Muresanu, Thudi, Zhang, Papernot 2024,
"Unlearnable Algorithms for In-context Learning", arXiv 2402.00751; ICML 2025).

Claims under test:

1. ERASE's cost per deletion does not depend on the model's size or the data set's size;
2. its accuracy is comparable to fine-tuning;
3. counting inference too (every query carries the k demonstrations), in-context learning is
   cheaper overall than fine-tuning for deployments that receive deletion requests, up to a
   break-even ratio of queries per deletion, which is found here.

The protocol (`lib.benchmarks.icl`), as functions that return DataFrames or finished results:
`streams` runs every learner on every task and seed through a stream of deletion requests
(cached runner tasks); `accuracy_table`/`accuracy_curve` summarise accuracy with confidence
intervals over tasks (seeds nested); `cost_table` gives the cost per deletion, per query and of
the setup; `deletion_cost` the cost of one deletion as n grows; `holistic` the total cost per
deletion as a function of queries per deletion, and `break_even` where the lines cross;
`claims` the three verdicts computed from these numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lib import methods as method_registry
from lib import models, runner
from lib.benchmarks import icl
from lib.metrics import stats as st
from lib.specs import LoraSpec, ModelSpec, TrainSpec

__all__ = ["Config", "config", "check", "streams"]

#: The learners this notebook knows, in-context first.
IN_CONTEXT = ("erase", "random_kshot", icl.ZERO_SHOT)
# rows drawn as references (greys) in every figure: the learner that uses no training data
REFERENCE_ROWS = (icl.ZERO_SHOT,)
FINE_TUNING = ("sisa", icl.RETRAIN)
LEARNERS = (*IN_CONTEXT, *FINE_TUNING)
#: Directions of the headline numbers (higher/lower is better; None = descriptive).
DIRECTIONS: dict[str, Any] = {
    "accuracy_before": "higher",
    "accuracy_after_deletions": "higher",
    "deletion_seconds": "lower",
    "deletion_flops": "lower",
    "inference_flops_per_query": "lower",
    "recluster_rate": "lower",
    "setup_flops": "lower",
}
UNITS = {
    "deletion_seconds": "s",
    "deletion_flops": "FLOPs",
    "inference_flops_per_query": "FLOPs",
    "setup_flops": "FLOPs",
}
#: records.json keys per method (the issue's "Done when").
RECORD_KEYS = (
    "accuracy_before",
    "accuracy_after_deletions",
    "deletion_seconds",
    "deletion_flops",
    "inference_flops_per_query",
    "recluster_rate",
)


@dataclass(frozen=True)
class Config:
    """Everything notebook 03 runs, built from its parameters cell (`config(...)`)."""

    model: ModelSpec
    tasks: tuple[icl.TaskSpec, ...]
    methods: tuple[str, ...]
    hparams: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]  # method -> overrides
    icl_seeds: tuple[int, ...]
    ft_seeds: tuple[int, ...]
    n_deletions: int
    icl_checkpoints: tuple[int, ...]
    ft_checkpoints: tuple[int, ...]
    finetune: TrainSpec
    eval_batch: int
    cost: icl.DeletionCostSpec
    n_boot: int
    q_per_u: float  # the deployment (queries per deletion) at which claim 3 is judged
    comparable_margin: float  # claim 2: accuracy gap that still counts as comparable
    flat_ratio: float  # claim 1: largest / smallest cost that still counts as flat

    def method_hparams(self, method: str) -> tuple[tuple[str, Any], ...]:
        return dict(self.hparams).get(method, ())


def config(
    *,
    model: str,
    dtype: str,
    tasks: Sequence[str],
    bigbench_path: str,
    n_train: int,
    n_test: int,
    data_seed: int,
    methods: Sequence[str],
    icl_seeds: Sequence[int],
    ft_seeds: Sequence[int],
    n_deletions: int,
    icl_checkpoints: Sequence[int],
    ft_checkpoints: Sequence[int],
    erase_k: int,
    erase_epsilon: float,
    erase_projection: int,
    erase_encoder: str,
    sisa_shards: int,
    sisa_slices: int,
    sisa_aggregation: str,
    ft_epochs: float,
    ft_lr: float,
    ft_batch: int,
    ft_full: bool,
    ft_lora_top_layers: int,
    cost_sizes: Sequence[int],
    cost_deletions: int,
    cost_models: Sequence[str],
    eval_batch: int,
    n_boot: int,
    q_per_u: float,
    comparable_margin: float,
    flat_ratio: float = 2.0,
    cpu_threads: int = 0,
) -> Config:
    """The notebook's parameters as specs; every value is validated here or by the specs (a
    bad value raises KeyError/ValueError naming the allowed ones before any work).

    `cpu_threads` > 0 sets torch's intra-op CPU threads for this process (0 leaves torch's
    default). On a CPU shared with other jobs one thread is the fast choice: measured on the
    2-core study machine under load 8, scoring 80 prompts with 16 demonstrations took 10 s with
    one thread and 34-46 s with two (the threads of one operation wait for each other).
    """
    if not isinstance(cpu_threads, int) or cpu_threads < 0:
        raise ValueError(f"cpu_threads must be an integer >= 0, got {cpu_threads!r}")
    if cpu_threads:
        import torch

        torch.set_num_threads(cpu_threads)
    unknown = [m for m in methods if m not in LEARNERS]
    if unknown or not methods or len(set(methods)) != len(methods):
        raise KeyError(
            f"methods must be distinct names among {list(LEARNERS)}, got {list(methods)}"
        )
    for name, values in (("icl_seeds", icl_seeds), ("ft_seeds", ft_seeds)):
        if not values or any(not isinstance(v, int) or v < 0 for v in values):
            raise ValueError(f"{name} must be a non-empty list of integers >= 0, got {values!r}")
    if not (isinstance(n_boot, int) and n_boot >= 1):
        raise ValueError(f"n_boot must be an integer >= 1, got {n_boot!r}")
    if not q_per_u > 0 or not 0 <= comparable_margin < 1 or not flat_ratio >= 1:
        raise ValueError(
            "q_per_u must be > 0, comparable_margin in [0, 1), flat_ratio >= 1; got "
            f"{q_per_u}, {comparable_margin}, {flat_ratio}"
        )
    if not isinstance(eval_batch, int) or eval_batch < 1:
        raise ValueError(f"eval_batch must be an integer >= 1, got {eval_batch!r}")
    task_specs = tuple(
        icl.TaskSpec(name, n_train, n_test, data_seed, bigbench_path) for name in tasks
    )
    if not task_specs:
        raise ValueError("tasks must name at least one task")
    lora = {"full_finetune": bool(ft_full), "lora_top_layers": ft_lora_top_layers}
    hparams = {
        "erase": {
            "k": erase_k,
            "epsilon": erase_epsilon,
            "projection_dim": erase_projection,
            "encoder": erase_encoder,
        },
        "random_kshot": {"k": erase_k},
        "sisa": {
            "n_shards": sisa_shards,
            "n_slices": sisa_slices,
            "aggregation": sisa_aggregation,
            **lora,
        },
        icl.RETRAIN: lora,
    }
    finetune = TrainSpec(
        epochs=ft_epochs,
        lr=ft_lr,
        batch_size=ft_batch,
        warmup_ratio=0.0,
        schedule="constant",  # a stage of a few steps: no warm-up, no decay
        max_length=128,
        lora=None if ft_full else LoraSpec(),
    )
    model_spec = ModelSpec(model, dtype=dtype)
    frozen = tuple(sorted((m, tuple(sorted(hp.items()))) for m, hp in hparams.items()))
    cost = icl.DeletionCostSpec(
        model=model_spec,
        tasks=task_specs,
        erase=dict(frozen)["erase"],
        sisa=dict(frozen)["sisa"],
        epochs=ft_epochs,
        sizes=tuple(int(n) for n in cost_sizes),
        n_deletions=cost_deletions,
        other_models=tuple(ModelSpec(name, dtype=dtype) for name in cost_models),
    )
    return Config(
        model=model_spec,
        tasks=task_specs,
        methods=tuple(methods),
        hparams=frozen,
        icl_seeds=tuple(icl_seeds),
        ft_seeds=tuple(ft_seeds),
        n_deletions=n_deletions,
        icl_checkpoints=tuple(icl_checkpoints),
        ft_checkpoints=tuple(ft_checkpoints),
        finetune=finetune,
        eval_batch=eval_batch,
        cost=cost,
        n_boot=n_boot,
        q_per_u=float(q_per_u),
        comparable_margin=float(comparable_margin),
        flat_ratio=float(flat_ratio),
    )


def specs(cfg: Config) -> list[icl.StreamSpec]:
    """One stream per (task, method, seed): in-context learners on `icl_seeds`, fine-tuning on
    `ft_seeds`, zero-shot once per task (it has no randomness)."""
    out = []
    for task in cfg.tasks:
        for method in cfg.methods:
            fine = method in FINE_TUNING
            seeds = cfg.ft_seeds if fine else cfg.icl_seeds
            if method == icl.ZERO_SHOT:
                seeds = seeds[:1]
            for seed in seeds:
                out.append(
                    icl.StreamSpec(
                        model=cfg.model,
                        task=task,
                        method=method,
                        hparams=cfg.method_hparams(method),
                        n_deletions=cfg.n_deletions,
                        checkpoints=cfg.ft_checkpoints if fine else cfg.icl_checkpoints,
                        seed=seed,
                        finetune=cfg.finetune,
                        eval_batch=cfg.eval_batch,
                    )
                )
    return out


def check(cfg: Config) -> None:
    """Every method, hyperparameter, size and checkpoint, validated before any work."""
    n_layers = models.n_layers(cfg.model.name)
    floor = 1  # rows that must remain: the largest k or number of shards
    for method in cfg.methods:
        learner = icl.resolve(method, dict(cfg.method_hparams(method)))
        if learner is not None:
            learner.check(n_layers)
            floor = max(floor, getattr(learner, "k", 0), getattr(learner, "n_shards", 0))
    specs(cfg)  # checkpoints against n_deletions (StreamSpec validates)
    for task in cfg.tasks:
        n_train = len(icl.load_task(task).data["train"])
        if cfg.n_deletions > n_train - floor:
            raise ValueError(
                f"n_deletions = {cfg.n_deletions} leaves fewer than {floor} of the {n_train} "
                f"train rows of {task.name}; use at most {n_train - floor}"
            )
    for other in cfg.cost.other_models:
        models.n_layers(other.name)  # an unknown model fails here, with the offline advice


def split_hashes(cfg: Config) -> dict[str, dict[str, str]]:
    """Content hashes of every task's splits (for the records)."""
    return {t.name: icl.load_task(t).split_hashes() for t in cfg.tasks}


def taxonomy() -> pd.DataFrame:
    """The registry's taxonomy rows of the exact-unlearning family (ours included)."""
    table = method_registry.taxonomy()
    return table[table["family"] == "exact"].reset_index(drop=True)


def tasks_table(cfg: Config) -> pd.DataFrame:
    """One row per task: its labels, sizes and description."""
    rows = []
    for spec in cfg.tasks:
        task = icl.load_task(spec)
        rows.append(
            {
                "task": spec.name,
                "labels": ", ".join(task.label_names),
                "train rows": len(task.data["train"]),
                "test queries": len(task.data["test"]),
                "what decides the label": task.description,
            }
        )
    return pd.DataFrame(rows).set_index("task")


# ------------------------------------------------------------------------------- the streams
def streams(cfg: Config) -> list[icl.StreamResult]:
    """Every stream (cached by spec; an interrupted run resumes at the first missing one)."""
    return runner.sweep(specs(cfg), desc="deletion streams")


def runs_table(results: Sequence[icl.StreamResult]) -> pd.DataFrame:
    """One row per stream (method, task, seed) with its headline numbers."""
    return pd.DataFrame([r.row() for r in results])


def _ordered(methods: Sequence[str]) -> list[str]:
    return [m for m in LEARNERS if m in set(methods)]


def accuracy_table(results: Sequence[icl.StreamResult], n_boot: int, seed: int = 0) -> pd.DataFrame:
    """Per method: mean test accuracy before and after the deletions (higher = better) over
    tasks and seeds, with 95% percentile bootstrap intervals that resample tasks (a task's
    seeds stay together)."""
    runs = runs_table(results)
    rows = {}
    for method in _ordered(runs["method"]):
        mine = runs[runs["method"] == method].reset_index(drop=True)
        row: dict[str, Any] = {"runs": len(mine), "tasks": mine["task"].nunique()}
        for key in ("accuracy_before", "accuracy_after_deletions"):
            values = mine[key].to_numpy(dtype=float)
            row[key] = float(values.mean())
            low, high = st.cluster_ci(
                lambda idx, v=values: float(v[idx].mean()), list(mine["task"]), n_boot, seed
            )
            row[f"{key}_low"], row[f"{key}_high"] = low, high
        rows[method] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")


def accuracy_curve(results: Sequence[icl.StreamResult]) -> pd.DataFrame:
    """Long table (method, task, seed, deletions, accuracy) for the accuracy-vs-deletions plot."""
    return pd.DataFrame(
        [
            {"method": r.method, "task": r.task, "seed": r.seed, "deletions": d, "accuracy": a}
            for r in results
            for d, a in zip(r.checkpoints, r.accuracy, strict=True)
        ]
    )


def per_task_accuracy(results: Sequence[icl.StreamResult]) -> pd.DataFrame:
    """Accuracy after the deletions, task x method (mean over seeds), zero-shot included."""
    runs = runs_table(results)
    table = runs.pivot_table(index="task", columns="method", values="accuracy_after_deletions")
    return table[_ordered(table.columns)]


# ------------------------------------------------------------------------------------- costs
def cost_table(results: Sequence[icl.StreamResult]) -> pd.DataFrame:
    """Per method (means over streams): per deletion request (seconds: measured for in-context
    learners, estimated from the measured training throughput for fine-tuning; FLOPs), the
    re-clustering rate, per query (FLOPs, prompt tokens, models a query runs through) and the
    setup (FLOPs). Lower = cheaper."""
    rows = {}
    for method in _ordered([r.method for r in results]):
        mine = [r for r in results if r.method == method]
        seconds = (
            np.concatenate([r.deletion_seconds for r in mine])
            if mine[0].deletion_seconds.size
            else np.zeros(1)
        )
        flops = (
            np.concatenate([r.deletion_flops for r in mine])
            if mine[0].deletion_flops.size
            else np.zeros(1)
        )
        fine = method in FINE_TUNING
        rows[method] = {
            "deletion_seconds": float(seconds.mean()),
            "deletion_seconds_p95": float(np.quantile(seconds, 0.95)),
            "deletion_flops": float(flops.mean()),
            "recluster_rate": float(np.mean([r.recluster_rate for r in mine]))
            if method == "erase"
            else float("nan"),
            "inference_flops_per_query": float(
                np.mean([r.inference_flops_per_query for r in mine])
            ),
            "prompt_tokens": float(np.mean([r.prompt_tokens for r in mine])),
            "models_per_query": float(np.mean([r.n_models for r in mine])),
            "setup_flops": float(np.mean([r.setup_flops for r in mine])),
            "setup_seconds": float(np.mean([r.setup_seconds for r in mine])),
            "deletion_seconds_are": "estimated (tokens x measured s/token)" if fine else "measured",
            "retraining_run_for_real_seconds": float(
                np.sum([r.real_retrain_seconds for r in mine])
            ),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")


def realism(results: Sequence[icl.StreamResult]) -> pd.DataFrame:
    """Fine-tuning streams: which retrainings ran for real (batched at the checkpoints) and
    which were counted, with the counted and measured tokens of the real ones."""
    rows = []
    for r in results:
        if r.method not in FINE_TUNING:
            continue
        rows.append(
            {
                "method": r.method,
                "task": r.task,
                "seed": r.seed,
                "requests counted": len(r.deletion_tokens),
                "retraining runs for real": max(0, len([c for c in r.checkpoints if c > 0])),
                "tokens counted (all requests)": float(np.sum(r.deletion_tokens)),
                "tokens run for real": r.real_retrain_tokens,
                "plans' count of the real runs": r.counted_batch_tokens,
                "seconds run for real": r.real_retrain_seconds,
                "seconds per token": r.diagnostics.get("seconds_per_token", float("nan")),
            }
        )
    return pd.DataFrame(rows)


def deletion_cost(cfg: Config, results: Sequence[icl.StreamResult]) -> pd.DataFrame:
    """The cost of one deletion as n grows (`lib.benchmarks.icl.DeletionCostSpec`): ERASE
    measured on real / synthetic embeddings, fine-tuning counted; fine-tuning seconds =
    tokens x the median seconds per token measured in this notebook's fine-tuning streams."""
    curve = runner.run(cfg.cost)
    table = pd.DataFrame(curve.rows)
    rates = [r.diagnostics["seconds_per_token"] for r in results if r.method in FINE_TUNING]
    per_token = float(np.median(rates)) if rates else float("nan")
    counted = table["source"] == "counted"
    table.loc[counted, "seconds_per_deletion"] = (
        table.loc[counted, "tokens_per_deletion"] * per_token
    )
    return table


def of_model(table: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """The rows of the notebook's model (the cost curve also holds other models' points)."""
    return table[table["model"] == cfg.model.name].reset_index(drop=True)


def cost_long(costs: pd.DataFrame) -> pd.DataFrame:
    """Per method, FLOPs of one deletion, one query and the setup, long format for bars."""
    columns = {
        "deletion_flops": "one deletion",
        "inference_flops_per_query": "one query",
        "setup_flops": "setup (train / embed)",
    }
    long = costs[list(columns)].rename(columns=columns).reset_index(names="method")
    return long.melt(id_vars="method", var_name="cost of", value_name="FLOPs")


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of log y against log x (1 = proportional, 0 = flat)."""
    keep = (x > 0) & (y > 0) & np.isfinite(y)
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


def scaling(table: pd.DataFrame, model: str) -> pd.DataFrame:
    """Per method, for the main model: cost per deletion at the smallest and largest n, their
    ratio and the log-log slope (seconds and FLOPs)."""
    rows = {}
    main = table[table["model"] == model]
    for method, group in main.groupby("method", sort=False):
        group = group.sort_values("n")
        n = group["n"].to_numpy(dtype=float)
        row: dict[str, Any] = {"n_min": int(n[0]), "n_max": int(n[-1])}
        for what in ("seconds_per_deletion", "flops_per_deletion"):
            y = group[what].to_numpy(dtype=float)
            row[f"{what}_at_n_min"], row[f"{what}_at_n_max"] = y[0], y[-1]
            row[f"{what}_ratio_max_min"] = (
                float(np.nanmax(y) / np.nanmin(y)) if np.nanmin(y) > 0 else float("nan")
            )
            row[f"{what}_slope"] = _slope(n, y)
        rows[method] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")


def model_sizes(table: pd.DataFrame) -> pd.DataFrame:
    """Cost of one deletion per model at the real data size (ERASE measured, fine-tuning
    counted): method x model."""
    largest_real = table[table["source"] != "synthetic"].groupby("model")["n"].max()
    rows = table[table.apply(lambda r: r["n"] == largest_real.get(r["model"], -1), axis=1)]
    return rows.pivot_table(
        index=["model", "n_params", "n"], columns="method", values="flops_per_deletion"
    )


# ----------------------------------------------------------------------------- holistic cost
def _per_method(costs: pd.DataFrame, column: str) -> dict[str, float]:
    return {m: float(costs.loc[m, column]) for m in costs.index}


def holistic(costs: pd.DataFrame, ratios: Sequence[float] | None = None) -> pd.DataFrame:
    """Total FLOPs per deletion request of a deployment answering Q/U queries per deletion:
    Q/U x (FLOPs per query) + (FLOPs per deletion), per learner (zero-shot left out: it learns
    nothing). Long table (method, queries_per_deletion, flops_per_deletion_request)."""
    ratios = list(ratios) if ratios is not None else list(np.logspace(-1, 6, 57))
    c_inf = _per_method(costs, "inference_flops_per_query")
    c_unl = _per_method(costs, "deletion_flops")
    return pd.DataFrame(
        [
            {
                "method": m,
                "queries_per_deletion": r,
                "total_flops_per_deletion": r * c_inf[m] + c_unl[m],
            }
            for m in costs.index
            if m != icl.ZERO_SHOT
            for r in ratios
        ]
    )


def break_even(costs: pd.DataFrame, icl_method: str = "erase") -> dict[str, float]:
    """Queries per deletion at which `icl_method` and each fine-tuning learner cost the same:
    Q/U* = (c_del(FT) - c_del(ICL)) / (c_query(ICL) - c_query(FT)).

    In the usual case (in-context queries cost more, deletions less) the in-context learner is
    cheaper below Q/U*; when its queries cost less and its deletions more, above it
    (`icl_cheaper_below` says which). inf = it is cheaper at every ratio, 0 = at none.
    """
    out: dict[str, float] = {}
    if icl_method not in costs.index:
        return out
    for ft in FINE_TUNING:
        if ft not in costs.index:
            continue
        saved = costs.loc[ft, "deletion_flops"] - costs.loc[icl_method, "deletion_flops"]
        extra = (
            costs.loc[icl_method, "inference_flops_per_query"]
            - costs.loc[ft, "inference_flops_per_query"]
        )
        if extra == 0 or saved == 0 or (saved > 0) != (extra > 0):  # the lines never cross
            cheaper = saved >= 0 and extra <= 0
            out[ft] = math.inf if cheaper else 0.0
        else:
            out[ft] = float(saved / extra)
    return out


def icl_cheaper_below(costs: pd.DataFrame, icl_method: str = "erase") -> dict[str, bool]:
    """Per fine-tuning learner: is the in-context learner cheaper below the break-even (its
    queries cost more than the fine-tuned model's)?"""
    return {
        ft: bool(
            costs.loc[icl_method, "inference_flops_per_query"]
            >= costs.loc[ft, "inference_flops_per_query"]
        )
        for ft in FINE_TUNING
        if ft in costs.index and icl_method in costs.index
    }


def break_even_vs_n(table: pd.DataFrame, costs: pd.DataFrame, model: str) -> pd.DataFrame:
    """Break-even queries per deletion as the data grows: the counted fine-tuning and measured
    ERASE cost of one deletion at each n, the per-query costs of this notebook's streams."""
    rows = []
    main = table[table["model"] == model]
    for n, group in main.groupby("n"):
        per_n = costs.copy()
        for method in group["method"]:
            if method in per_n.index:
                per_n.loc[method, "deletion_flops"] = float(
                    group.loc[group["method"] == method, "flops_per_deletion"].iloc[0]
                )
        for ft, value in break_even(per_n).items():
            rows.append({"n": int(n), "method": ft, "break_even_queries_per_deletion": value})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------ claims
def claims(
    cfg: Config,
    accuracy: pd.DataFrame,
    costs: pd.DataFrame,
    curve: pd.DataFrame,
    results: Sequence[icl.StreamResult],
) -> list[dict[str, Any]]:
    """The paper's three claims as tested here, each with a verdict computed from the numbers
    and the numbers behind it ((name, text, verdict, evidence) dicts for `Report.claim`)."""
    return [
        _claim_cost(cfg, curve),
        _claim_accuracy(cfg, accuracy, results),
        _claim_holistic(cfg, costs, curve),
    ]


def _claim_cost(cfg: Config, curve: pd.DataFrame) -> dict[str, Any]:
    text = (
        "ERASE's cost per deletion does not depend on the data set's size or the model's size "
        f"(flat = largest / smallest mean seconds per deletion <= {cfg.flat_ratio:g})."
    )
    erase = curve[curve["method"] == "erase"]
    main = erase[erase["model"] == cfg.model.name].sort_values("n")
    if main.empty:
        return {
            "name": "deletion_cost_flat",
            "text": text,
            "verdict": "not testable at this scale",
            "evidence": "ERASE was not run",
        }
    seconds = main["seconds_per_deletion"].to_numpy(dtype=float)
    n_ratio = float(seconds.max() / seconds.min())
    evidence: dict[str, Any] = {
        "n range": f"{int(main['n'].min())}..{int(main['n'].max())}",
        "ERASE s/deletion, smallest n": float(seconds[0]),
        "ERASE s/deletion, largest n": float(seconds[-1]),
        "ERASE largest/smallest over n": n_ratio,
        "ERASE log-log slope in n": _slope(main["n"].to_numpy(dtype=float), seconds),
        # the typical deletion (the certificate alone) next to the mean, which rare
        # re-clusterings dominate at large n
        "ERASE median largest/smallest over n": float(
            main["median_seconds"].max() / main["median_seconds"].min()
        ),
        "ERASE re-clustering rate, smallest n": float(main["recluster_rate"].iloc[0]),
        "ERASE re-clustering rate, largest n": float(main["recluster_rate"].iloc[-1]),
        "LLM FLOPs per ERASE deletion": 0.0,
    }
    sisa = curve[(curve["method"] == "sisa") & (curve["model"] == cfg.model.name)].sort_values("n")
    if len(sisa) > 1:
        evidence["SISA FLOPs/deletion, largest/smallest n"] = float(
            sisa["flops_per_deletion"].iloc[-1] / sisa["flops_per_deletion"].iloc[0]
        )
    sizes_ok = True
    by_model = erase.groupby("model")
    if by_model.ngroups > 1:
        at_real = erase[erase["source"] == "real"].sort_values("n").groupby("model").tail(1)
        model_ratio = float(
            at_real["seconds_per_deletion"].max() / at_real["seconds_per_deletion"].min()
        )
        evidence["models compared (parameters)"] = ", ".join(
            f"{m} ({int(p):,})" for m, p in zip(at_real["model"], at_real["n_params"], strict=True)
        )
        evidence["ERASE largest/smallest over models"] = model_ratio
        sizes_ok = model_ratio <= cfg.flat_ratio
    else:
        evidence["model sizes"] = "one model measured (add COST_MODELS to compare)"
    verdict = "held" if n_ratio <= cfg.flat_ratio and sizes_ok else "did not hold"
    return {"name": "deletion_cost_flat", "text": text, "verdict": verdict, "evidence": evidence}


def _task_means(results: Sequence[icl.StreamResult], method: str) -> pd.Series:
    runs = runs_table([r for r in results if r.method == method])
    return runs.groupby("task")["accuracy_after_deletions"].mean()


def _claim_accuracy(
    cfg: Config, accuracy: pd.DataFrame, results: Sequence[icl.StreamResult]
) -> dict[str, Any]:
    text = (
        "ERASE's accuracy is comparable to fine-tuning (after the deletions, at most "
        f"{cfg.comparable_margin:g} below the best fine-tuning learner)."
    )
    fine = [m for m in FINE_TUNING if m in accuracy.index]
    if "erase" not in accuracy.index or not fine:
        return {
            "name": "accuracy_comparable",
            "text": text,
            "verdict": "not testable at this scale",
            "evidence": "needs erase and a fine-tuning learner",
        }
    best = max(fine, key=lambda m: accuracy.loc[m, "accuracy_after_deletions"])
    erase = accuracy.loc["erase"]
    gap = float(accuracy.loc[best, "accuracy_after_deletions"] - erase["accuracy_after_deletions"])
    diff = (_task_means(results, best) - _task_means(results, "erase")).dropna()
    gaps = diff.to_numpy()
    low, high = st.cluster_ci(lambda idx: float(gaps[idx].mean()), list(diff.index), cfg.n_boot)
    evidence: dict[str, Any] = {
        "ERASE accuracy after deletions": float(erase["accuracy_after_deletions"]),
        f"{best} accuracy after deletions": float(accuracy.loc[best, "accuracy_after_deletions"]),
        f"gap ({best} - ERASE), 95% CI over tasks": f"{gap:.3f} [{low:.3f}, {high:.3f}]",
        "ERASE accuracy before deletions": float(erase["accuracy_before"]),
    }
    for ref in ("random_kshot", icl.ZERO_SHOT):
        if ref in accuracy.index:
            evidence[f"{ref} accuracy after deletions"] = float(
                accuracy.loc[ref, "accuracy_after_deletions"]
            )
    verdict = "held" if gap <= cfg.comparable_margin else "did not hold"
    return {"name": "accuracy_comparable", "text": text, "verdict": verdict, "evidence": evidence}


def _claim_holistic(cfg: Config, costs: pd.DataFrame, curve: pd.DataFrame) -> dict[str, Any]:
    text = (
        "Counting inference, in-context learning (ERASE) costs less in total than fine-tuning "
        f"for a deployment answering {cfg.q_per_u:g} queries per deletion request."
    )
    points = break_even(costs)
    if not points:
        return {
            "name": "icl_cheaper_overall",
            "text": text,
            "verdict": "not testable at this scale",
            "evidence": "needs erase and a fine-tuning learner",
        }
    total = {
        m: cfg.q_per_u * costs.loc[m, "inference_flops_per_query"] + costs.loc[m, "deletion_flops"]
        for m in ["erase", *points]
    }
    evidence: dict[str, Any] = {
        f"break-even queries per deletion vs {m}": v for m, v in points.items()
    }
    evidence.update(
        {
            f"FLOPs per deletion request at Q/U = {cfg.q_per_u:g}, {m}": float(v)
            for m, v in total.items()
        }
    )
    at_n = break_even_vs_n(curve, costs, cfg.model.name)
    if not at_n.empty:
        largest = at_n[at_n["n"] == at_n["n"].max()]
        for row in largest.itertuples():
            evidence[f"break-even vs {row.method} at n = {row.n} (counted)"] = (
                row.break_even_queries_per_deletion
            )
    verdict = "held" if all(total["erase"] < total[m] for m in points) else "did not hold"
    return {"name": "icl_cheaper_overall", "text": text, "verdict": verdict, "evidence": evidence}


def claims_markdown(found: Sequence[dict[str, Any]]) -> str:
    """The claims and their verdicts as a markdown list, numbers included."""

    def show(value: Any) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    return "\n".join(
        f"- **{c['verdict']}**: {c['text']} ("
        + (
            "; ".join(f"{k}: {show(v)}" for k, v in c["evidence"].items())
            if isinstance(c["evidence"], dict)
            else str(c["evidence"])
        )
        + ")"
        for c in found
    )


# ------------------------------------------------------------------------------- the records
def headline_table(accuracy: pd.DataFrame, costs: pd.DataFrame) -> pd.DataFrame:
    """Per method: accuracy before/after the deletions and the costs (the index card)."""
    table = accuracy[["accuracy_before", "accuracy_after_deletions"]].join(
        costs[
            [
                "deletion_seconds",
                "deletion_flops",
                "inference_flops_per_query",
                "recluster_rate",
                "setup_flops",
            ]
        ]
    )
    return table


def method_records(accuracy: pd.DataFrame, costs: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """records.json `methods`: per method the issue's keys (recluster_rate null where there is
    no clustering), with the accuracy intervals."""
    out = {}
    for method in accuracy.index:
        record: dict[str, Any] = {}
        for key in RECORD_KEYS:
            source = accuracy if key in accuracy.columns else costs
            value = float(source.loc[method, key])
            record[key] = value if math.isfinite(value) else None
        for key in ("accuracy_before", "accuracy_after_deletions"):
            record[f"{key}_ci"] = [
                float(accuracy.loc[method, f"{key}_low"]),
                float(accuracy.loc[method, f"{key}_high"]),
            ]
        record["setup_flops"] = float(costs.loc[method, "setup_flops"])
        record["deletion_seconds_are"] = str(costs.loc[method, "deletion_seconds_are"])
        out[method] = record
    return out


def break_even_record(costs: pd.DataFrame) -> dict[str, float | None]:
    """records.json `break_even_queries_per_deletion`: ERASE vs each fine-tuning learner
    (null = ERASE is always cheaper; 0 = never)."""
    return {m: (v if math.isfinite(v) else None) for m, v in break_even(costs).items()}


def break_even_lines(costs: pd.DataFrame) -> dict[str, float]:
    """Vertical markers for the holistic figure: 'vs <method>' -> break-even Q/U."""
    return {f"ERASE = {m}": v for m, v in break_even(costs).items()}
