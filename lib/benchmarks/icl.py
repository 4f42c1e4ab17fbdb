"""In-context learning vs fine-tuning on small classification tasks, under a stream of deletion
requests (the protocol of notebook 03; Muresanu et al. 2024).

A *learner* adapts a frozen base LLM to a task from its training rows D:

- in-context (black-box): `erase` (one demonstration per quantized k-means cluster) and
  `random_kshot` choose k rows of D that every query carries as demonstrations; `zero_shot` uses
  the instruction alone (the reference: what the model knows without D);
- fine-tuning (white-box): `sisa` (S shard models x R slices) and `retrain` (one model; every
  deletion retrains it from the base: here `Sisa(n_shards=1, n_slices=1)` with the same
  recipe, which is exactly "full retraining on each deletion").

`StreamSpec` (a runner task, cached) runs one learner on one task and seed: fit, then a stream of
`n_deletions` requests (rows of D drawn without replacement by `deletion_stream(n, m, seed)`,
the same stream for every learner at a seed), accuracy measured after `checkpoints` deletions.
Every request is processed one at a time by the in-context learners (exact deletion, timed).
Fine-tuning learners *count* every request (the retraining plan of `SisaPartition`: tokens x
6 N FLOPs; seconds = tokens x the seconds per token measured in this stream's real training)
and *run* the retraining only at the checkpoints, with the requests since the previous
checkpoint applied together. This gives the same models as running every request (each
stage's training is a deterministic function of its checkpoint, rows and seed;
`tests/test_methods_sisa.py`), at a fraction of the compute.

Costs (FLOPs, Kaplan et al. 2N per token forward, 6N forward+backward; N = all parameters):

- per deletion: ERASE = the certificate (+ re-clustering when it fails; no LLM pass), random
  k-shot ~ nothing, SISA/retrain = 6N x tokens retrained;
- per query: 2N x models x (prompt tokens + scored label tokens); an in-context prompt carries
  the instruction and the k demonstrations (no prefix caching counted, as the paper's
  accounting), a fine-tuned model sees the query block alone, SISA runs every live shard;
- setup: embedding the rows (2N x tokens) and clustering (ERASE), or training (6N x tokens).

`DeletionCostSpec` measures the cost of one deletion as the data grows: ERASE on real
embeddings (the tasks' train rows, up to their number) and on synthetic embeddings drawn around
them (beyond), against re-running the clustering; SISA and retraining counted.

Accuracy is label scoring: the argmax over the label words' log-probabilities after the prompt
(`lib.evaluate.score_choices`); SISA aggregates its shards (mean label distribution or vote).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib import methods as method_registry
from lib import models, progress, runner
from lib.algorithms.qkmeans import QuantizedKMeans
from lib.data.tasks import (
    BIGBENCH_HUB,
    TASKS,
    ClassificationTask,
    build_task,
    load_bigbench_task,
)
from lib.evaluate import TokenCounter, embed_texts, score_choices
from lib.methods.erase import Erase, Selection
from lib.methods.sisa import Sisa, aggregate, row_tokens
from lib.specs import ModelSpec, TrainSpec

logger = logging.getLogger(__name__)

#: The zero-shot reference (not an unlearning method: nothing to delete).
ZERO_SHOT = "zero_shot"
#: Full retraining on every deletion: the registry's `retrain`, realised as one shard, one slice.
RETRAIN = "retrain"
BIGBENCH_PREFIX = "bigbench:"


# ----------------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class TaskSpec:
    """A classification task: a generated one (`lib.data.tasks.TASKS`) or `bigbench:<config>`."""

    name: str  # generated task name, or "bigbench:<config>" (tasksource/bigbench)
    n_train: int = 300  # training rows D (Big-Bench: at most this many, the first ones)
    n_test: int = 80  # test queries (Big-Bench: at most this many, seeded sample)
    seed: int = 0  # seed of the generated data (and of the Big-Bench test sample)
    path: str = ""  # Big-Bench: hub id or local folder ("" = tasksource/bigbench)

    def __post_init__(self) -> None:
        if not (self.name in TASKS or self.name.startswith(BIGBENCH_PREFIX)):
            raise KeyError(
                f"unknown task {self.name!r}; generated: {sorted(TASKS)}, or 'bigbench:<config>'"
            )
        for name in ("n_train", "n_test"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TaskSpec.{name} must be an integer >= 1, got {value!r}")


@cache
def load_task(spec: TaskSpec) -> ClassificationTask:
    """The task's data (memoised per process; deterministic)."""
    if not spec.name.startswith(BIGBENCH_PREFIX):
        return build_task(spec.name, spec.n_train, spec.n_test, spec.seed)
    task = load_bigbench_task(spec.name[len(BIGBENCH_PREFIX) :], spec.path or BIGBENCH_HUB)
    train, test = task.data["train"], task.data["test"]
    pick = np.random.default_rng([spec.seed, 5]).permutation(len(test))[: spec.n_test]
    task.data["train"] = train.select(range(min(spec.n_train, len(train))))
    task.data["test"] = test.select(sorted(int(i) for i in pick))
    return task


