"""Exact unlearning of in-context demonstrations: ERASE (Muresanu et al. 2024) and random k-shot.

The learning algorithm is "choose k training examples and prepend them to every query"; the LLM's
weights never change (black-box access), and unlearning a training example means updating the
choice so that it is distributed exactly as if the example had never been in the data.

**ERASE** (`erase`). Reconstruction of "Unlearnable Algorithms for In-context Learning" (arXiv
2402.00751; ICML 2025 as "Fast Exact Unlearning for In-Context Learning Data for LLMs"); no code
was released, see `../shared/research/seed_papers.md` section 3 for what is verified:

1. embed every training example: the demonstration text (input and label, `x ⊕ y`) through the
   LLM itself, mean-pooled hidden states of `layer` (`lib.evaluate.embed_texts`), or through
   another model (`encoder`) [U: the paper's embedding is unknown];
2. features: each embedding divided by its norm, then multiplied by a fixed Gaussian matrix
   (`projection_dim` columns, entries N(0, 1/projection_dim), seeded by `projection_seed`). Both
   steps act on one row at a time and never look at the data set, so deleting a row cannot change
   another row's features (which exactness needs; a data-dependent step such as centring would
   break it). The projection makes the certificate's cost independent of the encoder's width
   and lowers the re-clustering rate (fewer coordinates can cross a grid boundary) [our choice];
3. quantized k-means (`lib.algorithms.qkmeans.QuantizedKMeans`: k-means++ init, T Lloyd
   iterations with a random-phase epsilon-grid quantizer, momentum gamma, metadata kept);
4. one demonstration per non-empty cluster: the member nearest to its quantized centroid
   [U: the within-cluster choice], in cluster order (`ClusterDemonstrations`).

Deletion: the per-iteration invariance certificate; re-clustering from the first iteration whose
quantized centroids (or stopping decision) change, or from scratch when the row was a k-means++
init point; a deleted demonstration that leaves the clustering unchanged is replaced by the next
nearest member of its cluster. Exactness is proved and tested in `lib.algorithms.qkmeans`.

**Random k-shot** (`random_kshot`): k uniformly random distinct rows, resampled only when one of
them is deleted (`RandomDemonstrations`), also exact.

As unlearning methods (`unlearn`), both read the streams `retain` and `forget`: the data set the
selection was made from is D = retain + forget (in that order), and the forget rows are deleted
one request at a time, in order. A benchmark that follows a stream of deletions uses the stateful
`select(...)` instead (`lib.benchmarks.icl`). Rows are mappings; the demonstration text of a row
is its `demonstration` field when present (the benchmark renders it with the task's template),
else "Q: question\\nA: answer" for QA rows, else its `text`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib.algorithms.qkmeans import ClusterDemonstrations, QuantizedKMeans, RandomDemonstrations
from lib.batches import Row
from lib.methods import register
from lib.methods.base import Method, UnlearnContext, UnlearnData, Unlearned
from lib.train import TrainResult

__all__ = [
    "Erase",
    "RandomKShot",
    "SelectionDeletion",
    "demonstration_text",
]


@dataclass(frozen=True)
class SelectionDeletion:
    """What deleting one row did to a demonstration selection.

    `changed`: the selected rows changed; `reclustered`: the clustering had to be recomputed
    (ERASE only; False for random k-shot); `seconds`: wall time of the deletion; `flops`: its
    estimated floating-point operations (no LLM pass is involved).
    """

    changed: bool
    reclustered: bool
    seconds: float
    flops: float


class Selection:
    """A demonstration selection with exact deletion (common face of the two selectors)."""

    def __init__(self, selector: ClusterDemonstrations | RandomDemonstrations) -> None:
        self.selector = selector

    @property
    def indices(self) -> np.ndarray:
        """Selected rows in prompt order."""
        return self.selector.indices

    def delete(self, index: int) -> SelectionDeletion:
        """Delete row `index` of the data the selection was made from."""
        if isinstance(self.selector, ClusterDemonstrations):
            report, changed = self.selector.delete(index)
            return SelectionDeletion(changed, report.reclustered, report.seconds, report.flops)
        start = time.perf_counter()
        changed = self.selector.delete(index)
        # a refill is one draw (and a membership test over the k slots)
        return SelectionDeletion(
            changed, False, time.perf_counter() - start, float(len(self.indices))
        )


def demonstration_text(row: Row) -> str:
    """The text a row contributes as a demonstration (see the module docstring)."""
    if "demonstration" in row:
        return str(row["demonstration"])
    if "question" in row:
        return f"Q: {row['question']}\nA: {row['answer']}"
    if "text" in row:
        return str(row["text"])
    raise KeyError(f"a row needs 'demonstration', 'question'/'answer' or 'text'; got {sorted(row)}")


def _check_k(k: int) -> None:
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")


class _SelectionMethod(Method):
    """Shared parts of the in-context selection methods (streams, taxonomy, unlearn)."""

    family: ClassVar[str] = "exact"
    access: ClassVar[str] = "black-box"
    updates_weights: ClassVar[bool] = False
    streams: ClassVar[tuple[str, ...]] = ("retain", "forget")
    needs_embeddings: ClassVar[bool] = False

    def select(self, n_rows: int, seed: int, features: np.ndarray | None = None) -> Selection:
        raise NotImplementedError

    def features(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]
    ) -> np.ndarray | None:
        """What `select` clusters (None for methods that need no embedding)."""
        return None

    def unlearn(self, model: PreTrainedModel, data: UnlearnData, ctx: UnlearnContext) -> Unlearned:
        """Select from D = retain + forget, then delete the forget rows one request at a time.

        Returns the untouched model with `context` = the selected demonstrations (blank-line
        separated) and the deletions' cost (`flops`: clustering FLOPs only, no LLM pass;
        `train.seconds`: their wall time). Diagnostics: `demonstrations` (selected rows of
        D), `deletions`, `reclustered` (count), `recluster_rate`, `selection_changes`.
        """
        rows = [*data["retain"], *data["forget"]]
        doomed = list(range(len(data["retain"]), len(rows)))
        texts = [demonstration_text(r) for r in rows]
        selection = self.select(
            len(rows), ctx.train.seed, self.features(model, ctx.tokenizer, texts)
        )
        outcomes = [selection.delete(i) for i in doomed]
        reclustered = sum(o.reclustered for o in outcomes)
        return Unlearned(
            model=model,
            context="\n\n".join(texts[i] for i in selection.indices),
            train=TrainResult(seconds=float(sum(o.seconds for o in outcomes))),
            flops=float(sum(o.flops for o in outcomes)),
            diagnostics={
                "demonstrations": [int(i) for i in selection.indices],
                "deletions": len(outcomes),
                "reclustered": int(reclustered),
                "recluster_rate": reclustered / len(outcomes) if outcomes else 0.0,
                "selection_changes": int(sum(o.changed for o in outcomes)),
            },
        )


@register
@dataclass(frozen=True)
class Erase(_SelectionMethod):
    """ERASE: one demonstration per quantized k-means cluster, exactly unlearnable (module
    docstring). Defaults: k, T, gamma as the reference quantized k-means (`QKmeans(k, eps,
    iters=10, gamma=0.2)`); epsilon and the projection are our choices [U], in the units of the
    projected unit-norm embeddings (see `bench/erase.py` for the re-clustering rate vs epsilon).
    """

    k: int = 16  # clusters = demonstrations per prompt
    epsilon: float = 0.05  # quantization grid spacing (projected unit-norm embedding units)
    n_iter: int = 10  # T: maximum Lloyd iterations (the reference stops when the loss stalls)
    gamma: float = 0.2  # momentum: clusters under gamma * n / k lag towards their last centre
    projection_dim: int = 16  # columns of the fixed random projection (0 = none)
    projection_seed: int = 0  # seed of the projection matrix (fixed, not data-dependent)
    encoder: str = ""  # "" = the LLM itself; else a model name/hub id for lib.models.load_model
    layer: int = -1  # hidden-state layer that is mean-pooled (-1 = last)
    embed_batch: int = 32  # texts per embedding forward pass

    name: ClassVar[str] = "erase"
    citation: ClassVar[str] = "Muresanu et al. 2024 (ERASE); Ginart et al. 2019 (Q-k-means)"
    needs_embeddings: ClassVar[bool] = True

    def check(self, n_layers: int) -> None:
        _check_k(self.k)
        if not (np.isfinite(self.epsilon) and self.epsilon > 0):
            raise ValueError(f"epsilon must be a finite number > 0, got {self.epsilon!r}")
        if not isinstance(self.n_iter, int) or self.n_iter < 1:
            raise ValueError(f"n_iter must be an integer >= 1, got {self.n_iter!r}")
        if not self.gamma >= 0:
            raise ValueError(f"gamma must be >= 0, got {self.gamma!r}")
        if not isinstance(self.projection_dim, int) or self.projection_dim < 0:
            raise ValueError(f"projection_dim must be an integer >= 0, got {self.projection_dim!r}")
        if n_layers and not self.encoder and not -(n_layers + 1) <= self.layer <= n_layers:
            raise ValueError(f"layer must be in [{-(n_layers + 1)}, {n_layers}], got {self.layer}")

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        """Row-wise unit norm, then the fixed random projection (float64, n x projection_dim)."""
        X = np.asarray(embeddings, dtype=np.float64)
        if X.ndim != 2 or not np.isfinite(X).all():
            raise ValueError(f"embeddings must be a finite (n, d) array, got shape {X.shape}")
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        if (norms == 0).any():
            raise ValueError("an embedding is the zero vector (cannot be normalised)")
        X = X / norms
        if self.projection_dim == 0:
            return X
        rng = np.random.default_rng([self.projection_seed, X.shape[1], self.projection_dim])
        matrix = rng.normal(
            scale=1.0 / np.sqrt(self.projection_dim), size=X.shape[1:] + (self.projection_dim,)
        )
        return X @ matrix

    def embed(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]
    ) -> np.ndarray:
        """Raw embeddings of `texts` (the LLM's, or `encoder`'s when set)."""
        from lib import models
        from lib.evaluate import embed_texts

        if self.encoder:
            model, tokenizer = models.load_model(self.encoder)
        return embed_texts(model, tokenizer, texts, self.layer, self.embed_batch)

    def features(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]
    ) -> np.ndarray:
        return self.project(self.embed(model, tokenizer, texts))

    def select(self, n_rows: int, seed: int, features: np.ndarray | None = None) -> Selection:
        """Fit the clustering on `features` (n_rows x d, e.g. `project(embeddings)`)."""
        self.check(0)
        if features is None or len(features) != n_rows:
            raise ValueError(f"erase needs features for the {n_rows} rows (see `features`)")
        if self.k > n_rows:
            raise ValueError(f"k = {self.k} is larger than the data ({n_rows} rows)")
        kmeans = QuantizedKMeans(self.k, self.epsilon, self.n_iter, self.gamma, seed=seed)
        return Selection(ClusterDemonstrations(kmeans.fit(features)))


@register
@dataclass(frozen=True)
class RandomKShot(_SelectionMethod):
    """k uniformly random demonstrations, resampled only when one is deleted (exact baseline)."""

    k: int = 16  # demonstrations per prompt

    name: ClassVar[str] = "random_kshot"
    citation: ClassVar[str] = "Brown et al. 2020 (k-shot prompting); baseline of Muresanu et al."

    def check(self, n_layers: int) -> None:
        _check_k(self.k)

    def select(self, n_rows: int, seed: int, features: np.ndarray | None = None) -> Selection:
        self.check(0)
        if self.k > n_rows:
            raise ValueError(f"k = {self.k} is larger than the data ({n_rows} rows)")
        return Selection(RandomDemonstrations(n_rows, self.k, seed))
