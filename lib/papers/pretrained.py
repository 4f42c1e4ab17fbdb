"""Notebook 02: Yao et al. 2024, "Machine Unlearning of Pre-trained Large Language Models"
(arXiv 2402.15159), on pre-training-style data with a real retrained model
(`lib.benchmarks.pretraining`): configuration from the notebook's parameters, membership before
unlearning, the main table (domain x method), the learning-rate x epochs grid with its good
region, the cost against retraining, and the three claims as verdicts computed from the
numbers.

Claims under test:
1. every method is more than 1e5 times cheaper than retraining (FLOPs of the unlearning run vs
   6 N x the base model's published pre-training tokens);
2. GA+GD_in is the most robust to hyperparameters (largest good-region area of the grid) and
   keeps utility best (lowest general perplexity among the methods that reach the
   approximate level at the main setting);
3. a general retain set helps less than an in-distribution one (for GD and for KL, the `_in`
   variant has a good-region area at least as large and a lower in-distribution retain
   perplexity than the `_gen` variant).

The good region of a grid cell: forget perplexity at or above the target's perplexity on the
domain's approximate (never trained) chunks, and general perplexity within `GENERAL_TOLERANCE`
(5%) of the target's. Its area is the fraction of the grid's cells inside it (0 to 1). With a
retrained model, `area_retrained_level` uses exact retraining's forget perplexity as the level
instead (the approximate split is only a proxy: its documents may be easier or harder than the
forget documents).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from lib import runner
from lib.benchmarks import pretraining as pt
from lib.methods.pretrained import PAPER_NAMES
from lib.metrics import mia
from lib.metrics.stats import cluster_indices
from lib.specs import ModelSpec, TrainSpec

__all__ = ["Config", "config", "setup", "main_runs", "grid", "costs", "claims"]

#: General perplexity may rise by at most this fraction inside the good region.
GENERAL_TOLERANCE = 0.05
# rows drawn as references (greys, stars) in every figure: the model before and the oracle
REFERENCE_ROWS = ("target", "retrained")
#: The claimed minimum ratio of retraining cost to unlearning cost.
CLAIMED_RATIO = 1e5
#: Columns of the main table, in order (units: perplexity, percent, AUC, FLOPs, seconds).
MAIN_COLUMNS = (
    "forget_ppl",
    "forget_ppl_low",
    "forget_ppl_high",
    "approximate_ppl",
    "retain_ppl",
    "general_ppl",
    "forget_acc",
    "mink_auc",
    "mink_auc_low",
    "mink_auc_high",
    "mink_bacc",
    "mink_tpr5",
    "probe_prob",
    "forget_ppl_vs_retrained",
    "mink_auc_gap",
    "seconds",
    "flops",
)
REFERENCES = ("target", "retrained")


@dataclass(frozen=True)
class Config:
    """Everything notebook 02 runs, built from its parameters cell (`config(...)`)."""

    pretrain: pt.PretrainSpec
    unlearn: TrainSpec  # main table: the paper's recipe (cosine, 3% warm-up, no decay)
    grid_train: TrainSpec  # grid: constant learning rate, epochs = the largest grid epoch
    evaluation: pt.EvalSpec
    grid_evaluation: pt.EvalSpec
    methods: tuple[str, ...]
    hparams: Mapping[str, Mapping[str, Any]]
    domains: tuple[str, ...]
    grid_domains: tuple[str, ...]
    grid_lrs: tuple[float, ...]
    grid_epochs: tuple[int, ...]
    seeds: tuple[int, ...]
    mink_k: float
    n_boot: int
    pretraining_tokens: float
    tokens_source: str


def config(
    *,
    model: str,
    dtype: str,
    data_source: str,
    domains: Sequence[str],
    n_forget_docs: int,
    n_approx_docs: int,
    n_retain_docs: int,
    n_general_retain_docs: int,
    n_general_eval_docs: int,
    doc_max_chars: int,
    doc_min_chars: int,
    data_seed: int,
    chunk_tokens: int,
    continued: bool,
    pretrain_lr: float,
    pretrain_batch: int,
    shared_epochs: float,
    slice_epochs: float,
    methods: Sequence[str],
    method_hparams: Mapping[str, Mapping[str, Any]],
    unlearn_lr: float,
    unlearn_epochs: float,
    unlearn_batch: int,
    unlearn_accum: int,
    grid_domains: Sequence[str],
    grid_lrs: Sequence[float],
    grid_epochs: Sequence[int],
    seeds: Sequence[int],
    mink_k: float,
    eval_batch: int,
    eval_retain_chunks: int,
    eval_general_chunks: int,
    grid_general_chunks: int,
    n_probes: int,
    n_boot: int,
    pretraining_tokens: float | None,
) -> Config:
    """The notebook's parameters as specs, each validated before any work (ValueError /
    KeyError naming the allowed values)."""
    corpus = pt.CorpusSpec(
        source=data_source,
        domains=tuple(domains),
        n_forget=n_forget_docs,
        n_approximate=n_approx_docs,
        n_retain=n_retain_docs,
        n_general_retain=n_general_retain_docs,
        n_general_eval=n_general_eval_docs,
        max_chars=doc_max_chars,
        min_chars=doc_min_chars,
        seed=data_seed,
        chunk_tokens=chunk_tokens,
    )
    phase = TrainSpec(
        epochs=shared_epochs,
        lr=pretrain_lr,
        batch_size=pretrain_batch,
        max_length=chunk_tokens,
        warmup_ratio=0.1,
        schedule="cosine",
    )
    pretrain = pt.PretrainSpec(
        ModelSpec(model, dtype=dtype),
        corpus,
        phase,
        replace(phase, epochs=slice_epochs),
        continued=continued,
    )
    # The official recipe: AdamW, no weight decay, 3% warm-up, cosine decay, clipping at 1.
    unlearn = TrainSpec(
        epochs=unlearn_epochs,
        lr=unlearn_lr,
        batch_size=unlearn_batch,
        grad_accum=unlearn_accum,
        weight_decay=0.0,
        warmup_ratio=0.03,
        schedule="cosine",
        max_length=chunk_tokens,
    )
    grid_epochs = tuple(grid_epochs)
    if not grid_epochs or any(not isinstance(e, int) or e < 1 for e in grid_epochs):
        raise ValueError(f"grid_epochs must be integers >= 1, got {grid_epochs}")
    if list(grid_epochs) != sorted(set(grid_epochs)):
        raise ValueError(f"grid_epochs must be increasing and distinct, got {grid_epochs}")
    if not grid_lrs or any(not lr > 0 for lr in grid_lrs):
        raise ValueError(f"grid_lrs must be positive learning rates, got {grid_lrs}")
    if not set(grid_domains) <= set(domains):
        raise ValueError(f"grid_domains {list(grid_domains)} must be among domains {list(domains)}")
    if mink_k not in pt.MINK_KS:
        raise ValueError(f"mink_k must be one of {pt.MINK_KS}, got {mink_k!r}")
    if grid_general_chunks > eval_general_chunks:
        raise ValueError(
            f"grid_general_chunks ({grid_general_chunks}) must be <= eval_general_chunks "
            f"({eval_general_chunks}): the grid's reference level is read from the target's scores"
        )
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and non-empty, got {seeds}")
    if not isinstance(n_boot, int) or n_boot < 10:
        raise ValueError(f"n_boot must be an integer >= 10, got {n_boot!r}")
    grid_train = replace(
        unlearn, epochs=grid_epochs[-1], warmup_ratio=0.0, schedule="constant", lr=grid_lrs[0]
    )
    evaluation = pt.EvalSpec(eval_batch, eval_retain_chunks, eval_general_chunks, n_probes)
    hparams = {name: dict(values) for name, values in (method_hparams or {}).items()}
    pt.validate(list(methods), hparams, pretrain.model)
    tokens, source = pt.pretraining_tokens(model, pretraining_tokens)
    return Config(
        pretrain=pretrain,
        unlearn=unlearn,
        grid_train=grid_train,
        evaluation=evaluation,
        grid_evaluation=replace(evaluation, n_general=grid_general_chunks, n_probes=0),
        methods=tuple(methods),
        hparams=hparams,
        domains=tuple(domains),
        grid_domains=tuple(grid_domains),
        grid_lrs=tuple(float(x) for x in grid_lrs),
        grid_epochs=grid_epochs,
        seeds=tuple(seeds),
        mink_k=float(mink_k),
        n_boot=n_boot,
        pretraining_tokens=tokens,
        tokens_source=source,
    )


def paper_name(method: str) -> str:
    """The paper's name of a method (registry name for others)."""
    return PAPER_NAMES.get(method, method)