def demonstration_rows(task: ClassificationTask) -> list[dict[str, Any]]:
    """Train rows with their demonstration block (text and label word), for in-context use."""
    train, names = task.data["train"], task.label_names
    return [
        {"text": t, "label": int(y), "demonstration": task.template.block(t, names[y])}
        for t, y in zip(train["text"], train["label"], strict=True)
    ]


def finetune_rows(task: ClassificationTask) -> list[dict[str, str]]:
    """Train rows as prompt/completion pairs: the query block alone (a fine-tuned model learns
    the labels; the instruction naming them is what zero-shot and in-context prompts need) and
    the label word."""
    train, names = task.data["train"], task.label_names
    return [
        {"prompt": task.template.block(t), "completion": " " + names[y]}
        for t, y in zip(train["text"], train["label"], strict=True)
    ]


def label_choices(task: ClassificationTask) -> list[str]:
    """The scored continuations: each label word after a space (the template's separator)."""
    return [" " + name for name in task.label_names]


def icl_scores(
    model: Any,
    tokenizer: Any,
    task: ClassificationTask,
    demo_indices: Sequence[int] = (),
    n_test: int | None = None,
    batch_size: int = 32,
    counter: TokenCounter | None = None,
) -> np.ndarray:
    """(n_test, n_labels) log-probabilities of the label words for the test queries, with one
    fixed list of train demonstrations (in prompt order) shared by every query, as in a
    deployment that prepends the same k examples to every query (ERASE, random k-shot); `()` is
    zero-shot (the instruction alone)."""
    test = task.data["test"]
    n = len(test) if n_test is None else min(n_test, len(test))
    prefix = task.template.prefix(task.demonstrations(demo_indices))
    prompts = [task.template.query(t, bool(prefix)) for t in test["text"][:n]]
    return score_choices(
        model, tokenizer, prompts, label_choices(task), prefix, batch_size, counter
    )


def icl_accuracy(
    model: Any,
    tokenizer: Any,
    task: ClassificationTask,
    demo_indices: Sequence[int] = (),
    n_test: int | None = None,
    batch_size: int = 32,
) -> float:
    """Test accuracy (argmax of `icl_scores`; higher = better) with a fixed demonstration list."""
    scores = icl_scores(model, tokenizer, task, demo_indices, n_test, batch_size)
    labels = np.asarray(task.data["test"]["label"][: len(scores)])
    return float((scores.argmax(axis=1) == labels).mean())


def icl_prompt_tokens(
    tokenizer: PreTrainedTokenizerBase, task: ClassificationTask, demo_indices: Sequence[int]
) -> float:
    """Mean tokens of a full in-context prompt (instruction, demonstrations, query)."""
    prefix = task.template.prefix(task.demonstrations(demo_indices))
    n_prefix = len(tokenizer(prefix, add_special_tokens=False)["input_ids"]) if prefix else 0
    queries = [task.template.query(t, bool(prefix)) for t in task.data["test"]["text"]]
    return n_prefix + float(
        np.mean([len(tokenizer(q, add_special_tokens=False)["input_ids"]) for q in queries])
    )


