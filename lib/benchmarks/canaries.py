"""The canary-exposure protocol: language-model fine-tuning on biography documents with
secret-sharer canaries, deletion requests in cycles, and what each model still exposes.

Data (`CanaryDataSpec`, `canary_data`). The fictitious-author benchmark (`lib.data.authors`)
gives every author a biography; its first `doc_sentences` sentences are cut into passages of
`passage_sentences` sentences, one training document each. Authors are dealt (seeded) into
`n_cycles` forget groups of `forget_per_cycle` authors (deletion request c removes group c) and
the retain authors; every forget author and `n_retain_canaries` retain authors own one canary
("<author>'s account PIN is 48291", Carlini et al. 2019; `lib.data.canaries`), inserted
`repetitions` times into the owner's passages (`spread` mode). Forget canaries are dealt to the
groups by insertion count, so every request removes canaries of every count. Holdout authors
(never trained) give the held-out documents. Every document keeps its text without canaries
(`clean_text`): perplexity and membership inference read the clean text, because a passage that
repeats one canary sentence is easy to predict *in context* for any model (the oracle too).

Models (`DocsFinetuneSpec`, checkpoints cached by spec):
- target: fine-tuned on every document (`without_cycles=0`);
- oracle of cycle c: the same recipe without the documents of groups 1..c (exact unlearning);
- DP-SGD models (`dp=DPSpec(...)`): the target's data trained with DP-SGD (Opacus) instead. DP-SGD
  is a *training recipe*, not an unlearning method: it is modelled as an alternative target that
  is evaluated as it is, with no unlearning step (its cost is paid up front, for every datum).

Unlearning (`CyclesSpec`, a runner task): a registered method (`lib.methods`) processes the
deletion requests 1..`cycles` in order, each starting from the previous result, with the streams
`forget` (the group's documents, canaries included: what was trained) and `retain` (the
documents still held). After every cycle the model is evaluated (`evaluate_model`):

- exposure (bits, higher = more memorised; Carlini et al.) of every canary by the exact digit-tree
  walk (`lib.algorithms.secret_rank`), or its skew-normal estimate past `max_nodes` (recorded per
  canary, counted in `n_estimated`);
- per-document NLL of the clean forget, retain and held-out documents: perplexities and the
  membership-inference AUC (Min-K% 40%, forget documents vs held-out documents);
- optionally the QA suite of the benchmark (`lib.benchmarks.tofu_suite`): fact accuracy on the
  deleted authors' questions (restricted to facts their documents state) and model utility;
- cost of each request (seconds, FLOPs, peak memory) and distance to the oracle of that cycle.

`summarize(stats, data, cycle, oracle)` turns the per-example numbers into one row of metrics
with 95% bootstrap intervals over canaries (exposure) or authors (documents).
"""

from __future__ import annotations

import copy
import logging
import math
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib import cache as store
from lib import methods as method_registry
from lib import metrics, models, progress, runner
from lib.algorithms.dp_sgd import DPSGD, noise_multiplier_for_epsilon, poisson_batches
from lib.algorithms.per_sample import select_parameters
from lib.algorithms.secret_rank import secret_format, secret_rank
from lib.batches import anchored_batches, encode_rows, n_micro_batches
from lib.benchmarks import tofu
from lib.benchmarks.tofu_suite import EvalSpec, SuiteRows, collect, fact_vectors, retain_subset
from lib.benchmarks.tofu_suite import summarize as summarize_qa
from lib.data import build_benchmark
from lib.data.canaries import DEFAULT_TEMPLATE, INSERT_MODES, insert_canaries, make_canaries
from lib.data.schema import canonical_hash, dataset_hash
from lib.evaluate import TokenCounter, score_texts
from lib.methods import UnlearnContext, UnlearnData, Unlearned
from lib.methods.losses import ce_mean, forward_logits
from lib.metrics import mia
from lib.metrics import stats as st
from lib.specs import ModelSpec, TrainSpec, spec_key, to_dict
from lib.train import PeakMemory, TrainResult, seed_everything, train

logger = logging.getLogger(__name__)

__all__ = [
    "CanaryData",
    "CanaryDataSpec",
    "CanaryEvalSpec",
    "CanaryStats",
    "CyclesResult",
    "CyclesSpec",
    "DPSpec",
    "DocsFinetuneSpec",
    "ExposureSpec",
    "METRIC_HELP",
    "canary_data",
    "evaluate_model",
    "finetuned",
    "finetuned_stats",
    "run_cycles",
    "summarize",
]

#: Held-out documents, MIA: Min-K% (40%) as notebook 04's headline attack.
MIA_ATTACK = "min_k"
#: What every summary number means and which direction is better.
METRIC_HELP = {
    "forget_exposure": "mean exposure (bits) of the canaries deleted so far; lower = more "
    "erased (log2|R| = the model's top guess, ~1.4 = never seen)",
    "retain_exposure": "mean exposure (bits) of the retain (control) canaries; should stay at "
    "the target's level",
    "pending_exposure": "mean exposure (bits) of forget canaries not deleted yet",
    "n_estimated": "canaries whose exposure is the skew-normal estimate (the exact walk hit its "
    "node cap)",
    "heldout_ppl": "perplexity of never-trained authors' documents; lower = more utility",
    "retain_ppl": "perplexity of retain documents (trained, kept); lower = more utility",
    "forget_ppl": "perplexity of the deleted documents (without canaries); higher = more erased",
    "mia_auc": "Min-K% (40%) AUC, deleted documents vs held-out documents; 0.5 = "
    "indistinguishable, 1 = clearly seen",
    "oracle_exposure_gap": "mean (exposure - oracle's exposure) over the deleted canaries, "
    "bits; 0 = like retraining, > 0 = under-erased",
    "oracle_nll_distance": "mean |per-document NLL - oracle's| over the deleted documents, "
    "nats/token; 0 = like retraining",
    "model_utility": "QA benchmark: TOFU model utility (retain QA + real-world probes); higher "
    "= more utility",
    "forget_fact_acc": "QA benchmark: fraction of the deleted authors' questions answered with "
    "the fact; lower = more forgotten",
    "retain_fact_acc": "QA benchmark: same on retain authors; higher = utility kept",
    "seconds": "wall time of the unlearning (or training) itself",
    "flops": "FLOPs of the unlearning, building F included",
    "peak_memory_mb": "peak memory above the start (CPU RSS or CUDA allocated), MiB",
}