# --------------------------------------------------------------------------- data
def data_table(cfg: Config) -> pd.DataFrame:
    """Documents, chunks and tokens of every split, with content hashes."""
    spec = cfg.pretrain
    docs = pt.corpora(spec.corpus).metadata()["sizes"]
    hashes = pt.split_hashes(spec.corpus, spec.model.name)
    rows = []
    for (domain, split), chunk_rows in pt.chunks(spec.corpus, spec.model.name).items():
        name = f"{domain}/{split}"
        rows.append(
            {
                "split": name,
                "documents": docs[name]["documents"],
                "chunks": len(chunk_rows),
                "tokens": sum(r["n_tokens"] for r in chunk_rows),
                "hash": hashes[name],
            }
        )
    table = pd.DataFrame(rows).set_index("split")
    if spec.continued:
        for phase in ("shared", "target", "retrained"):
            phase_rows = pt.phase_rows(spec, phase)
            table.loc[f"training: {phase}", ["chunks", "tokens"]] = (
                len(phase_rows),
                sum(r["n_tokens"] for r in phase_rows),
            )
    return table


def split_hashes(cfg: Config) -> dict[str, str]:
    return pt.split_hashes(cfg.pretrain.corpus, cfg.pretrain.model.name)


# --------------------------------------------------------------------------- statistics
def _doc_groups(scores: pt.SetScores) -> list[np.ndarray]:
    return cluster_indices(scores.doc_ids)