def deletion_stream(n_rows: int, n_deletions: int, seed: int) -> np.ndarray:
    """The rows deleted, in request order: a seeded draw without replacement."""
    if not 0 <= n_deletions < n_rows:
        raise ValueError(f"n_deletions must be in [0, {n_rows}), got {n_deletions}")
    return np.random.default_rng([seed, 4]).choice(n_rows, size=n_deletions, replace=False)


# ------------------------------------------------------------------------------ embeddings
@cache
def _tokenizer(name: str) -> PreTrainedTokenizerBase:
    return models.load_tokenizer(name)


def _load(model: ModelSpec) -> PreTrainedModel:
    loaded, _ = models.load_model(model.name, model.dtype, model.device)
    return loaded


@dataclass(frozen=True)
class EmbedSpec:
    """Mean-pooled hidden states of the task's demonstration blocks (ERASE's raw embeddings)."""

    model: ModelSpec  # the LLM (used as the encoder when `encoder` is "")
    task: TaskSpec
    encoder: str = ""  # another model name/hub id, "" = the LLM itself
    layer: int = -1  # hidden-state layer (-1 = last)
    batch_size: int = 32


@dataclass
class Embeddings:
    """Raw embeddings (n_train x hidden) and what computing them cost."""

    values: np.ndarray
    tokens: int
    seconds: float
    n_params: int


@runner.task(EmbedSpec)
def embed_task(spec: EmbedSpec) -> Embeddings:
    encoder = (
        ModelSpec(spec.encoder, spec.model.dtype, spec.model.device) if spec.encoder else spec.model
    )
    model = _load(encoder)
    rows = demonstration_rows(load_task(spec.task))
    counter = TokenCounter()
    start = time.perf_counter()
    values = embed_texts(
        model,
        _tokenizer(encoder.name),
        [r["demonstration"] for r in rows],
        spec.layer,
        spec.batch_size,
        counter,
    )
    return Embeddings(
        values, counter.tokens, time.perf_counter() - start, models.n_parameters(model)
    )


# ---------------------------------------------------------------------------------- streams
@dataclass(frozen=True)
class StreamSpec:
    """One learner on one task and seed, through a stream of deletion requests."""

    model: ModelSpec
    task: TaskSpec
    method: str  # zero_shot | a registry name: erase, random_kshot, sisa, retrain
    hparams: tuple[tuple[str, Any], ...] = ()  # overrides of the method's defaults
    n_deletions: int = 100  # requests in the stream
    checkpoints: tuple[int, ...] = (0, 50, 100)  # accuracy measured after this many deletions
    seed: int = 0  # seed of the learner's randomness and of the deletion stream
    finetune: TrainSpec = field(default_factory=TrainSpec)  # recipe of sisa/retrain (epochs = E)
    eval_batch: int = 32  # prompts per scoring forward pass

    def __post_init__(self) -> None:
        points = list(self.checkpoints)
        if not points or points != sorted(set(points)) or points[0] < 0:
            raise ValueError(f"checkpoints must be increasing and >= 0, got {points}")
        if points[-1] > self.n_deletions:
            raise ValueError(f"checkpoint {points[-1]} is beyond n_deletions={self.n_deletions}")

    @property
    def hparams_dict(self) -> dict[str, Any]:
        return dict(self.hparams)