# --------------------------------------------------------------------------- specs
def _int_at_least(owner: str, low: int, **values: Any) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{owner}.{name} must be an integer >= {low}, got {value!r}")


@dataclass(frozen=True)
class CanaryDataSpec:
    """The documents, canaries and deletion requests (see the module docstring)."""

    n_authors: int = 24  # train authors (forget groups + retain authors)
    n_holdout_authors: int = 6  # never-trained authors: held-out documents, MIA non-members
    qa_per_author: int = 10  # QA pairs per author of the benchmark (QA suite)
    seed: int = 0  # seed of the generated benchmark and of the author groups
    n_cycles: int = 4  # deletion requests, each a new group of authors
    forget_per_cycle: int = 3  # authors deleted per request
    n_retain_canaries: int = 12  # retain authors that own a control canary
    repetitions: tuple[int, ...] = (1, 4, 16)  # insertion counts, balanced over canaries
    n_digits: int = 5  # |R| = 10^n_digits secrets
    template: str = DEFAULT_TEMPLATE  # canary text with {name} and {secret}
    canary_seed: int = 0  # seed of the secrets and insertion points
    doc_sentences: int = 12  # first sentences of each biography used (0 = all)
    passage_sentences: int = 3  # sentences per training document
    insert_mode: str = "copies"  # copies (each occurrence in a new copy of a passage) | spread

    def __post_init__(self) -> None:
        _int_at_least(
            "CanaryDataSpec",
            1,
            n_authors=self.n_authors,
            n_holdout_authors=self.n_holdout_authors,
            qa_per_author=self.qa_per_author,
            n_cycles=self.n_cycles,
            forget_per_cycle=self.forget_per_cycle,
            n_digits=self.n_digits,
            passage_sentences=self.passage_sentences,
        )
        _int_at_least(
            "CanaryDataSpec",
            0,
            seed=self.seed,
            n_retain_canaries=self.n_retain_canaries,
            canary_seed=self.canary_seed,
            doc_sentences=self.doc_sentences,
        )
        if self.n_forget >= self.n_authors:
            raise ValueError(
                f"n_cycles * forget_per_cycle = {self.n_forget} must be < n_authors = "
                f"{self.n_authors} (at least one retain author)"
            )
        if self.n_retain_canaries > self.n_authors - self.n_forget:
            raise ValueError(
                f"n_retain_canaries = {self.n_retain_canaries} but only "
                f"{self.n_authors - self.n_forget} retain authors; use at most that"
            )
        if not self.repetitions or any(
            isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in self.repetitions
        ):
            raise ValueError(f"repetitions must be positive integers, got {self.repetitions}")
        if self.insert_mode not in INSERT_MODES:
            raise ValueError(f"insert_mode must be one of {INSERT_MODES}, got {self.insert_mode!r}")
        if not 1 <= self.n_digits <= 9:
            raise ValueError(f"n_digits must be in 1..9, got {self.n_digits}")

    @property
    def n_forget(self) -> int:
        """Forget authors over all cycles."""
        return self.n_cycles * self.forget_per_cycle

    @property
    def space_size(self) -> int:
        """|R|, the number of possible secrets."""
        return 10**self.n_digits


@dataclass(frozen=True)
class DPSpec:
    """DP-SGD training (Abadi et al. 2016) with Opacus: Poisson-sampled batches, per-example
    clipping over P, Gaussian noise for (epsilon, delta) by the RDP accountant.

    P: `scope="all"` (every parameter) or the last `k` blocks + final norm (`last_k`): Opacus
    stores a per-example gradient of every parameter in P for every example of a batch
    (batch x |P| floats), which for all 135M parameters does not fit a small CPU's memory.
    Runs in float32 (Opacus' per-example gradients take the activations' dtype).
    """

    epsilon: float | None = 8.0  # target epsilon at `delta`; None = no noise (clipping only)
    delta: float = 1e-5  # delta of the guarantee (< 1 / number of documents)
    clip_norm: float = 1.0  # C: per-example L2 clipping norm over P
    lr: float = 1e-3  # learning rate of the optimiser on the privatised gradient
    batch_size: int = 16  # expected batch size q * N (Poisson sampling)
    epochs: float = 4.0  # expected passes over the documents (steps = epochs * N / batch)
    optimizer: str = "adamw"  # adamw | sgd
    scope: str = "all"  # all | last_k
    k: int = 4  # blocks in P for last_k
    seed: int = 0  # seed of the batches and of the noise

    def __post_init__(self) -> None:
        if self.epsilon is not None and not self.epsilon > 0:
            raise ValueError(f"DPSpec.epsilon must be > 0 or None, got {self.epsilon}")
        if not 0 < self.delta < 1:
            raise ValueError(f"DPSpec.delta must be in (0, 1), got {self.delta}")
        if not (self.clip_norm > 0 and self.lr > 0 and self.epochs > 0):
            raise ValueError("DPSpec.clip_norm, lr and epochs must be > 0")
        _int_at_least("DPSpec", 1, batch_size=self.batch_size, k=self.k)
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"DPSpec.optimizer must be 'adamw' or 'sgd', got {self.optimizer!r}")
        if self.scope not in ("all", "last_k"):
            raise ValueError(f"DPSpec.scope must be 'all' or 'last_k', got {self.scope!r}")