def auc_ci(
    forget: pt.SetScores, approx: pt.SetScores, k: float, n_boot: int, seed: int = 0
) -> tuple[float, float]:
    """95% bootstrap interval of the folded Min-K% AUC, resampling *documents* (all their
    chunks) with replacement, forget and approximate independently. Bounded below by 0.5,
    like the folded AUC itself."""
    member, nonmember = pt.mink_scores(forget.logprobs, k), pt.mink_scores(approx.logprobs, k)
    groups_f, groups_a = _doc_groups(forget), _doc_groups(approx)

    def folded(f_docs: np.ndarray, a_docs: np.ndarray) -> float:
        f = np.concatenate([groups_f[int(i)] for i in f_docs])
        a = np.concatenate([groups_a[int(i)] for i in a_docs])
        raw = mia.mia_auc(member[f], nonmember[a])
        return max(raw, 1.0 - raw)

    return mia.bootstrap_ci(
        folded, np.arange(len(groups_f)), np.arange(len(groups_a)), n_boot=n_boot, seed=seed
    )


def ppl_ci(scores: pt.SetScores, n_boot: int, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of the macro perplexity, resampling documents."""
    groups = _doc_groups(scores)

    def ppl(docs: np.ndarray) -> float:
        return pt.macro_ppl([scores.logprobs[i] for d in docs for i in groups[int(d)]])

    return mia.bootstrap_ci(ppl, np.arange(len(groups)), n_boot=n_boot, seed=seed)


def _summary_row(sets: Mapping[str, pt.SetScores], domain: str, cfg: Config) -> dict[str, float]:
    """Metrics of one model on one domain, with the headline k and bootstrap intervals."""
    picked = {k: v for k, v in sets.items() if k.startswith(f"{domain}/") or k == "general"}
    metrics = pt.set_metrics(picked)
    k = f"{cfg.mink_k:g}"
    row = {
        name: metrics.get(name, np.nan)
        for name in (
            "forget_ppl",
            "approximate_ppl",
            "retain_ppl",
            "general_ppl",
            "forget_acc",
        )
    }
    forget, approx = sets.get(f"{domain}/forget"), sets.get(f"{domain}/approximate")
    if forget is not None:
        row["forget_ppl_low"], row["forget_ppl_high"] = ppl_ci(forget, cfg.n_boot)
    if forget is not None and approx is not None:
        row["mink_auc"] = metrics[f"mink_auc_{k}"]
        row["mink_auc_raw"] = metrics[f"mink_auc_raw_{k}"]
        row["mink_bacc"] = metrics[f"mink_bacc_{k}"]
        row["mink_tpr5"] = metrics[f"mink_tpr5_{k}"]
        row["mink_auc_low"], row["mink_auc_high"] = auc_ci(forget, approx, cfg.mink_k, cfg.n_boot)
    return row


# --------------------------------------------------------------------------- setup
def setup(cfg: Config) -> pd.DataFrame:
    """Base, target and retrained model on every domain before any unlearning: perplexities,
    Min-K% AUC (forget vs approximate) with its document-bootstrap interval. One row per
    (model, domain). In native mode the target is the base model (one "target" row per
    domain) and there is no retrained model."""
    models = ("base", "target", "retrained") if cfg.pretrain.continued else ("target",)
    rows = []
    for which in models:
        scores = pt.stored_model_scores(cfg.pretrain, which, cfg.evaluation)
        probe = float(np.mean(np.exp(-scores.probe_nll))) if len(scores.probe_nll) else np.nan
        for domain in cfg.domains:
            row = _summary_row(scores.sets, domain, cfg)
            rows.append({"model": which, "domain": domain, **row, "probe_prob": probe})
    return pd.DataFrame(rows).set_index(["model", "domain"])


def membership(setup_table: pd.DataFrame, cfg: Config) -> tuple[str, dict[str, Any]]:
    """Markdown: did continued pre-training make the forget documents members? (target AUC
    interval above 0.5, retrained AUC near 0.5), and the evidence as a mapping."""
    evidence: dict[str, Any] = {}
    lines = []
    model = "target"
    established = []
    for domain in cfg.domains:
        t = setup_table.loc[(model, domain)]
        member = bool(t["mink_auc_low"] > 0.5 and t["mink_auc_raw"] > 0.5)
        established.append(member)
        text = (
            f"**{domain}**: {model} AUC {t['mink_auc']:.2f} "
            f"[{t['mink_auc_low']:.2f}, {t['mink_auc_high']:.2f}]"
        )
        evidence[f"{domain} {model} AUC"] = round(float(t["mink_auc"]), 3)
        if cfg.pretrain.continued:
            r = setup_table.loc[("retrained", domain)]
            text += (
                f", retrained AUC {r['mink_auc']:.2f} [{r['mink_auc_low']:.2f}, "
                f"{r['mink_auc_high']:.2f}]; forget PPL {t['forget_ppl']:.3g} (target) vs "
                f"{r['forget_ppl']:.3g} (retrained), approximate PPL {t['approximate_ppl']:.3g}"
            )
            evidence[f"{domain} retrained AUC"] = round(float(r["mink_auc"]), 3)
        if ("base", domain) in setup_table.index and cfg.pretrain.continued:
            b = setup_table.loc[("base", domain)]
            text += (
                f"; before any training here the base model has forget PPL {b['forget_ppl']:.3g} "
                f"vs approximate {b['approximate_ppl']:.3g}"
            )
        lines.append(f"- {text}: {'members' if member else 'membership NOT established'}")
    n = sum(established)
    head = (
        f"Membership before unlearning (Min-K% {cfg.mink_k:g}, forget vs approximate; 95% "
        f"document-bootstrap intervals): established in **{n} of {len(established)}** domains "
        "(the target's interval lies above 0.5 and its forget chunks are the likelier ones)."
    )
    if not cfg.pretrain.continued:
        head += (
            " Native mode: the target is the base model and there is no retrained model; the "
            "approximate split is public code/text too, so both sides may be native members."
        )
    evidence["domains with membership"] = f"{n}/{len(established)}"
    return head + "\n\n" + "\n".join(lines), evidence


# --------------------------------------------------------------------------- main table
def main_specs(cfg: Config) -> list[pt.UnlearnRunSpec]:
    """One spec per (seed, domain, method) at the main setting."""
    return [
        pt.UnlearnRunSpec(
            pretrain=cfg.pretrain,
            domain=domain,
            method=method,
            train=replace(cfg.unlearn, seed=seed),
            evaluation=cfg.evaluation,
            hparams=tuple(sorted(cfg.hparams.get(method, {}).items())),
        )
        for seed in cfg.seeds
        for domain in cfg.domains
        for method in cfg.methods
    ]


@dataclass(frozen=True)
class Main:
    """The main table: one row per (domain, method) plus the target and retrained rows of each
    domain (mean over seeds; intervals from the first seed), and the runs themselves."""

    table: pd.DataFrame
    runs: list[pt.PretrainRun]


def main_runs(cfg: Config, setup_table: pd.DataFrame) -> Main:
    """Run (or read from the cache) every method on every domain at the main setting."""
    runs = runner.sweep(main_specs(cfg), desc="unlearning runs")
    rows = []
    for run in runs:
        row = _summary_row(run.scores, run.domain, cfg)
        row["probe_prob"] = run.metrics.get("probe_prob", np.nan)
        rows.append(
            {
                "domain": run.domain,
                "method": run.method,
                "seed": run.seed,
                **row,
                "seconds": run.cost["seconds"],
                "flops": run.cost["flops"],
                "steps": run.cost["steps"],
                "status": run.status,
            }
        )
    table = pd.DataFrame(rows)
    first = table[table["seed"] == cfg.seeds[0]].set_index(["domain", "method"])
    mean = table.drop(columns=["seed", "status"]).groupby(["domain", "method"], sort=False).mean()
    for col in ("forget_ppl_low", "forget_ppl_high", "mink_auc_low", "mink_auc_high"):
        mean[col] = first[col]
    mean["status"] = table.groupby(["domain", "method"], sort=False)["status"].agg(
        lambda s: "ok" if (s == "ok").all() else "diverged"
    )
    references = setup_table.loc[[m for m in REFERENCES if m in setup_table.index.levels[0]]]
    references = references.swaplevel().rename_axis(["domain", "method"])
    full = pd.concat([references, mean]).sort_index(level=0, sort_remaining=False)
    full = full.reindex(
        pd.MultiIndex.from_tuples(
            [
                (d, m)
                for d in cfg.domains
                for m in (*REFERENCES, *cfg.methods)
                if (d, m) in full.index
            ],
            names=["domain", "method"],
        )
    )
    if cfg.pretrain.continued:
        retrained = full.xs("retrained", level="method")
        for col, target_col, kind in (
            ("forget_ppl_vs_retrained", "forget_ppl", "ratio"),
            ("mink_auc_gap", "mink_auc", "gap"),
        ):
            ref = retrained[target_col].reindex(full.index.get_level_values("domain")).to_numpy()
            value = full[target_col].to_numpy()
            full[col] = value / ref if kind == "ratio" else np.abs(value - ref)
    return Main(table=full[[c for c in MAIN_COLUMNS if c in full.columns] + ["status"]], runs=runs)


def summary(main: Main, areas: pd.DataFrame, cost: pd.DataFrame) -> pd.DataFrame:
    """Per method (mean over domains; the paper's names): the headline numbers, with the
    reference rows."""
    per_method = main.table.drop(columns=["status"]).groupby(level="method", sort=False).mean()
    per_method["cost_ratio_vs_retraining"] = cost.groupby("method", sort=False)[
        "ratio_vs_pretraining"
    ].mean()
    per_method.index = [paper_name(m) for m in per_method.index]
    if not areas.empty:
        per_method["good_region_area"] = areas.groupby("method")["area"].mean()
        if "area_retrained_level" in areas:
            per_method["good_region_area_retrained_level"] = areas.groupby("method")[
                "area_retrained_level"
            ].mean()
    return per_method.rename_axis("method")


# --------------------------------------------------------------------------- grid
def grid_specs(cfg: Config) -> list[pt.UnlearnRunSpec]:
    """One run per (grid domain, method, learning rate), scored after each grid epoch."""
    return [
        pt.UnlearnRunSpec(
            pretrain=cfg.pretrain,
            domain=domain,
            method=method,
            train=replace(cfg.grid_train, lr=lr, seed=cfg.seeds[0]),
            evaluation=cfg.grid_evaluation,
            sets=("forget", "general"),
            eval_epochs=cfg.grid_epochs,
            hparams=tuple(sorted(cfg.hparams.get(method, {}).items())),
        )
        for domain in cfg.grid_domains
        for method in cfg.methods
        for lr in cfg.grid_lrs
    ]


@dataclass(frozen=True)
class Grid:
    """Grid cells (domain, method, lr, epochs, forget/general PPL, good) and areas."""

    cells: pd.DataFrame
    areas: pd.DataFrame
    levels: pd.DataFrame  # per domain: the approximate level and the general limit


def grid_levels(cfg: Config) -> pd.DataFrame:
    """Per grid domain: the target's approximate PPL (the forgetting level) and its general
    PPL on the grid's general chunks times 1 + tolerance (the utility limit)."""
    target = pt.stored_model_scores(
        cfg.pretrain, "target", cfg.evaluation
    ).sets  # same chunks as the grid's (a prefix of the general set)
    rows = []
    for domain in cfg.grid_domains:
        general = target["general"].subset(cfg.grid_evaluation.n_general)
        rows.append(
            {
                "domain": domain,
                "forget_level": pt.macro_ppl(target[f"{domain}/approximate"].logprobs),
                "target_forget_ppl": pt.macro_ppl(target[f"{domain}/forget"].logprobs),
                "target_general_ppl": pt.macro_ppl(general.logprobs),
            }
        )
    levels = pd.DataFrame(rows).set_index("domain")
    levels["general_limit"] = levels["target_general_ppl"] * (1 + GENERAL_TOLERANCE)
    if cfg.pretrain.continued:  # for comparison: where exact retraining puts the forget PPL
        retrained = pt.stored_model_scores(cfg.pretrain, "retrained", cfg.evaluation).sets
        levels["retrained_forget_ppl"] = [
            pt.macro_ppl(retrained[f"{d}/forget"].logprobs) for d in levels.index
        ]
    return levels


def grid(cfg: Config) -> Grid:
    """Run (or read) the grid and mark its good region (module docstring)."""
    levels = grid_levels(cfg)
    runs = runner.sweep(grid_specs(cfg), desc="grid runs")
    rows = []
    for run in runs:
        for point in run.points:
            rows.append(
                {
                    "domain": run.domain,
                    "method": paper_name(run.method),
                    "lr": run.lr,
                    "epochs": int(point["epoch"]),
                    "forget_ppl": point.get("forget_ppl", np.nan),
                    "general_ppl": point.get("general_ppl", np.nan),
                    "diverged": bool(point.get("diverged", 0.0)),
                }
            )
    cells = pd.DataFrame(rows)
    level = levels.reindex(cells["domain"])
    keeps_utility = (cells["general_ppl"].to_numpy() <= level["general_limit"].to_numpy()) & ~(
        cells["diverged"].to_numpy()
    )
    forget = cells["forget_ppl"].to_numpy()
    cells["good"] = (forget >= level["forget_level"].to_numpy()) & keeps_utility
    groups = ["domain", "method"]
    areas = cells.groupby(groups, sort=False)["good"].mean().rename("area").reset_index()
    if "retrained_forget_ppl" in levels:
        # The same region with exact retraining's forget PPL as the level (our addition).
        cells["good_vs_retrained"] = (
            forget >= level["retrained_forget_ppl"].to_numpy()
        ) & keeps_utility
        areas["area_retrained_level"] = (
            cells.groupby(groups, sort=False)["good_vs_retrained"].mean().to_numpy()
        )
    return Grid(cells=cells, areas=areas, levels=levels)


# --------------------------------------------------------------------------- cost
def costs(cfg: Config, main: Main) -> pd.DataFrame:
    """Per (domain, method): FLOPs and seconds of the unlearning run, the ratio of full
    retraining (6 N x published pre-training tokens) to it, and the ratio of our measured
    retrained slice to it. A "retrained slice" row gives that slice's own cost."""
    rows = []
    slice_flops = slice_seconds = np.nan
    n_params = main.runs[0].cost["n_params"] if main.runs else np.nan
    if cfg.pretrain.continued:
        record = pt.train_record(pt.final_checkpoint(cfg.pretrain, False))
        n_params = record["n_params"]
        slice_flops = 6.0 * n_params * record["train_tokens"]
        slice_seconds = record["seconds"]
    full_flops = 6.0 * n_params * cfg.pretraining_tokens
    for run in main.runs:
        rows.append(
            {
                "domain": run.domain,
                "method": run.method,
                "seed": run.seed,
                "flops": run.cost["flops"],
                "seconds": run.cost["seconds"],
                "ratio_vs_pretraining": full_flops / run.cost["flops"],
                "ratio_vs_retrained_slice": slice_flops / run.cost["flops"],
                "seconds_vs_retrained_slice": slice_seconds / max(run.cost["seconds"], 1e-9),
            }
        )
    table = pd.DataFrame(rows).groupby(["domain", "method"], sort=False).mean().reset_index()
    table = table.drop(columns="seed")
    table.attrs.update(
        full_retraining_flops=full_flops,
        pretraining_tokens=cfg.pretraining_tokens,
        tokens_source=cfg.tokens_source,
        retrained_slice_flops=slice_flops,
        retrained_slice_seconds=slice_seconds,
        n_params=n_params,
    )
    return table


def cost_summary(cost: pd.DataFrame) -> pd.DataFrame:
    """Per method (mean over domains), for the cost figure: seconds and the ratio."""
    per = cost.groupby("method", sort=False)[
        ["seconds", "flops", "ratio_vs_pretraining", "ratio_vs_retrained_slice"]
    ].mean()
    per.index = [paper_name(m) for m in per.index]
    return per.rename_axis("method").reset_index()


# --------------------------------------------------------------------------- claims
@dataclass(frozen=True)
class Claim:
    name: str
    text: str
    verdict: str
    evidence: dict[str, Any]


def _fmt(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3g}"


def _listing(values: pd.Series) -> str:
    """ "GA 0.25, RL 0, ..." with the paper's names (evidence lines stay one readable line)."""
    return ", ".join(f"{paper_name(str(m))} {_fmt(float(v))}" for m, v in values.items())


def claim_cost(cost: pd.DataFrame) -> Claim:
    """Claim 1: every run is more than 1e5 times cheaper than full retraining."""
    text = "Every method is more than 1e5 times cheaper than retraining (FLOPs)."
    ratios = cost["ratio_vs_pretraining"].to_numpy(dtype=float)
    if not np.isfinite(ratios).all():
        return Claim(
            "cost_vs_retraining",
            text,
            "not testable at this scale",
            {"why": f"pre-training tokens {cost.attrs.get('tokens_source')}"},
        )
    worst = cost.loc[int(np.argmin(ratios))]
    evidence = {
        "smallest ratio": f"{worst['ratio_vs_pretraining']:.3g} ({paper_name(worst['method'])} "
        f"on {worst['domain']})",
        "full retraining FLOPs": f"{cost.attrs['full_retraining_flops']:.3g} (6 N x "
        f"{cost.attrs['pretraining_tokens']:.3g} tokens; {cost.attrs['tokens_source']})",
        "our retrained slice vs unlearning (median ratio)": _fmt(
            float(cost["ratio_vs_retrained_slice"].median())  # NaN in native mode
        ),
    }
    held = bool(ratios.min() > CLAIMED_RATIO)
    return Claim("cost_vs_retraining", text, "held" if held else "did not hold", evidence)


def claim_robustness(cfg: Config, main: Main, areas: pd.DataFrame, levels: pd.DataFrame) -> Claim:
    """Claim 2: GA+GD_in has the largest good-region area and the lowest general PPL among
    the methods that reach the approximate level at the main setting."""
    text = (
        "GA+GD_in is the most robust to hyperparameters (largest good-region area of the lr x "
        "epochs grid) and keeps utility best (lowest general PPL among methods that forget)."
    )
    name = "ga_gd_in_most_robust"
    if paper_name("pt_ga_gd_in") not in set(areas["method"]):
        return Claim(name, text, "not testable at this scale", {"why": "GA+GD_in was not run"})
    area = areas.groupby("method", sort=False)["area"].mean()
    evidence: dict[str, Any] = {"good-region area": _listing(area)}
    if area.max() == 0:
        evidence["why"] = "no grid cell of any method reached the good region"
        return Claim(name, text, "not testable at this scale", evidence)
    robust = bool(area[paper_name("pt_ga_gd_in")] >= area.max())
    table = main.table.drop(index=list(REFERENCES), level="method", errors="ignore")
    setup_levels = main.table.xs("target", level="method")
    ratio = (
        table["forget_ppl"]
        / setup_levels["approximate_ppl"].reindex(table.index.get_level_values("domain")).to_numpy()
    )
    general = (
        table["general_ppl"]
        / setup_levels["general_ppl"].reindex(table.index.get_level_values("domain")).to_numpy()
    )
    forgot = ratio.groupby(level="method", sort=False).mean() >= 1.0
    utility = general.groupby(level="method", sort=False).mean()
    evidence["general PPL / target's (main setting)"] = _listing(utility)
    evidence["forget PPL / approximate level (main setting)"] = _listing(
        ratio.groupby(level="method", sort=False).mean()
    )
    candidates = utility[forgot[forgot].index] if forgot.any() else utility.iloc[:0]
    best_utility = "pt_ga_gd_in" in candidates.index and bool(
        candidates["pt_ga_gd_in"] <= candidates.min()
    )
    evidence["robust (largest area)"] = robust
    evidence["best utility among methods that forget"] = best_utility
    return Claim(name, text, "held" if robust and best_utility else "did not hold", evidence)


def claim_general_retain(main: Main, areas: pd.DataFrame) -> Claim:
    """Claim 3: for GD and for KL, the in-distribution retain set gives a good-region area at
    least as large and a lower in-distribution retain PPL than the general one."""
    text = "A general retain set helps less than an in-distribution one (GD and KL alike)."
    name = "general_retain_helps_less"
    pairs = (("pt_ga_gd_in", "pt_ga_gd_gen"), ("pt_ga_kl_in", "pt_ga_kl_gen"))
    run_methods = set(main.table.index.get_level_values("method"))
    pairs = tuple(p for p in pairs if set(p) <= run_methods)
    if not pairs:
        return Claim(name, text, "not testable at this scale", {"why": "no in/gen pair was run"})
    area = areas.groupby("method")["area"].mean() if not areas.empty else pd.Series(dtype=float)
    target = main.table.xs("target", level="method")["retain_ppl"]
    retain = (
        main.table["retain_ppl"]
        / target.reindex(main.table.index.get_level_values("domain")).to_numpy()
    )
    retain = retain.groupby(level="method").mean()
    evidence: dict[str, Any] = {}
    verdicts = []
    for inside, general in pairs:
        a_in = float(area.get(paper_name(inside), np.nan))
        a_gen = float(area.get(paper_name(general), np.nan))
        better_area = bool(a_in >= a_gen) if np.isfinite(a_in) and np.isfinite(a_gen) else True
        better_retain = bool(retain[inside] < retain[general])
        verdicts.append(better_area and better_retain)
        note = (
            " (no good cell in either: compared on retain PPL alone)" if a_in == a_gen == 0 else ""
        )
        evidence[f"{paper_name(inside)} vs {paper_name(general)}"] = (
            f"area {_fmt(a_in)} vs {_fmt(a_gen)}; retain PPL / target's "
            f"{retain[inside]:.3f} vs {retain[general]:.3f}{note}"
        )
    return Claim(name, text, "held" if all(verdicts) else "did not hold", evidence)


def claims(cfg: Config, main: Main, grid_result: Grid, cost: pd.DataFrame) -> list[Claim]:
    """The three claims with verdicts computed from the numbers."""
    return [
        claim_cost(cost),
        claim_robustness(cfg, main, grid_result.areas, grid_result.levels),
        claim_general_retain(main, grid_result.areas),
    ]


def claims_markdown(found: Sequence[Claim]) -> str:
    """One paragraph per claim: verdict, then the evidence."""
    parts = []
    for i, c in enumerate(found, 1):
        items = "; ".join(f"{k}: {v}" for k, v in c.evidence.items())
        parts.append(f"**({i}) {c.text}** — *{c.verdict}*. {items}")
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- records
def records(main: Main, grid_result: Grid, cost: pd.DataFrame) -> dict[str, dict[str, dict]]:
    """records.json's `methods`: per method and domain the headline numbers (issue 8)."""
    area = grid_result.areas.set_index(["domain", "method"])["area"]
    ratio = cost.set_index(["domain", "method"])
    out: dict[str, dict[str, dict]] = {}
    for (domain, method), row in main.table.iterrows():
        if method in REFERENCES:
            continue
        retrained_auc = (
            main.table.loc[(domain, "retrained"), "mink_auc"]
            if (domain, "retrained") in main.table.index
            else np.nan
        )
        out.setdefault(method, {})[domain] = {
            "forget_ppl": float(row["forget_ppl"]),
            "approx_ppl": float(row["approximate_ppl"]),
            "retain_ppl": float(row["retain_ppl"]),
            "general_ppl": float(row["general_ppl"]),
            "mink_auc": float(row["mink_auc"]),
            "mink_auc_ci": [float(row["mink_auc_low"]), float(row["mink_auc_high"])],
            "mink_auc_retrained": float(retrained_auc),
            "good_region_area": float(area.get((domain, paper_name(method)), np.nan)),
            "cost_ratio_vs_retraining": float(ratio.loc[(domain, method), "ratio_vs_pretraining"]),
            "seconds": float(row["seconds"]),
            "flops": float(row["flops"]),
        }
    return out


def reference_records(setup_table: pd.DataFrame) -> dict[str, dict[str, dict]]:
    """records.json's `setup`: per model and domain, perplexities and the AUC interval."""
    out: dict[str, dict[str, dict]] = {}
    for (model, domain), row in setup_table.iterrows():
        out.setdefault(model, {})[domain] = {
            "forget_ppl": float(row["forget_ppl"]),
            "approx_ppl": float(row["approximate_ppl"]),
            "general_ppl": float(row["general_ppl"]),
            "mink_auc": float(row.get("mink_auc", math.nan)),
            "mink_auc_ci": [
                float(row.get("mink_auc_low", math.nan)),
                float(row.get("mink_auc_high", math.nan)),
            ],
        }
    return out


def long_auc(setup_table: pd.DataFrame) -> pd.DataFrame:
    """Setup AUCs as rows (domain, model, AUC) for a grouped bar chart."""
    return setup_table["mink_auc"].rename("Min-K% AUC").reset_index()


def tradeoff(main: Main) -> pd.DataFrame:
    """Per method (mean over domains): forget PPL / approximate level and general PPL /
    target's, for the trade-off figure (target = (below 1, 1); retrained at its own place)."""
    table = main.table
    target = table.xs("target", level="method")
    domains = table.index.get_level_values("domain")
    out = pd.DataFrame(
        {
            "forget_ppl_over_approximate": table["forget_ppl"].to_numpy()
            / target["approximate_ppl"].reindex(domains).to_numpy(),
            "general_ppl_over_target": table["general_ppl"].to_numpy()
            / target["general_ppl"].reindex(domains).to_numpy(),
        },
        index=table.index,
    )
    per = out.groupby(level="method", sort=False).mean()
    per.index = [paper_name(m) for m in per.index]
    return per.rename_axis("method").reset_index()


def mia_long(main: Main) -> pd.DataFrame:
    """Min-K% AUC per (domain, method) as rows, for a grouped chart."""
    frame = main.table["mink_auc"].rename("Min-K% AUC").reset_index()
    frame["method"] = frame["method"].map(paper_name)
    return frame