@dataclass
class StreamResult:
    """Accuracy along a deletion stream and the costs (units: seconds, FLOPs, tokens)."""

    method: str
    task: str
    seed: int
    checkpoints: list[int]
    accuracy: list[float]  # test accuracy after each checkpoint's deletions (higher = better)
    deletion_seconds: np.ndarray  # per request: measured (in-context) / estimated (fine-tuning)
    deletion_flops: np.ndarray  # per request
    deletion_tokens: np.ndarray  # per request: tokens retrained (fine-tuning; 0 otherwise)
    reclustered: np.ndarray  # per request: ERASE had to re-cluster
    selection_changed: np.ndarray  # per request: the demonstrations changed (in-context)
    inference_flops_per_query: float  # 2N x models x (prompt + label tokens)
    prompt_tokens: float  # mean prompt tokens per query and model
    n_models: int  # models a query goes through (SISA: live shards at the end)
    setup_flops: float  # embedding + clustering, or initial training
    setup_seconds: float
    n_params: int
    real_retrain_seconds: float = 0.0  # fine-tuning: wall time of the retraining actually run
    real_retrain_tokens: int = 0
    counted_batch_tokens: int = 0  # fine-tuning: the plans' count for the batches run for real
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def recluster_rate(self) -> float:
        return float(np.mean(self.reclustered)) if len(self.reclustered) else 0.0

    def row(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "task": self.task,
            "seed": self.seed,
            "accuracy_before": self.accuracy[0],
            "accuracy_after_deletions": self.accuracy[-1],
            "deletion_seconds": float(np.mean(self.deletion_seconds))
            if len(self.deletion_seconds)
            else 0.0,
            "deletion_flops": float(np.mean(self.deletion_flops))
            if len(self.deletion_flops)
            else 0.0,
            "recluster_rate": self.recluster_rate,
            "inference_flops_per_query": self.inference_flops_per_query,
            "setup_flops": self.setup_flops,
        }

    def summary_line(self) -> str:
        return (
            f"{self.method} on {self.task} (seed {self.seed}): accuracy "
            f"{self.accuracy[0]:.2f} -> {self.accuracy[-1]:.2f} after {self.checkpoints[-1]} "
            f"deletions, {self.row()['deletion_seconds']:.2g} s/deletion"
        )


def resolve(method: str, hparams: dict[str, Any]) -> Any:
    """The learner of a stream: the registered method, `retrain` as one-shard SISA, or None for
    zero-shot. Raises KeyError/ValueError before any work."""
    if method == ZERO_SHOT:
        if hparams:
            raise KeyError(f"zero_shot has no hyperparameters, got {sorted(hparams)}")
        return None
    if method == RETRAIN:
        return method_registry.get("sisa", **{**hparams, "n_shards": 1, "n_slices": 1})
    learner = method_registry.get(method, **hparams)
    if not hasattr(learner, "select") and not isinstance(learner, Sisa):
        raise KeyError(
            f"method {method!r} is not a learner of this benchmark; use one of "
            f"{[ZERO_SHOT, 'erase', 'random_kshot', 'sisa', RETRAIN]}"
        )
    return learner


def _accuracy(scores: np.ndarray, task: ClassificationTask) -> float:
    labels = np.asarray(task.data["test"]["label"][: scores.shape[-2]])
    return float((scores.argmax(axis=-1) == labels).mean())


@runner.task(StreamSpec)
def run_stream(spec: StreamSpec) -> StreamResult:
    """Fit, delete, measure (see the module docstring)."""
    learner = resolve(spec.method, spec.hparams_dict)
    task = load_task(spec.task)
    n_train = len(task.data["train"])
    stream = deletion_stream(n_train, spec.n_deletions, spec.seed)
    if learner is None or hasattr(learner, "select"):
        return _icl_stream(spec, learner, task, stream)
    return _finetune_stream(spec, learner, task, stream)