@dataclass(frozen=True)
class DocsFinetuneSpec:
    """Fine-tune a base model on the documents: the target, an oracle, or a DP-SGD model."""

    model: ModelSpec
    data: CanaryDataSpec
    train: TrainSpec  # recipe (epochs over the documents, lr, batch, max_length, seed)
    without_cycles: int = 0  # 0 = target; c = oracle trained without groups 1..c
    dp: DPSpec | None = None  # DP-SGD instead of ordinary fine-tuning (train.* unused then)

    def __post_init__(self) -> None:
        if not 0 <= self.without_cycles <= self.data.n_cycles:
            raise ValueError(
                f"without_cycles must be in 0..{self.data.n_cycles}, got {self.without_cycles}"
            )
        if self.dp is not None and self.without_cycles:
            raise ValueError("DP-SGD models are trained on every document (without_cycles=0)")

    def key(self) -> str:
        """Cache key: the spec AND the content hashes of its documents and canaries, so a
        change of the data builders never reuses a stale checkpoint."""
        hashes = canary_data(self.data).hashes
        return spec_key({"kind": "canary_docs_finetune", "spec": self, "data": hashes})

    @property
    def label(self) -> str:
        if self.dp is not None:
            eps = "inf" if self.dp.epsilon is None else f"{self.dp.epsilon:g}"
            return f"dp_sgd (eps={eps})"
        return "target" if self.without_cycles == 0 else f"oracle (cycle {self.without_cycles})"


def oracle_of(target: DocsFinetuneSpec, cycle: int) -> DocsFinetuneSpec:
    """The target's recipe without the documents of groups 1..cycle (exact unlearning)."""
    return replace(target, without_cycles=cycle, dp=None)


def dp_of(target: DocsFinetuneSpec, dp: DPSpec) -> DocsFinetuneSpec:
    """A DP-SGD model on the target's documents."""
    return replace(target, without_cycles=0, dp=dp)


@dataclass(frozen=True)
class ExposureSpec:
    """How exposure is measured (`lib.algorithms.secret_rank`)."""

    max_nodes: int = 2_000  # node cap of the exact walk; past it the skew-normal estimate
    n_samples: int = 500  # random candidates of the skew-normal fit
    batch_size: int = 256  # tree nodes / candidates per forward pass
    seed: int = 0  # seed of the candidates

    def __post_init__(self) -> None:
        _int_at_least("ExposureSpec", 0, max_nodes=self.max_nodes, seed=self.seed)
        _int_at_least("ExposureSpec", 1, batch_size=self.batch_size)
        _int_at_least("ExposureSpec", 10, n_samples=self.n_samples)


@dataclass(frozen=True)
class CanaryEvalSpec:
    """Everything measured on one model."""

    exposure: ExposureSpec = field(default_factory=ExposureSpec)
    n_retain_docs: int = 24  # retain documents scored for retain perplexity (spread evenly)
    batch_size: int = 16  # documents per scoring pass
    n_boot: int = 200  # bootstrap replicates of every interval
    qa: EvalSpec | None = None  # the QA suite's sizes; None = no QA evaluation
    qa_cycles: tuple[int, ...] = (1,)  # cycles after which the QA suite runs

    def __post_init__(self) -> None:
        _int_at_least(
            "CanaryEvalSpec",
            1,
            n_retain_docs=self.n_retain_docs,
            batch_size=self.batch_size,
            n_boot=self.n_boot,
        )


@dataclass(frozen=True)
class CyclesSpec:
    """Deletion requests 1..`cycles` processed in order by one method (a runner task)."""

    target: DocsFinetuneSpec
    method: str  # registry name (lib.methods.METHODS)
    train: TrainSpec  # optimisation of gradient methods (seed = the unlearning seed)
    cycles: int = 1  # requests processed; results after each
    hparams: tuple[tuple[str, Any], ...] = ()  # overrides of the method's defaults
    evaluation: CanaryEvalSpec = field(default_factory=CanaryEvalSpec)
    oracle_cycles: tuple[int, ...] = (1,)  # cycles whose oracle is trained for the distance

    def __post_init__(self) -> None:
        if not 1 <= self.cycles <= self.target.data.n_cycles:
            raise ValueError(f"cycles must be in 1..{self.target.data.n_cycles}, got {self.cycles}")
        if self.target.without_cycles or self.target.dp is not None:
            raise ValueError("unlearning starts from the target (without_cycles=0, dp=None)")

    @property
    def hparams_dict(self) -> dict[str, Any]:
        return dict(self.hparams)


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class CanaryData:
    """Documents, canaries and groups of one `CanaryDataSpec` (plain rows; see `canary_data`).

    Document rows: id, author, cycle (the author's deletion request; 0 = retain author, -1 =
    holdout), text (canaries inserted), clean_text, canary_ids. Canary rows: the columns of
    `lib.data.canaries.make_canaries` plus cycle (0 for retain canaries).
    """

    documents: list[dict[str, Any]]  # training documents of every train author
    holdout: list[dict[str, Any]]  # documents of never-trained authors
    canaries: list[dict[str, Any]]
    groups: tuple[tuple[str, ...], ...]  # forget authors of cycles 1..n
    retain_authors: tuple[str, ...]
    covered: dict[str, tuple[str, ...]]  # author -> attributes its training passages state
    hashes: dict[str, str]

    def cycle_of(self, author: str) -> int:
        for c, group in enumerate(self.groups, start=1):
            if author in group:
                return c
        return 0

    def kept(self, without_cycles: int) -> list[dict[str, Any]]:
        """Documents still held after requests 1..without_cycles (0 = every document)."""
        return [d for d in self.documents if d["cycle"] == 0 or d["cycle"] > without_cycles]

    def request(self, cycle: int) -> UnlearnData:
        """Deletion request `cycle`: forget = the group's documents, retain = those kept."""
        forget = [{"text": d["text"]} for d in self.documents if d["cycle"] == cycle]
        retain = [{"text": d["text"]} for d in self.kept(cycle)]
        return UnlearnData({"forget": forget, "retain": retain}, self.groups[cycle - 1])


