"""Unlearning pre-training data (Yao et al. 2024) with a real retrained model: continued
pre-training on raw-text chunks, unlearning runs as runner tasks, and the paper's metrics.

Protocol
1. **Data.** A `PretrainCorpora` (`lib.data.corpora`: local code / prose / biographies, or the
   paper's hub data through `lib.data.unlearn_hub`) gives per domain forget / approximate /
   retain documents and a general retain / evaluation mix. Documents are cut into chunks of at
   most `chunk_tokens` tokens (`chunk_document`; chunks under `min_chunk_tokens` are dropped,
   as the code drops chunks under 5 tokens); a chunk is a raw-text row whose re-tokenisation
   gives back exactly its tokens.
2. **Continued pre-training** makes membership known. From the base model, train (a) the
   *shared* mixture (general retain + every domain's retain chunks) into a shared checkpoint,
   then (b) the *final slice* (every domain's forget chunks + retain chunks) into the
   **target**. The **retrained** model replays the final slice *without* the forget chunks from
   the shared checkpoint: exact retraining from the last checkpoint before the forget data
   appeared (as SISA retrains a slice), at the cost of that slice only. `continued=False` is the
   "native" mode: the target is the base model itself (forget = data it may have seen in its own
   pre-training) and there is no retrained model.
3. **Unlearning** (`UnlearnRunSpec`, a runner task): one registered method on one domain's
   forget chunks, starting from the target. The request carries the streams `forget`, `retain`
   (the domain's retain chunks, or the general retain mix for methods whose class declares
   `retain_set = "general"`) and, built on first use and cached, `forget_adversarial` /
   `forget_adversarial_official` (the original model's top-1 labels for adversarial samples).
   `eval_epochs` also scores the model after those epochs of the same run (a learning-rate x
   epochs grid from one run per learning rate; with a constant schedule after warm-up the model
   after e epochs is the model an e-epoch run would give, exactly so when the micro-batches of an
   epoch fill whole optimiser steps).
4. **Metrics** (as `run_eval.py` / `run_mia.py` of the official code): macro perplexity over
   chunks exp(-mean_i mean_t log p) and next-token accuracy; Min-K% Prob scores (k in
   `MINK_KS`) of forget chunks (members) vs the first as-many approximate chunks (non-members):
   AUC folded to >= 0.5, balanced accuracy and TPR at 5% FPR (`mia_summary`).

The frozen original model that KL-regularised methods read is a `MemoizedReference`: its
outputs are computed once per chunk and kept in memory (bounded) across the runs of a process.
Everything returns values; the on-disk cache (`lib.cache`) holds checkpoints, evaluations,
labels and run results.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib import cache as store
from lib import methods as method_registry
from lib import metrics, models, runner
from lib.batches import Row, anchored_batches, n_micro_batches
from lib.data.corpora import DOMAINS, GENERAL, PretrainCorpora, build_corpora
from lib.data.probes import real_world_probes
from lib.data.schema import canonical_hash
from lib.data.unlearn_hub import HUB_DOMAINS, UNLEARN_HUB_ID, load_unlearn_dataset
from lib.evaluate import TokenCounter, score_answers, score_texts
from lib.methods import UnlearnContext, UnlearnData
from lib.methods.losses import ce_mean, forward_logits
from lib.methods.pretrained import adversarial_labels, adversarial_stream
from lib.metrics import mia
from lib.specs import ModelSpec, TrainSpec, spec_key, to_dict
from lib.train import TrainResult, attach_lora, merge_lora, seed_everything, train

logger = logging.getLogger(__name__)

DATA_SOURCES = ("local", "hub")
SPLITS = ("forget", "approximate", "retain")
#: What a model is scored on, per domain, plus the general evaluation mix.
EVAL_SETS = ("forget", "approximate", "retain", "general")
#: Min-K% fractions of the official MIA (`run_mia.py`).
MINK_KS = (0.3, 0.4, 0.5, 0.6, 1.0)
#: TPR is read at FPR below this (the code's `fpr < .05`; its label says 0.1%).
MIA_FPR = 0.05
#: Streams of the original model's adversarial labels: intended alignment / the code's.
ADVERSARIAL_STREAMS = {official: adversarial_stream(official) for official in (False, True)}

#: Published pre-training token counts of base models (for the cost of full retraining).
_SMOLLM2 = (
    "SmolLM2 model cards (huggingface.co/HuggingFaceTB/SmolLM2-{size}); Allal et al. 2025, "
    "arXiv 2502.02737"
)
PRETRAINING_TOKENS: dict[str, tuple[float, str]] = {
    models.EMBEDDED: (2e12, _SMOLLM2.format(size="135M") + ": 2 trillion tokens"),
    "HuggingFaceTB/SmolLM2-135M": (2e12, _SMOLLM2.format(size="135M") + ": 2 trillion tokens"),
    "HuggingFaceTB/SmolLM2-135M-Instruct": (
        2e12,
        _SMOLLM2.format(size="135M") + ": 2 trillion tokens",
    ),
    "HuggingFaceTB/SmolLM2-360M": (4e12, _SMOLLM2.format(size="360M") + ": 4 trillion tokens"),
    "HuggingFaceTB/SmolLM2-360M-Instruct": (
        4e12,
        _SMOLLM2.format(size="360M") + ": 4 trillion tokens",
    ),
    "HuggingFaceTB/SmolLM2-1.7B": (11e12, _SMOLLM2.format(size="1.7B") + ": 11 trillion tokens"),
    "HuggingFaceTB/SmolLM2-1.7B-Instruct": (
        11e12,
        _SMOLLM2.format(size="1.7B") + ": 11 trillion tokens",
    ),
    "01-ai/Yi-6B": (3.1e12, "Yi technical report (Young et al. 2024, arXiv 2403.04652): 3.1T"),
}


# --------------------------------------------------------------------------- specs
def _check_int(owner: str, name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{owner}.{name} must be an integer >= {low}, got {value!r}")


@dataclass(frozen=True)
class CorpusSpec:
    """Which documents, and how they are cut into chunks."""

    source: str = "local"  # local (stdlib code, pydoc prose, biographies) | hub (the paper's)
    domains: tuple[str, ...] = DOMAINS  # local: code | prose | bio; hub: arxiv | github
    n_forget: int = 6  # documents per domain to forget
    n_approximate: int = 6  # documents per domain never trained (the MIA's non-members)
    n_retain: int = 8  # in-distribution retain documents per domain
    n_general_retain: int = 12  # general retain documents (all domains mixed)
    n_general_eval: int = 12  # general evaluation documents (never trained)
    max_chars: int = 900  # local: longest document; hub: documents are cut to this many chars
    min_chars: int = 500  # local: shortest document kept (hub: unused)
    seed: int = 0  # seed of the local corpora's shuffles and generated authors
    chunk_tokens: int = 256  # tokens per chunk (the paper: 4096)
    min_chunk_tokens: int = 5  # shorter chunks are dropped (the code: 5)
    hub_path: str = UNLEARN_HUB_ID  # hub id or local folder of the paper's data

    def __post_init__(self) -> None:
        if self.source not in DATA_SOURCES:
            raise ValueError(
                f"CorpusSpec.source must be one of {DATA_SOURCES}, got {self.source!r}"
            )
        allowed = DOMAINS if self.source == "local" else HUB_DOMAINS
        domains = tuple(self.domains)
        if not domains or len(set(domains)) != len(domains) or not set(domains) <= set(allowed):
            raise ValueError(
                f"domains of the {self.source} corpora must be distinct names from {allowed}, "
                f"got {domains!r}"
            )
        _check_int("CorpusSpec", "chunk_tokens", self.chunk_tokens, 8)
        _check_int("CorpusSpec", "min_chunk_tokens", self.min_chunk_tokens, 2)
        if self.min_chunk_tokens > self.chunk_tokens:
            raise ValueError("CorpusSpec.min_chunk_tokens must be <= chunk_tokens")
        for name in ("n_forget", "n_approximate", "n_retain", "n_general_eval"):
            _check_int("CorpusSpec", name, getattr(self, name), 1)
        _check_int("CorpusSpec", "n_general_retain", self.n_general_retain, 0)


@dataclass(frozen=True)
class PretrainSpec:
    """Continued pre-training of a base model: the shared mixture, then the final slice."""

    model: ModelSpec
    corpus: CorpusSpec
    shared: TrainSpec  # recipe of the shared phase (epochs = passes over the retain mixture)
    final: TrainSpec  # recipe of the final slice (epochs = passes over forget + retain)
    continued: bool = True  # False: native mode, the target is the base model (no retrained)

    def __post_init__(self) -> None:
        for label, train_spec in (("shared", self.shared), ("final", self.final)):
            if train_spec.max_length < self.corpus.chunk_tokens:
                raise ValueError(
                    f"PretrainSpec.{label}.max_length ({train_spec.max_length}) must be >= "
                    f"corpus.chunk_tokens ({self.corpus.chunk_tokens})"
                )

    def shared_key(self) -> str:
        return spec_key(
            {"kind": "pt-shared", "model": self.model, "corpus": self.corpus, "train": self.shared}
        )

    def final_key(self, with_forget: bool) -> str:
        """Key of the target (`with_forget=True`) or of the retrained model."""
        if not self.continued:
            if not with_forget:
                raise ValueError("native mode (continued=False) has no retrained model")
            return base_key(self.model)
        return spec_key(
            {
                "kind": "pt-final",
                "shared": self.shared_key(),
                "train": self.final,
                "forget": with_forget,
            }
        )


def base_key(model: ModelSpec) -> str:
    return spec_key({"kind": "base", "model": model})


@dataclass(frozen=True)
class EvalSpec:
    """How a model is scored."""

    batch_size: int = 8  # chunks per forward pass (batched by length)
    n_retain: int = 6  # retain chunks scored per domain (the first ones)
    n_general: int = 12  # general evaluation chunks scored (the first ones)
    n_probes: int = 20  # real-world probes (answer probability; 0 = none)

    def __post_init__(self) -> None:
        _check_int("EvalSpec", "batch_size", self.batch_size, 1)
        _check_int("EvalSpec", "n_retain", self.n_retain, 1)
        _check_int("EvalSpec", "n_general", self.n_general, 1)
        _check_int("EvalSpec", "n_probes", self.n_probes, 0)


@dataclass(frozen=True)
class UnlearnRunSpec:
    """Unlearn one domain's forget chunks from the target with one method, then score."""

    pretrain: PretrainSpec
    domain: str
    method: str  # registry name
    train: TrainSpec  # the unlearning recipe (max_length >= corpus.chunk_tokens)
    evaluation: EvalSpec = field(default_factory=EvalSpec)
    sets: tuple[str, ...] = EVAL_SETS  # scored after unlearning (subset of EVAL_SETS)
    eval_epochs: tuple[int, ...] = ()  # also score forget + general after these epochs
    hparams: tuple[tuple[str, Any], ...] = ()  # overrides of the method's defaults

    def __post_init__(self) -> None:
        if self.domain not in self.pretrain.corpus.domains:
            raise ValueError(
                f"domain {self.domain!r} is not in the corpora; allowed: "
                f"{self.pretrain.corpus.domains}"
            )
        unknown = set(self.sets) - set(EVAL_SETS)
        if unknown or not self.sets:
            raise ValueError(f"sets must be a non-empty subset of {EVAL_SETS}, got {self.sets}")
        if self.train.max_length < self.pretrain.corpus.chunk_tokens:
            raise ValueError(
                f"train.max_length ({self.train.max_length}) must be >= chunk_tokens "
                f"({self.pretrain.corpus.chunk_tokens})"
            )
        if self.eval_epochs:
            if any(not isinstance(e, int) or e < 1 for e in self.eval_epochs):
                raise ValueError(f"eval_epochs must be integers >= 1, got {self.eval_epochs}")
            if max(self.eval_epochs) != self.train.epochs:
                raise ValueError(
                    f"the run's epochs ({self.train.epochs}) must equal the last of eval_epochs "
                    f"{self.eval_epochs}"
                )

    @property
    def hparams_dict(self) -> dict[str, Any]:
        return dict(self.hparams)