def _icl_stream(
    spec: StreamSpec, learner: Any, task: ClassificationTask, stream: np.ndarray
) -> StreamResult:
    model = _load(spec.model)
    tokenizer = _tokenizer(spec.model.name)
    n_params = models.n_parameters(model)
    n_train = len(task.data["train"])
    memo: dict[tuple[int, ...], float] = {}

    def accuracy(indices: Sequence[int]) -> float:
        key = tuple(int(i) for i in indices)
        if key not in memo:
            memo[key] = _accuracy(
                icl_scores(model, tokenizer, task, key, batch_size=spec.eval_batch), task
            )
        return memo[key]

    n = spec.n_deletions
    seconds, flops = np.zeros(n), np.zeros(n)
    reclustered, changed = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    setup_flops = setup_seconds = 0.0
    if learner is None:  # zero-shot: nothing is learnt, nothing to delete
        acc = accuracy(())
        final: Sequence[int] = ()
        curve = [acc] * len(spec.checkpoints)
    else:
        features = None
        if learner.needs_embeddings:
            emb = runner.run(EmbedSpec(spec.model, spec.task, learner.encoder, learner.layer))
            features = learner.project(emb.values)
            setup_flops += 2.0 * emb.n_params * emb.tokens
            setup_seconds += emb.seconds
        start = time.perf_counter()
        selection: Selection = learner.select(n_train, spec.seed, features)
        setup_seconds += time.perf_counter() - start
        if features is not None:  # k-means++ and T Lloyd iterations, 4 n k d each
            kmeans = selection.selector.kmeans
            setup_flops += (3.0 + 4.0 * kmeans.n_iter_) * n_train * learner.k * features.shape[1]
        curve = []
        points = set(spec.checkpoints)
        with progress.bar(n, f"{spec.method} {spec.task.name} deletions", unit="deletion") as bar:
            if 0 in points:
                curve.append(accuracy(selection.indices))
            for j, row in enumerate(stream):
                outcome = selection.delete(int(row))
                seconds[j], flops[j] = outcome.seconds, outcome.flops
                reclustered[j], changed[j] = outcome.reclustered, outcome.changed
                if j + 1 in points:
                    curve.append(accuracy(selection.indices))
                bar.update(1)
        final = selection.indices
    prompt_tokens = icl_prompt_tokens(tokenizer, task, final)
    answer_tokens = _answer_tokens(tokenizer, task)
    return StreamResult(
        method=spec.method,
        task=spec.task.name,
        seed=spec.seed,
        checkpoints=list(spec.checkpoints),
        accuracy=curve,
        deletion_seconds=seconds,
        deletion_flops=flops,
        deletion_tokens=np.zeros(n),
        reclustered=reclustered,
        selection_changed=changed,
        inference_flops_per_query=2.0 * n_params * (prompt_tokens + answer_tokens),
        prompt_tokens=prompt_tokens,
        n_models=1,
        setup_flops=setup_flops,
        setup_seconds=setup_seconds,
        n_params=n_params,
        diagnostics={
            "demonstrations": [int(i) for i in final],
            "distinct_selections_evaluated": len(memo),
        },
    )


def _answer_tokens(tokenizer: PreTrainedTokenizerBase, task: ClassificationTask) -> float:
    """Scored tokens per query: the mean label word length (the "generated" tokens)."""
    return float(
        np.mean(
            [len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in label_choices(task)]
        )
    )