def _kept_sentences(bio: dict[str, Any], asked: set[str], limit: int) -> list[int]:
    """Indices of the biography sentences trained on: with a `limit`, the sentences stating
    facts the author's QA asks about come first (so that the QA suite tests trained facts),
    then the others, in biography order, `limit` in all."""
    order = range(len(bio["sentences"]))
    if not limit:
        return list(order)
    first = [i for i in order if bio["attributes"][i] in asked]
    rest = [i for i in order if bio["attributes"][i] not in asked]
    return sorted((first + rest)[:limit])


def _doc_rows(
    bench, split: str, spec: CanaryDataSpec, cycle_of
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Passages of every biography of `split`, and the attributes each author's passages state."""
    asked: dict[str, set[str]] = {}
    for row in bench.split(split):
        asked.setdefault(row["author"], set()).add(row["attribute"])
    rows, covered = [], {}
    for bio in bench.documents(split):
        keep = _kept_sentences(bio, asked.get(bio["author"], set()), spec.doc_sentences)
        covered[bio["author"]] = [bio["attributes"][i] for i in keep]
        sentences = [bio["sentences"][i] for i in keep]
        per = spec.passage_sentences
        for j, start in enumerate(range(0, len(sentences), per)):
            text = " ".join(sentences[start : start + per])
            rows.append(
                {
                    "id": f"{bio['id']}/p{j}",
                    "author": bio["author"],
                    "cycle": cycle_of(bio["author"]),
                    "text": text,
                    "clean_text": text,
                }
            )
    return rows, covered


@cache
def _benchmark(spec: CanaryDataSpec):
    return build_benchmark(
        n_authors=spec.n_authors,
        qa_per_author=spec.qa_per_author,
        n_holdout_authors=spec.n_holdout_authors,
        seed=spec.seed,
    )


@cache
def canary_data(spec: CanaryDataSpec) -> CanaryData:
    """Build the documents, canaries and deletion groups of `spec` (deterministic, memoised)."""
    bench = _benchmark(spec)
    authors = list(bench.authors("full"))
    order = np.random.default_rng([spec.seed, 7]).permutation(len(authors))
    forget = [authors[i] for i in order[: spec.n_forget]]
    retain = [authors[i] for i in order[spec.n_forget :]]
    with_canary = [
        authors[i] for i in order[spec.n_forget : spec.n_forget + spec.n_retain_canaries]
    ]
    canaries = make_canaries(
        forget,
        with_canary,
        repetitions=spec.repetitions,
        n_digits=spec.n_digits,
        template=spec.template,
        seed=spec.canary_seed,
    ).to_list()
    # Deal the forget canaries to the cycles by insertion count, so that every request removes
    # canaries of every count (round-robin over the canaries sorted by count).
    forget_canaries = sorted(
        (c for c in canaries if c["group"] == "forget"),
        key=lambda c: (c["repetitions"], c["canary_id"]),
    )
    cycle_of_owner = {c["owner"]: 1 + i % spec.n_cycles for i, c in enumerate(forget_canaries)}
    groups = tuple(
        tuple(a for a in forget if cycle_of_owner[a] == c) for c in range(1, spec.n_cycles + 1)
    )
    for c in canaries:
        c["cycle"] = cycle_of_owner.get(c["owner"], 0)

    def cycle_of(author: str) -> int:
        return cycle_of_owner.get(author, 0)

    doc_rows, covered = _doc_rows(bench, "full", spec, cycle_of)
    docs = Dataset.from_list(doc_rows)
    docs = insert_canaries(
        docs,
        Dataset.from_list(canaries),
        owner_column="author",
        mode=spec.insert_mode,
        seed=spec.canary_seed,
    ).to_list()
    for row in docs:
        # `copies` mode: a copy keeps its source's id and clean text; only the original is
        # scored for perplexity and membership (the copies are what the canary is trained on)
        row["is_copy"] = bool(row.get("is_copy", False))
    seen: dict[str, int] = {}
    for row in docs:
        if row["is_copy"]:
            seen[row["id"]] = seen.get(row["id"], 0) + 1
            row["id"] = f"{row['id']}/copy{seen[row['id']]}"
    holdout, _ = _doc_rows(bench, "holdout", spec, lambda _a: -1)
    for row in holdout:
        row["canary_ids"] = []
        row["is_copy"] = False
    hashes = {
        "benchmark": bench.fingerprint(),
        "documents": canonical_hash(docs),
        "holdout_documents": canonical_hash(holdout),
        "canaries": dataset_hash(canaries),
    }
    return CanaryData(
        documents=docs,
        holdout=holdout,
        canaries=canaries,
        groups=groups,
        retain_authors=tuple(retain),
        covered={a: tuple(v) for a, v in covered.items()},
        hashes=hashes,
    )


def longest_document(data: CanaryDataSpec, tokenizer: PreTrainedTokenizerBase) -> int:
    """Tokens of the longest training document (with its canaries)."""
    docs = canary_data(data).documents
    return max(len(tokenizer(d["text"], add_special_tokens=False)["input_ids"]) for d in docs)


def check_max_length(data: CanaryDataSpec, train_spec: TrainSpec, tokenizer) -> None:
    """ValueError when training would cut documents (and the canaries at their ends)."""
    longest = longest_document(data, tokenizer)
    if train_spec.max_length < longest:
        raise ValueError(
            f"max_length = {train_spec.max_length} would cut documents of up to {longest} "
            f"tokens (and their canaries); use max_length >= {longest}"
        )


# --------------------------------------------------------------------------- fine-tuning
tokenizer_of = tofu.tokenizer_of
load_base = tofu.load_base


def _finetune(model, tokenizer, rows, spec: DocsFinetuneSpec) -> TrainResult:
    device = next(model.parameters()).device

    def loss_fn(trained: PreTrainedModel, micro: dict) -> tuple:
        batch = micro["train"].to(device)
        return ce_mean(forward_logits(trained, batch), batch.labels), {}, batch.n_tokens, 0

    return train(
        model,
        anchored_batches(tokenizer, {"train": rows}, spec.train, "train"),
        n_micro_batches(len(rows), spec.train),
        loss_fn,
        spec.train,
        desc=f"fine-tune {spec.label}",
    )


def dp_noise(dp: DPSpec, n_documents: int) -> tuple[float, float, int]:
    """(noise multiplier sigma, sampling rate q, steps) of a DP run over `n_documents`."""
    if dp.batch_size > n_documents:
        raise ValueError(f"DP batch_size {dp.batch_size} > {n_documents} documents")
    q = dp.batch_size / n_documents
    steps = max(1, math.ceil(dp.epochs / q))
    with _rdp_order_note():
        sigma = (
            0.0
            if dp.epsilon is None
            else noise_multiplier_for_epsilon(dp.epsilon, dp.delta, q, steps)
        )
    return sigma, q, steps


@contextmanager
def _rdp_order_note() -> Iterator[None]:
    """Opacus warns when the best RDP order is its largest alpha (large epsilon, few steps):
    the reported epsilon is then a valid but loose upper bound, and the noise found for a
    target epsilon is conservative (more noise than needed). That is a property of the result,
    not a fault: log it once at INFO instead of a warning in every report."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", message="Optimal order is the largest alpha")
        yield
    for w in caught:
        if "Optimal order is the largest alpha" in str(w.message):
            logger.info("DP accountant: optimal RDP order is the largest alpha (epsilon is loose)")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _dp_train(model, tokenizer, rows, spec: DocsFinetuneSpec) -> tuple[TrainResult, dict]:
    """DP-SGD on P with Poisson batches (lib.algorithms.dp_sgd), in float32."""
    dp = spec.dp
    assert dp is not None
    sigma, q, steps = dp_noise(dp, len(rows))
    params = None if dp.scope == "all" else select_parameters(model, "last_k", k=dp.k)
    device = next(model.parameters()).device
    result = TrainResult()
    texts = [{"text": r["text"]} for r in rows]
    losses = []
    with (
        PeakMemory(device) as memory,
        DPSGD(
            model,
            params,
            clip_norm=dp.clip_norm,
            noise_multiplier=sigma,
            lr=dp.lr,
            sample_rate=q,
            expected_batch_size=dp.batch_size,
            optimizer=dp.optimizer,
            seed=dp.seed,
        ) as runner_dp,
        progress.bar(steps, f"DP-SGD {spec.label}") as bar,
    ):
        start = time.perf_counter()
        for idx in poisson_batches(len(rows), q, steps, seed=dp.seed):
            if len(idx) == 0:
                loss = runner_dp.step(torch.zeros((0, 2), dtype=torch.long))
            else:
                batch = encode_rows(tokenizer, [texts[i] for i in idx], spec.train.max_length)
                loss = runner_dp.step(batch.input_ids, batch.attention_mask, batch.labels)
                result.train_tokens += batch.n_tokens
            losses.append(loss)
            result.steps += 1
            result.log.append({"step": result.steps, "loss": loss})
            bar.set_postfix(loss=f"{loss:.3f}")
            bar.update(1)
        with _rdp_order_note():
            epsilon = runner_dp.epsilon(dp.delta)
        result.seconds = time.perf_counter() - start
    result.peak_memory_mb = memory.peak_mb
    model.eval()
    named = dict(model.named_parameters())
    p_size = sum(named[n].numel() for n in (params or list(named)))
    info = {
        "epsilon": epsilon,
        "noise_multiplier": sigma,
        "sample_rate": q,
        "dp_steps": steps,
        "p_size": p_size,
    }
    logger.info(
        "DP-SGD %s: sigma=%.3g q=%.3g steps=%d -> epsilon=%.3g",
        spec.label,
        sigma,
        q,
        steps,
        epsilon,
    )
    return result, info


def finetuned(spec: DocsFinetuneSpec) -> Path:
    """Checkpoint folder of a fine-tuning run (trained on first use, cached by spec)."""

    def build(folder: Path) -> None:
        rows = canary_data(spec.data).kept(spec.without_cycles)
        tokenizer = tokenizer_of(spec.model.name)
        check_max_length(spec.data, spec.train, tokenizer)
        logger.info("fine-tuning %s on %d documents", spec.label, len(rows))
        seed_everything(spec.train.seed)
        extra: dict[str, Any] = {}
        if spec.dp is None:
            model = load_base(spec.model)
            result = _finetune(model, tokenizer, rows, spec)
        else:
            model = load_base(replace(spec.model, dtype="float32"))
            result, extra = _dp_train(model, tokenizer, rows, spec)
        if result.diverged:
            raise RuntimeError(f"fine-tuning {spec.label} diverged: {result.message}")
        models.save_checkpoint(model, tokenizer, folder)
        n_params = models.n_parameters(model)
        record = {**result.as_dict(), **extra, "n_params": n_params, "log": result.log}
        store.atomic_write_json(folder / "train.json", record)

    return store.cached_folder("checkpoints", spec.key(), build, spec=to_dict(spec))


def load_finetuned(spec: DocsFinetuneSpec) -> PreTrainedModel:
    loaded, _ = models.load_model(str(finetuned(spec)), spec.model.dtype, spec.model.device)
    return loaded


def train_record(spec: DocsFinetuneSpec) -> dict[str, Any]:
    """What fine-tuning did and cost (steps, tokens, seconds, memory, n_params, DP facts)."""
    import json

    return json.loads((finetuned(spec) / "train.json").read_text())


# --------------------------------------------------------------------------- evaluation
@dataclass
class CanaryStats:
    """Per-example numbers of one model (cached as JSON + npz).

    Canaries in the order of `CanaryData.canaries`; documents: the training documents, then the
    held-out ones, scored on their clean text.
    """

    exposure: np.ndarray  # (n_canaries,) bits
    exposure_method: list[str]  # exact | skewnorm
    rank_lower_bound: np.ndarray  # (n_canaries,) 1 + candidates found more likely
    secret_log_prob: np.ndarray  # (n_canaries,) log P(secret | prefix), nats
    nodes: np.ndarray  # (n_canaries,) tree nodes expanded
    exposure_seconds: float
    doc_ids: list[str]
    doc_nll: np.ndarray  # (n_docs,) summed NLL (nats)
    doc_tokens: np.ndarray  # (n_docs,) scored tokens
    doc_min_k: np.ndarray  # (n_docs,) Min-K% score (loss-like)
    eval_tokens: int = 0
    qa: dict[str, dict[str, float]] = field(default_factory=dict)  # cycle -> QA numbers


def _scored_documents(data: CanaryData, spec: CanaryEvalSpec) -> list[dict[str, Any]]:
    """Every forget document, `n_retain_docs` retain documents spread evenly, every held-out
    document."""
    originals = [d for d in data.documents if not d["is_copy"]]
    forget = [d for d in originals if d["cycle"] > 0]
    retain = retain_subset([d for d in originals if d["cycle"] == 0], spec.n_retain_docs)
    return forget + retain + data.holdout


def _qa_rows(spec: CanaryDataSpec, cycle: int, evaluation: EvalSpec, model: ModelSpec) -> SuiteRows:
    """QA rows of the deleted authors (facts their training documents state), retain authors
    and holdout authors; no multi-hop or combined questions."""
    bench = _benchmark(spec)
    data = canary_data(spec)
    covered = data.covered

    def qa_of(authors: Sequence[str], split: str) -> list[dict[str, Any]]:
        wanted = set(authors)
        return [
            dict(r)
            for r in bench.split(split)
            if r["author"] in wanted
            and (split == "holdout" or r["attribute"] in covered[r["author"]])
        ]

    deleted = [a for group in data.groups[:cycle] for a in group]
    forget = qa_of(deleted, "full")
    if not forget:
        raise ValueError(
            f"no QA question of the authors deleted by request {cycle} asks about a fact their "
            "training passages state: raise doc_sentences or qa_per_author, or turn QA off"
        )
    retain = retain_subset(qa_of(data.retain_authors, "full"), evaluation.n_retain)
    holdout = qa_of(bench.authors("holdout"), "holdout")[: max(1, len(forget))]
    return SuiteRows(
        forget=forget,
        multihop=[],
        combined=[],
        retain=retain,
        holdout=holdout,
        probes=tofu.probes(model, evaluation)[0],
    )


def _qa_numbers(stats, data: CanaryData, evaluation: EvalSpec) -> dict[str, float]:
    summary = summarize_qa(stats, stats, evaluation)
    keep = (
        "model_utility",
        "model_utility_low",
        "model_utility_high",
        "retain_fact_acc",
        "probe_fact_acc",
        "forget_fact_acc",
        "forget_fact_acc_low",
        "forget_fact_acc_high",
    )
    out = {k: float(summary[k]) for k in keep}
    out["qa_forget_n"] = float(np.isfinite(fact_vectors(stats)["forget"]).sum())
    return out


@torch.no_grad()
def _exposures(model, tokenizer, data: CanaryData, spec: ExposureSpec) -> dict[str, Any]:
    out: dict[str, list] = {k: [] for k in ("exposure", "method", "lower", "log_prob", "nodes")}
    seconds = 0.0
    with models.autocast(model):
        for canary in progress.iterate(data.canaries, "exposure", unit="canary"):
            fmt = secret_format(tokenizer, canary["scoring_prefix"], int(canary["n_digits"]))
            result = secret_rank(
                model,
                fmt,
                canary["secret"],
                max_nodes=spec.max_nodes,
                batch_size=spec.batch_size,
                n_samples=spec.n_samples,
                seed=spec.seed,
            )
            out["exposure"].append(result.exposure)
            out["method"].append(result.method)
            out["lower"].append(result.rank_lower_bound)
            out["log_prob"].append(result.log_prob)
            out["nodes"].append(result.nodes_expanded)
            seconds += result.seconds
    return {**out, "seconds": seconds}


def evaluate_model(
    model: PreTrainedModel,
    model_spec: ModelSpec,
    data_spec: CanaryDataSpec,
    spec: CanaryEvalSpec,
    qa_cycles: Sequence[int] = (),
) -> CanaryStats:
    """Measure one model (uncached): exposures, document NLLs, the QA suite after `qa_cycles`."""
    tokenizer = tokenizer_of(model_spec.name)
    data = canary_data(data_spec)
    model.eval()
    exp = _exposures(model, tokenizer, data, spec.exposure)
    docs = _scored_documents(data, spec)
    counter = TokenCounter()
    scores = score_texts(
        model,
        tokenizer,
        [d["clean_text"] for d in docs],
        batch_size=spec.batch_size,
        counter=counter,
    )
    stats = CanaryStats(
        exposure=np.asarray(exp["exposure"], dtype=float),
        exposure_method=list(exp["method"]),
        rank_lower_bound=np.asarray(exp["lower"], dtype=np.int64),
        secret_log_prob=np.asarray(exp["log_prob"], dtype=float),
        nodes=np.asarray(exp["nodes"], dtype=np.int64),
        exposure_seconds=float(exp["seconds"]),
        doc_ids=[d["id"] for d in docs],
        doc_nll=np.array([-lp.sum() for lp in scores.logprobs]),
        doc_tokens=np.array([len(lp) for lp in scores.logprobs], dtype=np.int64),
        doc_min_k=mia.scores(MIA_ATTACK, scores.logprobs),
        eval_tokens=counter.tokens,
    )
    if spec.qa is not None:
        for cycle in qa_cycles:
            rows = _qa_rows(data_spec, cycle, spec.qa, model_spec)
            suite = collect(model, tokenizer, rows, spec.qa, desc=f"QA suite (cycle {cycle})")
            stats.eval_tokens += suite.eval_tokens
            stats.qa[str(cycle)] = _qa_numbers(suite, data, spec.qa)
    return stats


def finetuned_stats(
    spec: DocsFinetuneSpec, evaluation: CanaryEvalSpec, qa_cycles: Sequence[int] = ()
) -> CanaryStats:
    """Statistics of a fine-tuned model (target, oracle, DP model), cached."""
    qa_cycles = tuple(qa_cycles) if evaluation.qa is not None else ()
    key = spec_key({"model": spec.key(), "eval": evaluation, "qa_cycles": qa_cycles})
    return store.cached(
        "evals",
        key,
        lambda: evaluate_model(load_finetuned(spec), spec.model, spec.data, evaluation, qa_cycles),
    )


# --------------------------------------------------------------------------- summary
def _boot_mean_ci(values: np.ndarray, n_boot: int, seed: int = 0) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return float("nan"), float("nan")
    return st.cluster_ci(lambda i: float(values[i].mean()), list(range(len(values))), n_boot, seed)


def _ppl(nll: np.ndarray, tokens: np.ndarray) -> float:
    return float(math.exp(nll.sum() / max(1, tokens.sum()))) if len(nll) else float("nan")


def _stratified_auc_ci(
    members: np.ndarray, member_groups, nonmembers: np.ndarray, nonmember_groups, n_boot: int
) -> tuple[float, float]:
    """95% interval of the AUC resampling the authors of members and non-members separately."""
    rng = np.random.default_rng(0)
    ca, cb = st.cluster_indices(member_groups), st.cluster_indices(nonmember_groups)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        ia = np.concatenate([ca[i] for i in rng.integers(0, len(ca), len(ca))])
        ib = np.concatenate([cb[i] for i in rng.integers(0, len(cb), len(cb))])
        reps[b] = mia.mia_auc(members[ia], nonmembers[ib])
    return st.percentile_interval(reps)


def summarize(
    stats: CanaryStats,
    data: CanaryData,
    cycle: int,
    evaluation: CanaryEvalSpec,
    oracle: CanaryStats | None = None,
) -> dict[str, float]:
    """One row of metrics of a model after deletion requests 1..`cycle` (`METRIC_HELP`);
    `<key>_low/_high` are 95% bootstrap intervals (canaries, or authors for documents)."""
    n_boot = evaluation.n_boot
    canaries = data.canaries
    ccycle = np.array([c["cycle"] for c in canaries])
    group = np.array([c["group"] for c in canaries])
    reps = np.array([c["repetitions"] for c in canaries])
    deleted = (group == "forget") & (ccycle <= cycle)
    retain = group == "retain"
    pending = (group == "forget") & (ccycle > cycle)
    e = stats.exposure
    out: dict[str, float] = {"cycle": float(cycle)}
    for name, mask in (("forget", deleted), ("retain", retain), ("pending", pending)):
        out[f"{name}_exposure"] = float(e[mask].mean()) if mask.any() else float("nan")
        out[f"{name}_exposure_low"], out[f"{name}_exposure_high"] = _boot_mean_ci(e[mask], n_boot)
        for r in sorted(set(reps.tolist())):
            sel = mask & (reps == r)
            out[f"{name}_exposure_r{r}"] = float(e[sel].mean()) if sel.any() else float("nan")
    out["n_forget_canaries"] = float(deleted.sum())
    out["n_estimated"] = float(sum(m != "exact" for m in stats.exposure_method))
    # documents (clean text)
    by_id = {d["id"]: d for d in [*data.documents, *data.holdout]}
    dcycle = np.array([by_id[i]["cycle"] for i in stats.doc_ids])
    authors = [by_id[i]["author"] for i in stats.doc_ids]
    is_forget = (dcycle > 0) & (dcycle <= cycle)
    is_retain = dcycle == 0
    is_holdout = dcycle == -1
    nll, tok = stats.doc_nll, stats.doc_tokens
    out["heldout_ppl"] = _ppl(nll[is_holdout], tok[is_holdout])
    out["retain_ppl"] = _ppl(nll[is_retain], tok[is_retain])
    out["forget_ppl"] = _ppl(nll[is_forget], tok[is_forget])
    holdout_idx = np.flatnonzero(is_holdout)
    hold_groups = [authors[i] for i in holdout_idx]
    low, high = st.cluster_ci(
        lambda i: _ppl(nll[holdout_idx][i], tok[holdout_idx][i]), hold_groups, n_boot
    )
    out["heldout_ppl_low"], out["heldout_ppl_high"] = low, high
    members, nonmembers = stats.doc_min_k[is_forget], stats.doc_min_k[is_holdout]
    out["mia_auc"] = mia.mia_auc(members, nonmembers)
    out["mia_auc_low"], out["mia_auc_high"] = _stratified_auc_ci(
        members,
        [authors[i] for i in np.flatnonzero(is_forget)],
        nonmembers,
        hold_groups,
        n_boot,
    )
    loss = nll / np.maximum(tok, 1)
    out["mia_loss_auc"] = mia.mia_auc(loss[is_forget], loss[is_holdout])
    if oracle is not None:
        out["oracle_exposure_gap"] = float((e[deleted] - oracle.exposure[deleted]).mean())
        oracle_loss = oracle.doc_nll / np.maximum(oracle.doc_tokens, 1)
        out["oracle_nll_distance"] = float(np.abs(loss - oracle_loss)[is_forget].mean())
    else:
        out["oracle_exposure_gap"] = out["oracle_nll_distance"] = float("nan")
    out.update(stats.qa.get(str(cycle), {}))
    return out


def canary_table(stats: CanaryStats, data: CanaryData, cycle: int) -> list[dict[str, Any]]:
    """One row per canary: id, owner, group (forget = deleted by `cycle`, pending, retain),
    repetitions, exposure, method."""
    rows = []
    for c, exposure, how in zip(data.canaries, stats.exposure, stats.exposure_method, strict=True):
        status = c["group"]
        if status == "forget" and c["cycle"] > cycle:
            status = "pending"
        rows.append(
            {
                "canary_id": c["canary_id"],
                "owner": c["owner"],
                "group": status,
                "cycle": c["cycle"],
                "repetitions": c["repetitions"],
                "exposure": float(exposure),
                "exposure_method": how,
            }
        )
    return rows


# --------------------------------------------------------------------------- unlearning cycles
@dataclass
class CyclesResult:
    """A method over deletion requests 1..n: per cycle its metrics, cost and statistics."""

    method: str
    hparams: dict[str, Any]
    rows: list[dict[str, float]]  # per cycle: summary metrics + cost
    stats: list[CanaryStats]  # per cycle
    status: str = "ok"  # ok | diverged | not converged
    message: str = ""
    diagnostics: list[dict[str, Any]] = field(default_factory=list)  # per cycle

    def row(self, cycle: int = 1) -> dict[str, Any]:
        return {"method": self.method, **self.rows[cycle - 1], "status": self.status}

    def summary_line(self) -> str:
        first = self.rows[0]
        last = self.rows[-1]
        return (
            f"{self.method} {self.hparams or ''} {self.status}: cycle 1 forget exposure "
            f"{first['forget_exposure']:.2f} bits, held-out ppl {first['heldout_ppl']:.2f}; "
            f"after {len(self.rows)} cycle(s) {last['forget_exposure']:.2f} bits, "
            f"{sum(r['seconds'] for r in self.rows):.0f} s"
        )


def _status(unlearned: Unlearned) -> str:
    if unlearned.train.diverged:
        return "diverged"
    if unlearned.diagnostics.get("converged") is False:
        return "not converged"
    return "ok"


def _retrainer(spec: CyclesSpec, data: CanaryData, cycle: int):
    """The benchmark's exact unlearning at `cycle`: the oracle trained without groups 1..c."""
    oracle = oracle_of(spec.target, cycle)
    expected = [d["text"] for d in data.kept(cycle)]

    def retrain(rows) -> Unlearned:
        if [r["text"] for r in rows] != expected:
            raise ValueError("retrain is only defined for the request's retain documents")
        record = train_record(oracle)
        fields = TrainResult.__dataclass_fields__
        return Unlearned(
            model=load_finetuned(oracle),
            train=TrainResult(**{k: v for k, v in record.items() if k in fields}),
            source=oracle.key(),
        )

    return retrain


def validate(methods: Sequence[str], hparams: dict[str, dict[str, Any]], model: ModelSpec) -> None:
    """Every method name and hyperparameter, checked before any work (KeyError/ValueError)."""
    method_registry.validate(list(methods))
    n_layers = models.n_layers(model.name)
    for name in methods:
        method_registry.get(name, **hparams.get(name, {})).check(n_layers)


@runner.task(CyclesSpec)
def run_cycles(spec: CyclesSpec) -> CyclesResult:
    """Process deletion requests 1..spec.cycles with one method, evaluating after each."""
    method = method_registry.get(spec.method, **spec.hparams_dict)
    data = canary_data(spec.target.data)
    tokenizer = tokenizer_of(spec.target.model.name)
    check_max_length(spec.target.data, spec.train, tokenizer)
    n_params = train_record(spec.target)["n_params"]
    qa_cycles = spec.evaluation.qa_cycles if spec.evaluation.qa is not None else ()
    seed_everything(spec.train.seed)
    model = load_finetuned(spec.target)
    rows, all_stats, diagnostics = [], [], []
    status, message = "ok", ""
    for cycle in range(1, spec.cycles + 1):
        # the model this request starts from, frozen (a copy: the method modifies `model`)
        reference = copy.deepcopy(model).eval() if method.needs_reference else None

        def load_reference(ref=reference) -> PreTrainedModel:
            if ref is None:
                raise ValueError(f"{spec.method} does not declare needs_reference")
            for p in ref.parameters():
                p.requires_grad_(False)
            return ref

        ctx = UnlearnContext(
            tokenizer=tokenizer,
            train=replace(spec.train, seed=spec.train.seed + cycle - 1),
            load_reference=load_reference,
            retrain=_retrainer(spec, data, cycle),
            desc=f"unlearn {spec.method} (cycle {cycle})",
        )
        unlearned = method.unlearn(model, data.request(cycle), ctx)
        if unlearned.model is None:
            raise ValueError(f"{spec.method} returned no model; this benchmark evaluates one")
        model = unlearned.model
        del reference
        done = unlearned.train
        oracle = None
        if cycle in spec.oracle_cycles:
            oracle = finetuned_stats(oracle_of(spec.target, cycle), spec.evaluation, qa_cycles)
        if (
            unlearned.source
            and oracle is not None
            and unlearned.source == oracle_of(spec.target, cycle).key()
        ):
            stats = oracle
        else:
            stats = evaluate_model(
                model,
                spec.target.model,
                spec.target.data,
                spec.evaluation,
                [cycle] if cycle in qa_cycles else [],
            )
        flops = unlearned.flops
        if flops is None:
            flops = metrics.train_flops(n_params, done.train_tokens) + metrics.eval_flops(
                n_params, done.reference_tokens
            )
        row = summarize(stats, data, cycle, spec.evaluation, oracle)
        row.update(
            seconds=done.seconds,
            flops=flops,
            peak_memory_mb=done.peak_memory_mb,
            steps=float(done.steps),
        )
        rows.append(row)
        all_stats.append(stats)
        diagnostics.append(dict(unlearned.diagnostics))
        progress.summary(
            f"{spec.method} cycle {cycle}: forget exposure {row['forget_exposure']:.2f} bits, "
            f"retain {row['retain_exposure']:.2f}, held-out ppl {row['heldout_ppl']:.2f}"
        )
        status = _status(unlearned)
        if status != "ok":
            message = done.message or f"{status} at cycle {cycle}"
            break
    return CyclesResult(
        method=spec.method,
        hparams=spec.hparams_dict,
        rows=rows,
        stats=all_stats,
        status=status,
        message=message,
        diagnostics=diagnostics,
    )