# --------------------------------------------------------------------------- chunks
@cache
def tokenizer_of(name: str) -> PreTrainedTokenizerBase:
    return models.load_tokenizer(name)


def _cut_points(tokenizer: PreTrainedTokenizerBase, text: str, starts: list[int]) -> set[int]:
    """Token indices where a chunk may start: where the tokenizer's pre-tokenizer starts a new
    piece (BPE never merges across pieces, so a chunk cut there re-tokenises to exactly its
    tokens). Every token start when the tokenizer has no such pre-tokenizer."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    pre = getattr(backend, "pre_tokenizer", None) if backend is not None else None
    if pre is None:
        return set(range(len(starts)))
    piece_starts = {start for _, (start, _) in pre.pre_tokenize_str(text)}
    return {i for i, s in enumerate(starts) if s in piece_starts}


def chunk_document(
    tokenizer: PreTrainedTokenizerBase, text: str, chunk_tokens: int, min_tokens: int = 5
) -> list[tuple[str, int]]:
    """Cut a document into chunks of at most `chunk_tokens` tokens: (chunk text, tokens).

    As the official code's chunking, but each cut is moved back to the nearest token that
    starts a pre-tokenizer piece (within the second half of the window; a hard cut otherwise),
    so that every chunk, as text, tokenises back to exactly its tokens. Chunks with fewer than
    `min_tokens` tokens are dropped (the code: 5).
    """
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    starts = [o[0] for o in offsets]
    allowed = _cut_points(tokenizer, text, starts)
    chunks: list[tuple[str, int]] = []
    begin = 0
    while begin < len(ids):
        end = min(len(ids), begin + chunk_tokens)
        if end < len(ids):
            floor = begin + max(1, chunk_tokens // 2)
            candidates = [i for i in range(end, floor - 1, -1) if i in allowed]
            end = candidates[0] if candidates else end
        stop = starts[end] if end < len(ids) else len(text)
        if end - begin >= min_tokens:
            chunks.append((text[starts[begin] : stop], end - begin))
        begin = end
    return chunks


@cache
def corpora(spec: CorpusSpec) -> PretrainCorpora:
    """The documents of `spec` (built or loaded once per process)."""
    sizes = {
        "n_forget": spec.n_forget,
        "n_approximate": spec.n_approximate,
        "n_retain": spec.n_retain,
        "n_general_retain": spec.n_general_retain,
        "n_general_eval": spec.n_general_eval,
    }
    if spec.source == "local":
        return build_corpora(
            spec.domains,
            **sizes,
            max_chars=spec.max_chars,
            min_chars=spec.min_chars,
            seed=spec.seed,
        )
    return load_unlearn_dataset(spec.domains, spec.hub_path, **sizes, max_chars=spec.max_chars)


@cache
def chunks(spec: CorpusSpec, tokenizer_name: str) -> dict[tuple[str, str], tuple[Row, ...]]:
    """(domain, split) -> chunk rows {text, doc_id, domain, split, chunk, n_tokens}, in order
    (documents in corpus order, chunks in document order)."""
    tokenizer = tokenizer_of(tokenizer_name)
    docs = corpora(spec)
    out: dict[tuple[str, str], tuple[Row, ...]] = {}
    for domain, split in docs.split_names:
        rows = []
        for doc in docs.split(domain, split).to_list():
            pieces = chunk_document(
                tokenizer, doc["text"], spec.chunk_tokens, spec.min_chunk_tokens
            )
            for k, (text, n) in enumerate(pieces):
                rows.append(
                    {
                        "text": text,
                        "doc_id": doc["id"],
                        "domain": doc["domain"],
                        "split": split,
                        "chunk": k,
                        "n_tokens": n,
                    }
                )
        if not rows and len(docs.split(domain, split)):
            raise ValueError(f"{domain}/{split} has no chunk of >= {spec.min_chunk_tokens} tokens")
        out[(domain, split)] = tuple(rows)
    return out


def split_hashes(spec: CorpusSpec, tokenizer_name: str) -> dict[str, str]:
    """ "<domain>/<split>" -> content hash of its chunks (and of the documents behind them)."""
    docs = corpora(spec).split_hashes()
    return {
        f"{d}/{s}": canonical_hash(
            {"documents": docs[f"{d}/{s}"], "chunks": [r["text"] for r in rows]}
        )
        for (d, s), rows in chunks(spec, tokenizer_name).items()
    }


def phase_rows(spec: PretrainSpec, phase: str) -> list[Row]:
    """Training rows of a continued-pre-training phase.

    - "shared": the general retain mix + every domain's retain chunks;
    - "target": the final slice = every domain's forget chunks + retain chunks;
    - "retrained": the final slice without the forget chunks (= every domain's retain chunks).
    """
    rows = chunks(spec.corpus, spec.model.name)
    retain = [r for d in spec.corpus.domains for r in rows[(d, "retain")]]
    if phase == "shared":
        return list(rows.get((GENERAL, "retain"), ())) + retain
    if phase == "target":
        return [r for d in spec.corpus.domains for r in rows[(d, "forget")]] + retain
    if phase == "retrained":
        return retain
    raise ValueError(f"phase must be 'shared', 'target' or 'retrained', got {phase!r}")


def eval_rows(
    spec: PretrainSpec, domain: str, evaluation: EvalSpec, sets: Sequence[str] = EVAL_SETS
) -> dict[str, list[Row]]:
    """Rows scored per set: forget chunks; the first as-many approximate chunks (the official
    MIA's non-members); the first `n_retain` retain chunks; the first `n_general` general
    evaluation chunks."""
    rows = chunks(spec.corpus, spec.model.name)
    forget = list(rows[(domain, "forget")])
    picked = {
        "forget": forget,
        "approximate": list(rows[(domain, "approximate")][: len(forget)]),
        "retain": list(rows[(domain, "retain")][: evaluation.n_retain]),
        "general": list(rows[(GENERAL, "evaluation")][: evaluation.n_general]),
    }
    return {name: picked[name] for name in sets}


# --------------------------------------------------------------------------- checkpoints
def load_base(model: ModelSpec) -> PreTrainedModel:
    loaded, _ = models.load_model(model.name, model.dtype, model.device)
    return loaded


def load_folder(folder: Path, model: ModelSpec) -> PreTrainedModel:
    """A fresh copy of a stored checkpoint. The last two checkpoints read stay in memory, so
    the many runs that start from the target copy it instead of reading it (and its
    tokenizer) from disk every time."""
    return copy.deepcopy(_pristine(str(folder), model.dtype, model.device))


@lru_cache(maxsize=2)
def _pristine(folder: str, dtype: str, device: str) -> PreTrainedModel:
    loaded, _ = models.load_model(folder, dtype, device)
    return loaded


def train_language_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[Row],
    spec: TrainSpec,
    desc: str,
) -> tuple[PreTrainedModel, TrainResult]:
    """Plain language-model training (token-mean CE) on raw-text rows: (trained model, what
    it did and cost). LoRA adapters, if the spec asks for them, are merged."""
    seed_everything(spec.seed)
    if spec.lora is not None:
        model = attach_lora(model, spec.lora)
    device = next(model.parameters()).device

    def loss_fn(trained: PreTrainedModel, micro: dict) -> tuple:
        batch = micro["train"].to(device)
        return ce_mean(forward_logits(trained, batch), batch.labels), {}, batch.n_tokens, 0

    result = train(
        model,
        anchored_batches(tokenizer, {"train": list(rows)}, spec, "train"),
        n_micro_batches(len(rows), spec),
        loss_fn,
        spec,
        desc=desc,
    )
    if result.diverged:
        raise RuntimeError(f"{desc} diverged: {result.message}")
    return merge_lora(model), result


def _phase(
    spec: PretrainSpec,
    key: str,
    start: Callable[[], PreTrainedModel],
    rows: Sequence[Row],
    train_spec: TrainSpec,
    desc: str,
) -> Path:
    def build(folder: Path) -> None:
        tokenizer = tokenizer_of(spec.model.name)
        logger.info("%s: %d chunks x %g epochs", desc, len(rows), train_spec.epochs)
        model, result = train_language_model(start(), tokenizer, rows, train_spec, desc)
        models.save_checkpoint(model, tokenizer, folder)
        record = {**result.as_dict(), "n_params": models.n_parameters(model), "log": result.log}
        store.atomic_write_json(folder / "train.json", record)

    return store.cached_folder("checkpoints", key, build, spec={"key": key, **to_dict(spec)})


def shared_checkpoint(spec: PretrainSpec) -> Path:
    """The base model after the shared mixture (cached)."""
    return _phase(
        spec,
        spec.shared_key(),
        lambda: load_base(spec.model),
        phase_rows(spec, "shared"),
        spec.shared,
        "continued pre-training: shared mixture",
    )


def final_checkpoint(spec: PretrainSpec, with_forget: bool) -> Path:
    """The target (`with_forget=True`) or the retrained model: the final slice with or without
    the forget chunks, from the same shared checkpoint (cached)."""
    if not spec.continued:
        raise ValueError("native mode (continued=False) trains no checkpoint")
    shared = shared_checkpoint(spec)
    return _phase(
        spec,
        spec.final_key(with_forget),
        lambda: load_folder(shared, spec.model),
        phase_rows(spec, "target" if with_forget else "retrained"),
        spec.final,
        f"continued pre-training: final slice {'with' if with_forget else 'without'} forget",
    )


def load_target(spec: PretrainSpec) -> PreTrainedModel:
    if not spec.continued:
        return load_base(spec.model)
    return load_folder(final_checkpoint(spec, True), spec.model)


def load_retrained(spec: PretrainSpec) -> PreTrainedModel:
    return load_folder(final_checkpoint(spec, False), spec.model)


def train_record(folder: Path) -> dict[str, Any]:
    """What a continued-pre-training phase did and cost (tokens, seconds, n_params, log)."""
    return json.loads((Path(folder) / "train.json").read_text())


# --------------------------------------------------------------------------- scoring
@dataclass
class SetScores:
    """Per-chunk teacher-forced statistics of one set: `logprobs[i]` the natural-log
    probability of each scored token of chunk i, `correct[i]` whether the argmax prediction was
    that token, `doc_ids[i]` the document the chunk comes from (the bootstrap's unit)."""

    logprobs: list[np.ndarray]
    correct: list[np.ndarray]
    doc_ids: list[str]

    def subset(self, n: int) -> SetScores:
        """The first `n` chunks."""
        return SetScores(self.logprobs[:n], self.correct[:n], self.doc_ids[:n])


@dataclass
class ModelScores:
    """Scores of one model: `sets["<domain>/<set>"]` (general: "general"), the real-world
    probes' mean answer NLL (nats/token; empty when none), and the tokens scored."""

    sets: dict[str, SetScores]
    probe_nll: np.ndarray
    eval_tokens: int = 0


def score_rows(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[Row],
    max_length: int,
    batch_size: int,
    counter: TokenCounter | None = None,
) -> SetScores:
    """Per-chunk log-probs and accuracy (`lib.evaluate.score_texts`, batched by length)."""
    scores = score_texts(
        model,
        tokenizer,
        [r["text"] for r in rows],
        batch_size,
        counter=counter,
        max_length=max_length,
    )
    return SetScores(
        [lp.astype(np.float32) for lp in scores.logprobs],
        [c.astype(bool) for c in scores.correct],
        [r["doc_id"] for r in rows],
    )


def probe_nll(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, n: int, batch_size: int
) -> np.ndarray:
    """Mean answer NLL (nats/token) of the first `n` real-world probes (utility)."""
    if n == 0:
        return np.zeros(0)
    probes = real_world_probes()[:n]
    scores = score_answers(
        model,
        tokenizer,
        [p.question for p in probes],
        [p.answer for p in probes],
        batch_size=batch_size,
    )
    return scores.avg_nll


def score_model(
    model: PreTrainedModel,
    spec: PretrainSpec,
    evaluation: EvalSpec,
    domains: Sequence[str],
    sets: Sequence[str] = EVAL_SETS,
    probes: bool = True,
) -> ModelScores:
    """Score a loaded model on `sets` of `domains` (general once) and the probes (uncached)."""
    tokenizer = tokenizer_of(spec.model.name)
    counter = TokenCounter()
    out: dict[str, SetScores] = {}
    for domain in domains:
        for name, rows in eval_rows(spec, domain, evaluation, sets).items():
            key = "general" if name == "general" else f"{domain}/{name}"
            if key not in out:
                out[key] = score_rows(
                    model,
                    tokenizer,
                    rows,
                    spec.corpus.chunk_tokens,
                    evaluation.batch_size,
                    counter,
                )
    nll = probe_nll(model, tokenizer, evaluation.n_probes if probes else 0, evaluation.batch_size)
    return ModelScores(out, nll, counter.tokens)


def stored_model_scores(spec: PretrainSpec, which: str, evaluation: EvalSpec) -> ModelScores:
    """Scores of the base, target or retrained model on every domain (cached)."""
    loaders = {
        "base": (base_key(spec.model), lambda: load_base(spec.model)),
        "target": (spec.final_key(True), lambda: load_target(spec)),
        "retrained": (
            spec.final_key(False) if spec.continued else "",
            lambda: load_retrained(spec),
        ),
    }
    if which not in loaders:
        raise ValueError(f"which must be one of {sorted(loaders)}, got {which!r}")
    model_key, load = loaders[which]
    key = spec_key(
        {"kind": "pt-scores", "model": model_key, "corpus": spec.corpus, "evaluation": evaluation}
    )
    return store.cached(
        "evals", key, lambda: score_model(load(), spec, evaluation, spec.corpus.domains)
    )


# --------------------------------------------------------------------------- metrics (pure)
def macro_ppl(logprobs: Sequence[np.ndarray]) -> float:
    """exp(-mean over chunks of the mean token log-prob): the code's macro perplexity.
    Lower = the model finds the text more likely."""
    if not len(logprobs):
        return float("nan")
    return float(np.exp(-np.mean([np.mean(lp) for lp in logprobs])))


def next_token_accuracy(correct: Sequence[np.ndarray]) -> float:
    """100 x mean over chunks of the fraction of tokens the argmax predicts (percent)."""
    if not len(correct):
        return float("nan")
    return float(100.0 * np.mean([np.mean(c) for c in correct]))


def mink_scores(logprobs: Sequence[np.ndarray], k: float) -> np.ndarray:
    """Loss-like Min-K% scores per chunk: -mean of its lowest floor(k n) token log-probs
    (at least one). Higher = looks less like a training member."""
    return mia.scores("min_k", list(logprobs), k=k)


def mia_summary(member: np.ndarray, nonmember: np.ndarray, fpr: float = MIA_FPR) -> dict:
    """Membership inference of loss-like scores, as the official code reports it.

    `auc`: ROC AUC folded to >= 0.5 (0.5 = members and non-members indistinguishable, 1 =
    perfectly separated either way); `auc_raw`: before folding (> 0.5: members have lower
    loss, the usual direction; < 0.5: members look *less* likely, e.g. after over-unlearning);
    `balanced_accuracy`: max over thresholds of 1 - (FPR + FNR) / 2; `tpr_at_fpr`: the highest
    TPR at FPR < `fpr`. The last two are read in the direction of the folded AUC. (The code
    builds its ROC with -score as the member score, the reversed direction, folds only the AUC
    and so reports the reversed detector's accuracy and TPR; here all three agree.)
    """
    raw = mia.mia_auc(member, nonmember)
    sign = 1.0 if raw >= 0.5 else -1.0
    fprs, tprs, _ = mia.roc(sign * np.asarray(member), sign * np.asarray(nonmember))
    below = tprs[fprs < fpr]
    return {
        "auc": max(raw, 1.0 - raw),
        "auc_raw": raw,
        "balanced_accuracy": float(np.max(1.0 - (fprs + (1.0 - tprs)) / 2.0)),
        "tpr_at_fpr": float(below.max()) if below.size else 0.0,
    }


def set_metrics(sets: Mapping[str, SetScores], ks: Sequence[float] = MINK_KS) -> dict[str, float]:
    """`<set>_ppl`, `<set>_acc` for every set given, and, when both forget and approximate
    are there, `mink_auc_<k>`, `mink_auc_raw_<k>`, `mink_bacc_<k>`, `mink_tpr5_<k>`."""
    out: dict[str, float] = {}
    for name, scores in sets.items():
        short = name.split("/")[-1]
        out[f"{short}_ppl"] = macro_ppl(scores.logprobs)
        out[f"{short}_acc"] = next_token_accuracy(scores.correct)
    forget = next((s for n, s in sets.items() if n.endswith("forget")), None)
    approx = next((s for n, s in sets.items() if n.endswith("approximate")), None)
    if forget is not None and approx is not None:
        for k in ks:
            summary = mia_summary(mink_scores(forget.logprobs, k), mink_scores(approx.logprobs, k))
            out[f"mink_auc_{k:g}"] = summary["auc"]
            out[f"mink_auc_raw_{k:g}"] = summary["auc_raw"]
            out[f"mink_bacc_{k:g}"] = summary["balanced_accuracy"]
            out[f"mink_tpr5_{k:g}"] = summary["tpr_at_fpr"]
    return out


# --------------------------------------------------------------------------- reference memo
class _Store:
    """LRU of reference outputs per row, bounded in bytes, shared by a process's runs."""

    def __init__(self) -> None:
        self.items: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple) -> torch.Tensor | None:
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
            self.hits += 1
        return value

    def put(self, key: tuple, value: torch.Tensor, max_bytes: int) -> None:
        size = value.numel() * value.element_size()
        if size > max_bytes:
            return
        self.items[key] = value
        self.bytes += size
        while self.bytes > max_bytes:
            _, dropped = self.items.popitem(last=False)
            self.bytes -= dropped.numel() * dropped.element_size()

    def clear(self) -> None:
        self.items.clear()
        self.bytes = self.hits = self.misses = 0


REFERENCE_STORE = _Store()


class MemoizedReference:
    """The frozen original model as a callable whose outputs are computed once per row.

    A call with a batch returns `SimpleNamespace(logits=...)` as the model would; each row's
    logits (in the dtype the forward produced, so reuse is exact) are kept in
    `REFERENCE_STORE` under (model key, compute dtype, the row's ids and mask), across runs,
    up to `max_bytes` in total (least recently used first out). The model is loaded on the
    first miss only. Full-vocabulary outputs are too large for the disk cache (a 4096-token
    chunk of a 49k vocabulary is 0.4 GB in bf16), so they live in memory.
    """

    def __init__(self, key: str, load: Callable[[], PreTrainedModel], max_bytes: int) -> None:
        self.key, self._load, self.max_bytes = key, load, int(max_bytes)
        self._model: PreTrainedModel | None = None

    def eval(self) -> MemoizedReference:  # the interface methods expect of a reference
        return self

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        return iter(())  # nothing to train or freeze

    def _forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self._model is None:
            self._model = self._load().eval()
            for p in self._model.parameters():
                p.requires_grad_(False)
        with torch.no_grad():
            out = self._model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        return out.logits

    def __call__(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_: Any
    ) -> SimpleNamespace:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        dtype = str(torch.get_autocast_dtype(input_ids.device.type)) + str(
            torch.is_autocast_enabled(input_ids.device.type)
        )
        keys = [
            (
                self.key,
                dtype,
                input_ids[i].cpu().numpy().tobytes(),
                attention_mask[i].cpu().numpy().tobytes(),
            )
            for i in range(input_ids.shape[0])
        ]
        found = [REFERENCE_STORE.get(k) for k in keys]
        missing = [i for i, v in enumerate(found) if v is None]
        if missing:
            REFERENCE_STORE.misses += len(missing)
            fresh = self._forward(input_ids[missing], attention_mask[missing])
            for j, i in enumerate(missing):
                found[i] = fresh[j]
                REFERENCE_STORE.put(keys[i], fresh[j].detach().clone(), self.max_bytes)
        return SimpleNamespace(logits=torch.stack(found))


# --------------------------------------------------------------------------- requests
class LazyStreams(Mapping):
    """Streams of an unlearning request, each built on first access (e.g. labels that need a
    forward pass of the original model) and kept."""

    def __init__(self, builders: Mapping[str, Callable[[], Sequence[Row]]]) -> None:
        self._builders = dict(builders)
        self._built: dict[str, Sequence[Row]] = {}

    def __getitem__(self, name: str) -> Sequence[Row]:
        if name not in self._builders:
            raise KeyError(name)
        if name not in self._built:
            self._built[name] = self._builders[name]()
        return self._built[name]

    def __contains__(self, name: object) -> bool:  # without building the stream
        return name in self._builders

    def __iter__(self) -> Iterator[str]:
        return iter(self._builders)

    def __len__(self) -> int:
        return len(self._builders)


def adversarial_rows(
    spec: PretrainSpec, domain: str, max_length: int, official_off_by_one: bool
) -> list[Row]:
    """The target's adversarial labels of a domain's forget chunks, as rows {labels} (cached:
    one forward pass of the target per forget set and alignment)."""
    forget = list(chunks(spec.corpus, spec.model.name)[(domain, "forget")])
    key = spec_key(
        {
            "kind": "pt-adversarial",
            "target": spec.final_key(True),
            "chunks": canonical_hash([r["text"] for r in forget]),
            "max_length": max_length,
            "official": official_off_by_one,
        }
    )

    def compute() -> list[np.ndarray]:
        return adversarial_labels(
            load_target(spec),
            tokenizer_of(spec.model.name),
            forget,
            max_length,
            official_off_by_one,
        )

    return [{"labels": labels} for labels in store.cached("labels", key, compute)]


def request(
    spec: PretrainSpec, domain: str, retain_set: str | None, max_length: int
) -> UnlearnData:
    """The unlearning request of one domain: `forget`, `retain` (in-distribution, or the
    general retain mix when `retain_set == "general"`) and the lazily built adversarial-label
    streams."""
    rows = chunks(spec.corpus, spec.model.name)
    retain_key = (GENERAL, "retain") if retain_set == "general" else (domain, "retain")
    builders: dict[str, Callable[[], Sequence[Row]]] = {
        "forget": lambda: list(rows[(domain, "forget")]),
        "retain": lambda: list(rows.get(retain_key, ())),
    }
    for official, name in ADVERSARIAL_STREAMS.items():
        builders[name] = lambda official=official: adversarial_rows(
            spec, domain, max_length, official
        )
    return UnlearnData(LazyStreams(builders), (domain,))


# --------------------------------------------------------------------------- runs
@dataclass
class PretrainRun:
    """One unlearning run: final metrics, metrics after each evaluated epoch, per-chunk scores,
    cost and training log."""

    method: str
    domain: str
    seed: int
    lr: float
    epochs: float
    metrics: dict[str, float]
    points: list[dict[str, float]]
    scores: dict[str, SetScores]
    probe_nll: np.ndarray
    cost: dict[str, float]
    log: list[dict[str, float]] = field(default_factory=list)
    status: str = "ok"  # ok | diverged (the model kept its last finished step)
    message: str = ""

    def row(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "domain": self.domain,
            "seed": self.seed,
            "lr": self.lr,
            "epochs": self.epochs,
            **self.metrics,
            **self.cost,
            "status": self.status,
            "message": self.message,
        }

    def summary_line(self) -> str:
        m = self.metrics
        return (
            f"{self.method} on {self.domain} (lr {self.lr:g}, {self.epochs:g} ep) {self.status}: "
            f"forget PPL {m.get('forget_ppl', float('nan')):.3g}, general PPL "
            f"{m.get('general_ppl', float('nan')):.3g}, {self.cost.get('seconds', 0):.0f} s"
        )


#: Bytes of reference outputs kept in memory per process (see `MemoizedReference`).
REFERENCE_MEMORY_BYTES = 768 * 2**20


@runner.task(UnlearnRunSpec)
def run_unlearning(spec: UnlearnRunSpec) -> PretrainRun:
    """Unlearn (see the module docstring), score, meter."""
    method = method_registry.get(spec.method, **spec.hparams_dict)
    pretrain = spec.pretrain
    tokenizer = tokenizer_of(pretrain.model.name)
    data = request(
        pretrain, spec.domain, getattr(method, "retain_set", None), spec.train.max_length
    )
    grid_sets = ("forget", "general")
    points: list[dict[str, float]] = []
    last: dict[str, Any] = {}

    hook_seconds = [0.0]

    def on_epoch(model: PreTrainedModel, epoch: int) -> None:
        if epoch not in spec.eval_epochs:
            return
        hook_start = time.perf_counter()
        scores = score_model(model, pretrain, spec.evaluation, [spec.domain], grid_sets, False)
        points.append({"epoch": epoch, **set_metrics(scores.sets)})
        last.update(epoch=epoch, scores=scores)
        # Scoring along the trajectory is not unlearning cost: the training loop's clock runs
        # through the hook, so its time is taken out below.
        hook_seconds[0] += time.perf_counter() - hook_start

    target_key = pretrain.final_key(True)
    ctx = UnlearnContext(
        tokenizer=tokenizer,
        train=spec.train,
        load_reference=lambda: MemoizedReference(
            target_key, lambda: load_target(pretrain), REFERENCE_MEMORY_BYTES
        ),
        desc=f"unlearn {spec.method} ({spec.domain})",
        on_epoch=on_epoch if spec.eval_epochs else None,
    )
    seed_everything(spec.train.seed)
    model = load_target(pretrain)
    n_params = models.n_parameters(model)
    started = time.perf_counter()
    unlearned = method.unlearn(model, data, ctx)
    if unlearned.model is None:
        raise ValueError(f"{spec.method} returned no model; this benchmark scores one model")
    done = unlearned.train
    reached_end = last.get("epoch") == spec.train.epochs and not done.diverged
    if reached_end and set(spec.sets) <= set(grid_sets):
        final = last["scores"]  # the hook already scored the final weights
    else:
        final = score_model(unlearned.model, pretrain, spec.evaluation, [spec.domain], spec.sets)
    for e in spec.eval_epochs:  # epochs the run did not reach (diverged before)
        if e not in {p["epoch"] for p in points}:
            points.append({"epoch": e, "diverged": 1.0})
    flops = unlearned.flops
    if flops is None:
        flops = metrics.train_flops(n_params, done.train_tokens) + metrics.eval_flops(
            n_params, done.reference_tokens
        )
    cost = {
        "seconds": done.seconds - hook_seconds[0],
        "flops": flops,
        "steps": done.steps,
        "train_tokens": done.train_tokens,
        "reference_tokens": done.reference_tokens,
        "peak_memory_mb": done.peak_memory_mb,
        "wall_seconds": time.perf_counter() - started,
        "n_params": n_params,
    }
    return PretrainRun(
        method=spec.method,
        domain=spec.domain,
        seed=spec.train.seed,
        lr=spec.train.lr,
        epochs=spec.train.epochs,
        metrics={**set_metrics(final.sets), **_probe_metrics(final.probe_nll)},
        points=sorted(points, key=lambda p: p["epoch"]),
        scores=final.sets,
        probe_nll=final.probe_nll,
        cost=cost,
        log=done.log,
        status="diverged" if done.diverged else "ok",
        message=done.message,
    )


def _probe_metrics(nll: np.ndarray) -> dict[str, float]:
    """`probe_prob`: mean over probes of exp(-mean answer NLL) (higher = more utility)."""
    return {"probe_prob": float(np.mean(np.exp(-nll)))} if len(nll) else {}


def validate(
    methods: Sequence[str], hparams: Mapping[str, Mapping[str, Any]], model: ModelSpec
) -> None:
    """Every method name, hyperparameter and needed stream, checked before any work."""
    method_registry.validate(list(methods))
    unknown = set(hparams) - set(methods)
    if unknown:
        raise KeyError(f"hyperparameters given for methods not run: {sorted(unknown)}")
    n_layers = models.n_layers(model.name)
    offered = {"forget", "retain", *ADVERSARIAL_STREAMS.values()}
    for name in methods:
        method = method_registry.get(name, **hparams.get(name, {}))
        method.check(n_layers)
        missing = set(method.streams) - offered
        if missing:
            raise KeyError(
                f"{name} reads stream(s) {sorted(missing)} that pre-training data do not have; "
                f"offered: {sorted(offered)}"
            )


def pretraining_tokens(model_name: str, override: float | None = None) -> tuple[float, str]:
    """Published pre-training tokens of a base model and where the number comes from;
    (nan, reason) when unknown and no override is given."""
    if override is not None:
        if not override > 0:
            raise ValueError(f"pretraining tokens must be > 0, got {override!r}")
        return float(override), "given as a parameter"
    if model_name in PRETRAINING_TOKENS:
        return PRETRAINING_TOKENS[model_name]
    return float("nan"), f"unknown for {model_name!r} (known: {sorted(PRETRAINING_TOKENS)})"