def _finetune_stream(
    spec: StreamSpec, learner: Sisa, task: ClassificationTask, stream: np.ndarray
) -> StreamResult:
    base = _load(spec.model)
    tokenizer = _tokenizer(spec.model.name)
    rows = finetune_rows(task)
    label = f"{spec.method} {spec.task.name}"
    ensemble = learner.ensemble(base, tokenizer, rows, spec.finetune, desc=label)
    n_params = ensemble.n_params
    # a twin of the ensemble's layout that counts every request, one at a time
    shadow = learner.partition(len(rows), spec.finetune.epochs, ensemble.partition.lengths)
    prompts = [task.template.block(t) for t in task.data["test"]["text"]]
    choices = label_choices(task)

    def accuracy() -> float:
        shard_lp = ensemble.shard_scores(
            lambda m: score_choices(m, tokenizer, prompts, choices, "", spec.eval_batch)
        )
        predicted = aggregate(shard_lp, learner.aggregation)
        return float((predicted == np.asarray(task.data["test"]["label"])).mean())

    initial = ensemble.fit()
    n = spec.n_deletions
    tokens = np.zeros(n)
    curve, pending = [], []
    real_seconds, real_tokens, counted_batches = 0.0, 0, 0
    points = set(spec.checkpoints)
    if 0 in points:
        curve.append(accuracy())
    for j, row in enumerate(stream):
        tokens[j] = sum(p.tokens_retrained for p in shadow.delete([int(row)]))
        pending.append(int(row))
        if j + 1 in points:
            plans, done = ensemble.delete(pending)
            counted_batches += int(sum(p.tokens_retrained for p in plans))
            real_seconds += done.seconds
            real_tokens += done.train_tokens
            pending = []
            curve.append(accuracy())
            progress.summary(
                f"{label}: retrained {len(plans)} shard(s) after {j + 1} deletions "
                f"in {done.seconds:.0f} s"
            )
    seconds_per_token = (initial.seconds + real_seconds) / max(
        1, initial.train_tokens + real_tokens
    )
    prompt_tokens = float(
        np.mean([len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts])
    )
    n_models = len(ensemble.live_shards)
    return StreamResult(
        method=spec.method,
        task=spec.task.name,
        seed=spec.seed,
        checkpoints=list(spec.checkpoints),
        accuracy=curve,
        deletion_seconds=tokens * seconds_per_token,
        deletion_flops=6.0 * n_params * tokens,
        deletion_tokens=tokens,
        reclustered=np.zeros(n, dtype=bool),
        selection_changed=np.zeros(n, dtype=bool),
        inference_flops_per_query=2.0
        * n_params
        * n_models
        * (prompt_tokens + _answer_tokens(tokenizer, task)),
        prompt_tokens=prompt_tokens,
        n_models=n_models,
        setup_flops=6.0 * n_params * initial.train_tokens,
        setup_seconds=initial.seconds,
        n_params=n_params,
        real_retrain_seconds=real_seconds,
        real_retrain_tokens=real_tokens,
        counted_batch_tokens=counted_batches,
        diagnostics={
            "seconds_per_token": seconds_per_token,
            "initial_train_tokens": initial.train_tokens,
            "checkpoint_bytes": ensemble.checkpoint_bytes,
            "shards": learner.n_shards,
            "slices": learner.n_slices,
        },
    )


# ------------------------------------------------------------------------ cost vs data size
@dataclass(frozen=True)
class DeletionCostSpec:
    """Cost of one deletion as the data grows (ERASE measured; fine-tuning counted), and at the
    real data size for other models (another size of LLM as the encoder and as N)."""

    model: ModelSpec  # whose embeddings (projected) are clustered and whose N prices retraining
    tasks: tuple[TaskSpec, ...]  # real embeddings: these tasks' train rows, pooled
    erase: tuple[tuple[str, Any], ...] = ()  # ERASE hyperparameters
    sisa: tuple[tuple[str, Any], ...] = ()  # SISA hyperparameters (shards, slices)
    epochs: float = 2.0  # fine-tuning epochs E (counted retraining)
    sizes: tuple[int, ...] = (100, 1000, 10000, 100000)  # data sizes n
    n_deletions: int = 200  # random deletions measured per size (at most n/4)
    seed: int = 0
    bandwidth: float = 0.25  # synthetic rows: real rows + Gaussian noise of this x coordinate std
    other_models: tuple[ModelSpec, ...] = ()  # measured at the real size only

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("DeletionCostSpec needs at least one task for real embeddings")
        if not self.sizes or min(self.sizes) < 2:
            raise ValueError(f"sizes must be integers >= 2, got {self.sizes}")


@dataclass
class CostCurve:
    """One row per (model, n, method): source (real / synthetic / counted), seconds and FLOPs
    per deletion, the re-clustering rate (ERASE), the naive alternative (`refit_seconds`:
    re-running the clustering), tokens retrained (fine-tuning, counted)."""

    rows: list[dict[str, Any]]
    n_real: int
    feature_dim: int
    tokens_per_row: float


def synthetic_features(real: np.ndarray, n: int, bandwidth: float, seed: int) -> np.ndarray:
    """n rows drawn around the real ones: a real row (uniform) + N(0, (bandwidth x per-coordinate
    std)^2) noise; keeps the real clusters' scale and spread."""
    rng = np.random.default_rng([seed, 6, n])
    noise = rng.normal(size=(n, real.shape[1])) * (bandwidth * real.std(axis=0))
    return real[rng.integers(len(real), size=n)] + noise


