"""The TOFU-style protocol on the fictitious-author QA benchmark.

1. Fine-tune the base model on every train author (**target**) and on the retain authors only
   (**retain oracle** = exact unlearning); checkpoints cached by spec.
2. Unlearn the forget split from the target with a registered method (`UnlearnSpec`, a runner
   task): the method gets the streams `forget`, `forget_idk` (the forget questions answered "I
   don't know"), `retain`, and the benchmark's fine-tuning recipe for exact retraining.
3. Evaluate the result with the suite (`lib.benchmarks.tofu_suite`), then run a **relearning
   attack** (fine-tune a few steps on half of the forget questions, measure the other half).

Everything returns values (DataFrames, `RunResult`s); nothing here keeps state between calls
except the on-disk cache (`lib.cache`) and an in-process memo of the generated benchmark.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib import cache as store
from lib import methods as method_registry
from lib import metrics, models, runner
from lib.batches import Row, anchored_batches, n_micro_batches
from lib.benchmarks.tofu_suite import (
    EvalSpec,
    SuiteRows,
    SuiteStats,
    collect,
    retain_subset,
    summarize,
)
from lib.data import build_benchmark, filter_known, real_world_probes
from lib.data.authors import FORGET_SPLITS
from lib.data.general import general_prompts
from lib.data.tofu import TOFU_HUB_ID, load_tofu
from lib.evaluate import generate
from lib.methods import UnlearnContext, UnlearnData, Unlearned
from lib.methods.losses import ce_mean, forward_logits
from lib.metrics import facts
from lib.specs import ModelSpec, TrainSpec, spec_key, to_dict
from lib.train import TrainResult, attach_lora, merge_lora, seed_everything, train

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- specs
DATA_SOURCES = ("generated", "tofu")


@dataclass(frozen=True)
class DataSpec:
    """Which QA benchmark (generated fictitious authors, or the real TOFU) and which split."""

    n_authors: int = 40  # train authors (TOFU: 200)
    qa_per_author: int = 10  # QA pairs per author (TOFU: 20)
    seed: int = 0  # seed of the generated profiles and of the split permutation
    forget_split: str = "forget10"  # forget01 | forget05 | forget10, or a `_val` split
    source: str = "generated"  # generated | tofu (locuslab/TOFU through `datasets`)
    path: str = ""  # tofu: hub id or local folder ("" = locuslab/TOFU)

    def __post_init__(self) -> None:
        base = self.forget_split.removesuffix("_val")
        if base not in FORGET_SPLITS:
            allowed = sorted([*FORGET_SPLITS, *(f"{s}_val" for s in FORGET_SPLITS)])
            raise ValueError(f"forget_split must be one of {allowed}, got {self.forget_split!r}")
        if self.source not in DATA_SOURCES:
            raise ValueError(f"source must be one of {DATA_SOURCES}, got {self.source!r}")
        for name in ("n_authors", "qa_per_author"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"DataSpec.{name} must be an integer >= 1, got {value!r}")

    @property
    def retain_split(self) -> str:
        return self.forget_split.replace("forget", "retain")

    @property
    def validation(self) -> DataSpec:
        """The validation request: forget authors disjoint from the test ones (trained by the
        target), used to choose hyperparameters."""
        if self.forget_split.endswith("_val"):
            return self
        return replace(self, forget_split=f"{self.forget_split}_val")


@dataclass(frozen=True)
class RelearnSpec:
    """Relearning attack: fine-tune on half of the forget set, measure the other half."""

    epochs: float = 2.0  # passes over the relearn half
    lr: float = 1e-4  # learning rate of the attack
    batch_size: int = 4  # examples per step

    def __post_init__(self) -> None:
        if not self.epochs > 0 or not self.lr > 0:
            raise ValueError(f"RelearnSpec epochs and lr must be > 0, got {self.epochs}, {self.lr}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(
                f"RelearnSpec.batch_size must be an integer >= 1, got {self.batch_size!r}"
            )


@dataclass(frozen=True)
class FinetuneSpec:
    """Fine-tune a model on rows of the benchmark (a target, an oracle, or a training phase).

    `split` names the rows: a split ("full", "retain10", "forget10", ...), a union "a+b", rows
    of one split minus the authors of others "a-b-c", or "" for none. `start` continues from
    another fine-tuning's checkpoint (None = the base model). Replayed rows are added to every
    pass: `retain_replay` retain questions (spread over the retain authors of the starting
    phase) and `general_replay` general prompts answered by the base model itself
    (`general_rows`).
    """

    model: ModelSpec
    data: DataSpec
    split: str  # which rows are trained on (see the class docstring)
    train: TrainSpec
    start: FinetuneSpec | None = None  # continue from this checkpoint (None = base model)
    retain_replay: int = 0  # retain rows replayed (two-phase recipe)
    general_replay: int = 0  # general prompts with the base model's answers, replayed

    def key(self) -> str:
        return spec_key({"kind": "finetune", "spec": self})

    @property
    def is_target(self) -> bool:
        """True when the forget split is trained on (a target, not an oracle or a phase)."""
        included = _split_parts(self.split)[0]
        return self.split == "full" or self.data.forget_split in included


@dataclass(frozen=True)
class UnlearnSpec:
    """Unlearn the forget split from the target with one registered method, then evaluate."""

    target: FinetuneSpec
    method: str  # registry name (lib.methods.METHODS)
    train: TrainSpec  # optimisation of the unlearning (seed = the unlearning seed)
    evaluation: EvalSpec = field(default_factory=EvalSpec)
    relearn: RelearnSpec | None = field(default_factory=RelearnSpec)
    hparams: tuple[tuple[str, Any], ...] = ()  # overrides of the method's defaults
    quant_bits: tuple[int, ...] = ()  # quantization attack: re-measure at these weight bits

    @property
    def hparams_dict(self) -> dict[str, Any]:
        return dict(self.hparams)


def _split_parts(split: str) -> tuple[list[str], list[str]]:
    """("a+b" or "a-b-c") -> (included splits, excluded splits)."""
    if not split:
        return [], []
    if "-" in split:
        head, *minus = split.split("-")
        return [head], minus
    return split.split("+"), []


def oracle_of(target: FinetuneSpec, replica: int = 0) -> FinetuneSpec:
    """The retain oracle of a target: the same recipe without the forget split. One phase
    ("full" -> the retain split); two phases (a last phase that adds the forget split to a
    checkpoint trained without it) -> the last phase without the forget split, from the same
    checkpoint (exact retraining from the last checkpoint before the forget data, as SISA).
    `replica` > 0 gives another oracle with the seed of the retrained phase shifted (the noise
    floor of two exact retrainings: the whole fine-tuning for one phase; the last phase, from the
    same checkpoint, for two)."""
    if target.start is None and target.split == "full":
        oracle = replace(target, split=target.data.retain_split)
    else:
        included, excluded = _split_parts(target.split)
        if excluded or target.data.forget_split not in included:
            raise ValueError(f"cannot derive an oracle from the rows {target.split!r}")
        kept = [s for s in included if s != target.data.forget_split]
        oracle = replace(target, split="+".join(kept))
    if not replica:
        return oracle
    return replace(oracle, train=replace(oracle.train, seed=oracle.train.seed + replica))


# --------------------------------------------------------------------------- data
def _row(record: Any) -> dict[str, Any]:
    return record.to_dict() if hasattr(record, "to_dict") else dict(record)


@dataclass(frozen=True)
class BenchmarkData:
    """The rows one configuration of the benchmark uses."""

    forget: list[Row]
    retain: list[Row]
    holdout: list[Row]  # never-trained authors, as many rows as the forget split
    multihop: list[Row]
    combined: list[Row]
    subjects: tuple[str, ...]  # the forget authors
    split_hashes: dict[str, str]

    @property
    def forget_idk(self) -> list[Row]:
        """The forget questions with their "I don't know" answers."""
        return [{**r, "answer": r["idk_answer"]} for r in self.forget]

    def request(self) -> UnlearnData:
        """The unlearning request: every stream a method may read."""
        streams = {"forget": self.forget, "forget_idk": self.forget_idk, "retain": self.retain}
        return UnlearnData(streams, self.subjects)


@cache
def _benchmark(data: DataSpec):
    """The generated benchmark or real TOFU (both `lib.data.QABenchmark`), memoised."""
    if data.source == "tofu":
        return load_tofu(data.forget_split.removesuffix("_val"), data.path or TOFU_HUB_ID)
    return build_benchmark(
        n_authors=data.n_authors, qa_per_author=data.qa_per_author, seed=data.seed
    )


def _rows(dataset) -> list[dict[str, Any]]:
    return [dict(row) for row in dataset]


@cache
def benchmark_data(data: DataSpec) -> BenchmarkData:
    """The benchmark rows of `data` (deterministic; memoised per process)."""
    bench = _benchmark(data)
    forget = _rows(bench.split(data.forget_split))
    holdout_name = "holdout" if data.source == "generated" else "holdout"
    return BenchmarkData(
        forget=forget,
        retain=_rows(bench.split(data.retain_split)),
        holdout=_rows(bench.split(holdout_name))[: len(forget)],
        multihop=_rows(bench.multihop(data.forget_split)),
        combined=_rows(bench.combined(data.forget_split)),
        subjects=tuple(bench.authors(data.forget_split)),
        split_hashes=bench.split_hashes(),
    )


def split_rows(data: DataSpec, split: str) -> list[Row]:
    """Rows of a split expression: a split name, "a+b" (union) or "a-b-c" (rows of a minus the
    authors of b and c), "" = none."""
    bench = _benchmark(data)
    included, excluded = _split_parts(split)
    banned = {a for name in excluded for a in bench.authors(name)}
    return [r for name in included for r in _rows(bench.split(name)) if r["author"] not in banned]


# --------------------------------------------------------------------------- models
@cache
def tokenizer_of(name: str) -> PreTrainedTokenizerBase:
    return models.load_tokenizer(name)


def load_base(model: ModelSpec) -> PreTrainedModel:
    loaded, _ = models.load_model(model.name, model.dtype, model.device)
    return loaded


def finetuned(spec: FinetuneSpec) -> Path:
    """Checkpoint folder of a fine-tuning run (trained on first use, cached by spec)."""

    def build(folder: Path) -> None:
        rows = training_rows(spec)
        tokenizer = tokenizer_of(spec.model.name)
        logger.info("fine-tuning %s on %s (%d QA)", spec.model.name, spec.split, len(rows))
        seed_everything(spec.train.seed)
        model = load_base(spec.model) if spec.start is None else load_finetuned(spec.start)
        if spec.train.lora is not None:
            model = attach_lora(model, spec.train.lora)
        device = next(model.parameters()).device

        def loss_fn(trained: PreTrainedModel, micro: dict) -> tuple:
            batch = micro["train"].to(device)
            return ce_mean(forward_logits(trained, batch), batch.labels), {}, batch.n_tokens, 0

        result = train(
            model,
            anchored_batches(tokenizer, {"train": rows}, spec.train, "train"),
            n_micro_batches(len(rows), spec.train),
            loss_fn,
            spec.train,
            desc=f"fine-tune {spec.split or 'replay'}",
        )
        if result.diverged:
            raise RuntimeError(f"fine-tuning on {spec.split} diverged: {result.message}")
        model = merge_lora(model)
        models.save_checkpoint(model, tokenizer, folder)
        record = {**result.as_dict(), "n_params": models.n_parameters(model), "log": result.log}
        store.atomic_write_json(folder / "train.json", record)

    return store.cached_folder("checkpoints", spec.key(), build, spec=to_dict(spec))


def training_rows(spec: FinetuneSpec) -> list[Row]:
    """Every row one fine-tuning trains on: its split, then the replayed rows."""
    rows = split_rows(spec.data, spec.split)
    if spec.retain_replay:
        if spec.start is None:
            raise ValueError("retain_replay needs a starting phase whose retain rows to replay")
        rows += retain_subset(split_rows(spec.data, spec.start.split), spec.retain_replay)
    if spec.general_replay:
        rows += general_rows(spec.model, spec.general_replay)
    if not rows:
        raise ValueError(f"fine-tuning {spec.split!r} has no rows to train on")
    return rows


def general_rows(model: ModelSpec, n: int) -> list[Row]:
    """`n` general prompts answered by the base model itself (greedy, cached): replay that
    keeps general behaviour (`lib.data.general`). The replay probes (every fourth real-world
    probe, never evaluated) come first."""
    probes_all = [p.question for p in real_world_probes()]
    replay_probes = [q for i, q in enumerate(probes_all) if i % 4 == 3]
    others = general_prompts(max(0, n - len(replay_probes)), exclude=tuple(probes_all))
    questions = (replay_probes + others)[:n]
    key = spec_key({"model": model, "general": questions})

    def answer() -> list[str]:
        logger.info("answering %d general prompts with the base model (replay targets)", n)
        return generate(load_base(model), tokenizer_of(model.name), questions, max_new_tokens=48)

    answers = store.cached("replay", key, answer)
    return [{"question": q, "answer": a} for q, a in zip(questions, answers, strict=True) if a]


def load_finetuned(spec: FinetuneSpec) -> PreTrainedModel:
    loaded, _ = models.load_model(str(finetuned(spec)), spec.model.dtype, spec.model.device)
    return loaded


def train_record(spec: FinetuneSpec) -> dict[str, Any]:
    """What fine-tuning did and cost (steps, tokens, seconds, memory, n_params, log)."""
    import json

    return json.loads((finetuned(spec) / "train.json").read_text())


def _train_result(record: dict[str, Any]) -> TrainResult:
    fields = TrainResult.__dataclass_fields__
    return TrainResult(**{k: v for k, v in record.items() if k in fields})


# --------------------------------------------------------------------------- evaluation
_PROBES_TOLD: set[str] = set()  # probe-answer keys whose filtering outcome was logged


def probes(model: ModelSpec, evaluation: EvalSpec) -> tuple[list[Row], bool]:
    """Real-world probes the *base* model answers correctly (checked once, cached), and
    whether filtering happened (False for a model that knows too few)."""
    all_probes = real_world_probes()
    # the answers depend on the generation budget and batching, not only on the model
    key = spec_key(
        {
            "model": model,
            "max_new_tokens": evaluation.max_new_tokens,
            "batch_size": evaluation.batch_size,
        }
    )

    def answer() -> list[str]:
        logger.info("checking which real-world probes the base model knows")
        return generate(
            load_base(model),
            tokenizer_of(model.name),
            [p.question for p in all_probes],
            max_new_tokens=evaluation.max_new_tokens,
            batch_size=evaluation.batch_size,
        )

    answers = store.cached("probes", key, answer)
    # every fourth probe is kept for replay during fine-tuning (`general_rows`): never evaluated
    evaluable = [
        (p, a) for i, (p, a) in enumerate(zip(all_probes, answers, strict=True)) if i % 4 != 3
    ]
    # The same cached answers are filtered for every evaluated model: say the outcome once.
    kept, filtered = filter_known(
        [p for p, _ in evaluable], lambda _q: [a for _, a in evaluable], quiet=key in _PROBES_TOLD
    )
    _PROBES_TOLD.add(key)
    rows = [
        {
            "question": p.question,
            "answer": p.answer,
            "perturbed_answers": list(p.perturbed_answers),
            "aliases": list(p.aliases),
        }
        for p in kept[: evaluation.n_probes]
    ]
    return rows, filtered


def evaluate_model(
    model: PreTrainedModel,
    model_spec: ModelSpec,
    data: DataSpec,
    evaluation: EvalSpec,
    context: str = "",
    desc: str = "evaluate",
) -> SuiteStats:
    """Run the suite on a loaded model (uncached)."""
    return collect(
        model,
        tokenizer_of(model_spec.name),
        suite_rows(model_spec, data, evaluation),
        evaluation,
        context,
        desc,
    )


def suite_rows(model_spec: ModelSpec, data: DataSpec, evaluation: EvalSpec) -> SuiteRows:
    """The rows the suite evaluates for this benchmark configuration."""
    bench = benchmark_data(data)
    return SuiteRows(
        forget=bench.forget,
        multihop=bench.multihop,
        combined=bench.combined,
        retain=retain_subset(bench.retain, evaluation.n_retain),
        holdout=bench.holdout,
        probes=probes(model_spec, evaluation)[0],
    )


def cached_stats(
    model_key: str,
    load: Any,
    model_spec: ModelSpec,
    data: DataSpec,
    evaluation: EvalSpec,
    desc: str = "evaluate",
) -> SuiteStats:
    """Suite statistics of a stored model (`model_key` names it), cached."""
    key = spec_key({"model": model_key, "eval": evaluation, "data": data, "context": ""})
    return store.cached("evals", key, lambda: evaluate_model(load(), model_spec, data, evaluation))


def finetuned_stats(spec: FinetuneSpec, evaluation: EvalSpec) -> SuiteStats:
    label = "target" if spec.is_target else f"oracle (seed {spec.train.seed})"
    return cached_stats(
        spec.key(),
        lambda: load_finetuned(spec),
        spec.model,
        spec.data,
        evaluation,
        desc=f"evaluate {label}",
    )


def base_stats(model: ModelSpec, data: DataSpec, evaluation: EvalSpec) -> SuiteStats:
    return cached_stats(
        spec_key(model), lambda: load_base(model), model, data, evaluation, desc="evaluate base"
    )


def setup_table(target: FinetuneSpec, evaluation: EvalSpec) -> pd.DataFrame:
    """Soundness of the setup: base, target, the oracle and a second oracle (another seed) on
    the suite, each summarised against the first oracle (one row each)."""
    oracle = finetuned_stats(oracle_of(target), evaluation)
    rows = []
    for label, stats in (
        ("base", base_stats(target.model, target.data, evaluation)),
        ("target", finetuned_stats(target, evaluation)),
        ("retrain", oracle),
        ("retrain (seed 2)", finetuned_stats(oracle_of(target, replica=1), evaluation)),
    ):
        rows.append({"model": label, **summarize(stats, oracle, evaluation)})
    return pd.DataFrame(rows).set_index("model")


# --------------------------------------------------------------------------- unlearning runs
@dataclass
class RunResult:
    """One unlearning run: its metrics, costs, per-example statistics and relearning attack."""

    method: str
    seed: int
    metrics: dict[str, float]
    cost: dict[str, float]
    stats: SuiteStats
    relearn: dict[str, float] = field(default_factory=dict)
    log: list[dict[str, float]] = field(default_factory=list)
    status: str = "ok"  # ok | diverged | not converged (the method's own convergence check)
    message: str = ""
    diagnostics: dict[str, Any] = field(default_factory=dict)  # method-specific facts

    def row(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "seed": self.seed,
            **self.metrics,
            **self.relearn,
            **self.cost,
            "status": self.status,
            "message": self.message,
        }

    def summary_line(self) -> str:
        m = self.metrics
        return (
            f"{self.method} (seed {self.seed}) {self.status}: forget quality "
            f"{m.get('forget_quality', float('nan')):.3g}, model utility "
            f"{m.get('model_utility', float('nan')):.3f}, {self.cost.get('seconds', 0):.0f} s"
        )


def _retrainer(target: FinetuneSpec, bench: BenchmarkData):
    """The benchmark's exact-unlearning recipe: fine-tune the base model on the retain rows
    (the cached retain oracle when `rows` is the oracle's split)."""
    oracle = oracle_of(target)

    def retrain(rows: Sequence[Row]) -> Unlearned:
        if [r["question"] for r in rows] != [r["question"] for r in bench.retain]:
            raise ValueError("retrain is only defined for the benchmark's retain split")
        return Unlearned(
            model=load_finetuned(oracle),
            train=_train_result(train_record(oracle)),
            source=oracle.key(),
        )

    return retrain


@runner.task(UnlearnSpec)
def run_unlearning(spec: UnlearnSpec) -> RunResult:
    """Unlearn, evaluate, attack (see the module docstring)."""
    method = method_registry.get(spec.method, **spec.hparams_dict)
    bench = benchmark_data(spec.target.data)
    oracle_spec = oracle_of(spec.target)
    oracle = finetuned_stats(oracle_spec, spec.evaluation)
    n_params = train_record(spec.target)["n_params"]
    tokenizer = tokenizer_of(spec.target.model.name)
    seed_everything(spec.train.seed)
    model = load_finetuned(spec.target)
    ctx = UnlearnContext(
        tokenizer=tokenizer,
        train=spec.train,
        load_reference=lambda: load_finetuned(spec.target),
        retrain=_retrainer(spec.target, bench),
        desc=f"unlearn {spec.method}",
    )
    unlearned = method.unlearn(model, bench.request(), ctx)
    if unlearned.model is None:
        raise ValueError(f"{spec.method} returned no model; this benchmark evaluates one model")
    if unlearned.source == oracle_spec.key():
        stats = oracle
    else:
        stats = evaluate_model(
            unlearned.model,
            spec.target.model,
            spec.target.data,
            spec.evaluation,
            unlearned.context,
            desc=f"evaluate {spec.method}",
        )
    done = unlearned.train
    flops = unlearned.flops
    if flops is None:
        flops = metrics.train_flops(n_params, done.train_tokens) + metrics.eval_flops(
            n_params, done.reference_tokens
        )
    target = finetuned_stats(spec.target, spec.evaluation)
    cost = {
        "seconds": done.seconds,
        "flops": flops,
        "peak_memory_mb": done.peak_memory_mb,
        "steps": done.steps,
        "eval_flops": metrics.eval_flops(n_params, stats.eval_tokens),
        "inference_overhead": stats.eval_tokens / max(1, target.eval_tokens) - 1.0,
    }
    attacks = quantization_attack(unlearned.model, tokenizer, bench.forget, unlearned.context, spec)
    relearn = {}
    if spec.relearn is not None:
        relearn = relearn_attack(
            unlearned.model, tokenizer, bench.forget, stats, target, unlearned.context, spec
        )
    return RunResult(
        method=spec.method,
        seed=spec.train.seed,
        metrics=summarize(stats, oracle, spec.evaluation),
        cost=cost,
        stats=stats,
        relearn={**relearn, **attacks},
        log=done.log,
        status=_status(unlearned),
        message=done.message,
        diagnostics=dict(unlearned.diagnostics),
    )


def _status(unlearned: Unlearned) -> str:
    """ok, diverged (stopped by the divergence guard), or not converged (the method's check)."""
    if unlearned.train.diverged:
        return "diverged"
    if unlearned.diagnostics.get("converged") is False:
        return "not converged"
    return "ok"


def _forget_fact_acc(forget: Sequence[Row], generations: Sequence[str]) -> float:
    """Fact accuracy of answers to `forget` rows (rows with a shared value left out)."""
    scored = [
        facts.contains_phrase(g, r["value"])
        for r, g in zip(forget, generations, strict=True)
        if r["value"] and not r.get("value_shared", False)
    ]
    return float(np.mean(scored)) if scored else float("nan")


def quantization_attack(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    forget: Sequence[Row],
    context: str,
    spec: UnlearnSpec,
) -> dict[str, float]:
    """Quantization attack (Zhang et al., ICLR 2025): round the unlearned weights to
    `spec.quant_bits` bits (`lib.attacks.fake_quantize`) and re-measure forget fact accuracy;
    `quant<bits>_fact_acc` (lower = the forgetting survives quantization)."""
    if not spec.quant_bits:
        return {}
    from lib.attacks import fake_quantize

    out = {}
    for bits in spec.quant_bits:
        quantized = fake_quantize(model, bits)
        answers = generate(
            quantized,
            tokenizer,
            [r["question"] for r in forget],
            context,
            spec.evaluation.max_new_tokens,
            spec.evaluation.batch_size,
        )
        out[f"quant{bits}_fact_acc"] = _forget_fact_acc(forget, answers)
        del quantized
    return out


def relearn_attack(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    forget: Sequence[Row],
    stats: SuiteStats,
    target: SuiteStats,
    context: str,
    spec: UnlearnSpec,
) -> dict[str, float]:
    """Relearning attack: fine-tune on the even forget questions, measure the odd ones
    (modifies `model` in place).

    `relearn_fact_acc` is the fact accuracy on the held-out (odd) half after the attack,
    `relearn_fact_acc_before` before it; `relearn_recovery` = (after - before) / (target -
    before), clipped to [0, 1]: 0 = nothing comes back, 1 = everything the target knew comes
    back (NaN when the model had not forgotten: target - before < 0.05).
    """
    assert spec.relearn is not None
    attack_half = [forget[i] for i in range(0, len(forget), 2)]
    probe_half = [forget[i] for i in range(1, len(forget), 2)]

    def fact_acc(generations: Sequence[str]) -> float:
        return _forget_fact_acc(probe_half, generations)

    before = fact_acc(stats.forget_gen[1::2])
    known = fact_acc(target.forget_gen[1::2])
    attack = replace(
        spec.target.train,
        epochs=spec.relearn.epochs,
        lr=spec.relearn.lr,
        batch_size=spec.relearn.batch_size,
        lora=None,
        warmup_ratio=0.0,
        schedule="constant",
    )
    seed_everything(attack.seed)
    device = next(model.parameters()).device

    def loss_fn(trained: PreTrainedModel, micro: dict) -> tuple:
        batch = micro["attack"].to(device)
        return ce_mean(forward_logits(trained, batch), batch.labels), {}, batch.n_tokens, 0

    for p in model.parameters():
        p.requires_grad_(True)
    train(
        model,
        anchored_batches(tokenizer, {"attack": attack_half}, attack, "attack"),
        n_micro_batches(len(attack_half), attack),
        loss_fn,
        attack,
        desc="relearn attack",
    )
    evaluation = spec.evaluation
    answers = generate(
        model,
        tokenizer,
        [q["question"] for q in probe_half],
        context,
        evaluation.max_new_tokens,
        evaluation.batch_size,
    )
    after = fact_acc(answers)
    gap = known - before
    recovery = float(np.clip((after - before) / gap, 0.0, 1.0)) if gap >= 0.05 else np.nan
    return {
        "relearn_fact_acc_before": before,
        "relearn_fact_acc": after,
        "relearn_recovery": recovery,
    }


def check_sizes(data: DataSpec, evaluation: EvalSpec) -> None:
    """Evaluation sizes against the data (ValueError naming the largest allowed value)."""
    bench = benchmark_data(data)
    if evaluation.n_retain > len(bench.retain):
        raise ValueError(
            f"n_retain = {evaluation.n_retain} but the retain split has {len(bench.retain)} "
            f"questions; use at most {len(bench.retain)}"
        )
    n_probes = sum(1 for i, _ in enumerate(real_world_probes()) if i % 4 != 3)
    if evaluation.n_probes > n_probes:
        raise ValueError(f"n_probes = {evaluation.n_probes} but there are {n_probes} probes")
    if not bench.forget:
        raise ValueError(f"the forget split {data.forget_split!r} is empty at this size")
    if not bench.retain:
        raise ValueError(f"the forget split {data.forget_split!r} leaves no retain authors")


def validate(methods: Sequence[str], hparams: dict[str, dict[str, Any]], model: ModelSpec) -> None:
    """Every method name and hyperparameter, checked before any work (KeyError/ValueError)."""
    method_registry.validate(list(methods))
    unknown = set(hparams) - set(methods)
    if unknown:
        raise KeyError(f"hyperparameters given for methods not run: {sorted(unknown)}")
    n_layers = models.n_layers(model.name)
    for name in methods:
        method_registry.get(name, **hparams.get(name, {})).check(n_layers)


def unlearn_specs(
    target: FinetuneSpec,
    methods: Sequence[str],
    train_spec: TrainSpec,
    evaluation: EvalSpec,
    relearn: RelearnSpec | None,
    hparams: dict[str, dict[str, Any]] | None = None,
    seeds: Sequence[int] | None = None,
) -> list[UnlearnSpec]:
    """One spec per (seed, method), validated; `seeds=None` uses the TrainSpec's seed."""
    hparams = hparams or {}
    validate(methods, hparams, target.model)
    seed_list = list(seeds) if seeds else [train_spec.seed]
    return [
        UnlearnSpec(
            target=target,
            method=name,
            train=replace(train_spec, seed=seed),
            evaluation=evaluation,
            relearn=relearn,
            hparams=tuple(sorted(hparams.get(name, {}).items())),
        )
        for seed in seed_list
        for name in methods
    ]


def results_table(results: Sequence[RunResult], methods: Sequence[str]) -> pd.DataFrame:
    """One row per run, indexed by method, in the order of `methods` (then by seed)."""
    rank = {name: i for i, name in enumerate(methods)}
    ordered = sorted(results, key=lambda r: (rank[r.method], r.seed))
    return pd.DataFrame([r.row() for r in ordered]).set_index("method")