def _erase_row(erase: Erase, X: np.ndarray, victims: np.ndarray, seed: int) -> dict[str, Any]:
    """Fit on X, delete `victims` one at a time: seconds, FLOPs, re-clustering rate, refit."""
    start = time.perf_counter()
    kmeans = QuantizedKMeans(
        min(erase.k, len(X)), erase.epsilon, erase.n_iter, erase.gamma, seed=seed
    )
    kmeans.fit(X)
    fit_seconds = time.perf_counter() - start
    reports = [kmeans.delete(int(i)) for i in victims]
    seconds = np.array([r.seconds for r in reports])
    return {
        "method": "erase",
        "seconds_per_deletion": float(seconds.mean()),
        "median_seconds": float(np.median(seconds)),
        "p95_seconds": float(np.quantile(seconds, 0.95)),
        "flops_per_deletion": float(np.mean([r.flops for r in reports])),
        "llm_flops_per_deletion": 0.0,
        "recluster_rate": float(np.mean([r.reclustered for r in reports])),
        "refit_seconds": fit_seconds,
        "deletions": len(reports),
    }


def _counted_rows(
    learners: dict[str, Sisa],
    n: int,
    epochs: float,
    tokens_per_row: float,
    n_params: int,
    victims: np.ndarray,
) -> list[dict[str, Any]]:
    """Fine-tuning deletions counted: the retraining plan of each single request (sequential)."""
    rows = []
    for name, learner in learners.items():
        if learner.n_shards > n:
            continue
        part = learner.partition(n, epochs, np.full(n, tokens_per_row))
        counted = [sum(p.tokens_retrained for p in part.delete([int(i)])) for i in victims]
        flops = 6.0 * n_params * float(np.mean(counted))
        rows.append(
            {
                "method": name,
                "tokens_per_deletion": float(np.mean(counted)),
                "flops_per_deletion": flops,
                "llm_flops_per_deletion": flops,
                "recluster_rate": float("nan"),
                "deletions": len(counted),
            }
        )
    return rows


def _real_features(erase: Erase, model: ModelSpec, tasks: Sequence[TaskSpec]) -> np.ndarray:
    return np.concatenate(
        [
            erase.project(runner.run(EmbedSpec(model, t, erase.encoder, erase.layer)).values)
            for t in tasks
        ]
    )


@runner.task(DeletionCostSpec)
def deletion_cost_curve(spec: DeletionCostSpec) -> CostCurve:
    erase: Erase = method_registry.get("erase", **dict(spec.erase))
    learners = {
        "sisa": method_registry.get("sisa", **dict(spec.sisa)),
        RETRAIN: method_registry.get("sisa", **{**dict(spec.sisa), "n_shards": 1, "n_slices": 1}),
    }
    real = _real_features(erase, spec.model, spec.tasks)
    tokenizer = _tokenizer(spec.model.name)
    max_length = TrainSpec().max_length
    tokens_per_row = float(
        np.mean(
            [
                row_tokens(tokenizer, r, max_length)
                for t in spec.tasks
                for r in finetune_rows(load_task(t))
            ]
        )
    )
    rows: list[dict[str, Any]] = []
    for model in (spec.model, *spec.other_models):
        main = model == spec.model
        n_params = models.n_parameters(_load(model))
        features = real if main else _real_features(erase, model, spec.tasks)
        sizes = sorted(spec.sizes) if main else [len(features)]
        for n in progress.iterate(sizes, f"deletion cost vs n ({model.name})", unit="size"):
            source = "real" if n <= len(features) else "synthetic"
            rng = np.random.default_rng([spec.seed, 7, n])
            if source == "real":
                X = features[rng.permutation(len(features))[:n]]
            else:
                X = synthetic_features(features, n, spec.bandwidth, spec.seed)
            victims = rng.choice(n, size=max(1, min(spec.n_deletions, n // 4)), replace=False)
            base = {"model": model.name, "n_params": n_params, "n": n}
            rows.append({**base, "source": source, **_erase_row(erase, X, victims, spec.seed)})
            for counted in _counted_rows(
                learners, n, spec.epochs, tokens_per_row, n_params, victims
            ):
                rows.append({**base, "source": "counted", **counted})
    return CostCurve(rows, len(real), int(real.shape[1]), tokens_per_row)
