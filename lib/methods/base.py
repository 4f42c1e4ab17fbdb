"""What every unlearning method is: hyperparameters (cited defaults), taxonomy tags, and one
operation, `unlearn(model, data, context) -> Unlearned`.

Most methods minimise a loss with AdamW: they subclass `GradientMethod`, declare the data
streams they read and define `loss`; its `unlearn` runs the study's one training loop. Methods
that are not a loss (retraining, in-context prompts, Newton steps, shard ensembles, example
selection) override `unlearn` itself. Nothing outside a method branches on its name.

The taxonomy tags follow Liu et al. 2024 ("Rethinking Machine Unlearning for LLMs"): family,
the data streams needed (retain data or not), whether a frozen reference model is needed,
white-box (weights) vs black-box (inputs only) access, and whether the weights change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib.batches import Batch, Row, anchored_batches, n_micro_batches
from lib.specs import TrainSpec
from lib.train import TrainResult, attach_lora, merge_lora, seed_everything, train

FAMILIES = (
    "gradient ascent",  # GA and its regularised variants
    "preference optimization",  # NPO, SimNPO, DPO: treat forget answers as dispreferred
    "relabeling",  # fine-tune towards alternative answers (IDK, random labels)
    "representation",  # localisation-informed: steer hidden states (RMU)
    "localization-informed",  # restrict updates to weights located as salient (SalUn masks)
    "weight arithmetic",  # edit weights by arithmetic on fine-tuning deltas (task vectors)
    "input-based",  # in-context: prompts, weights untouched
    "exact",  # retraining without the forget data (and sharded/selection variants)
    "influence functions / second order",  # Newton-style steps with an (inverse) Fisher/Hessian
    "retain fine-tuning",  # fine-tune on the retain data only (forgetting by interference)
)
ACCESS = ("white-box", "black-box")


@dataclass
class UnlearnData:
    """The data an unlearning request comes with.

    `streams`: named row sequences (`forget`, `retain`, `forget_idk` = the forget questions with
    "I don't know" answers, ... ; rows are QA pairs or raw text, see `lib.batches`);
    `subjects`: who or what is to be forgotten, for methods that name them in a prompt.
    """

    streams: Mapping[str, Sequence[Row]]
    subjects: tuple[str, ...] = ()

    def __getitem__(self, name: str) -> Sequence[Row]:
        if name not in self.streams:
            raise KeyError(f"this request has no stream {name!r}; it has {sorted(self.streams)}")
        return self.streams[name]


@dataclass
class Unlearned:
    """The outcome of `Method.unlearn`.

    `model`: the unlearned model (or the untouched one for input-based methods);
    `ensemble`: several models answering together (sharded training), when used instead;
    `context`: a prompt context every query must carry ('' for none);
    `train`: what the unlearning itself did and cost (steps, tokens, seconds, peak memory,
    per-step log, divergence);
    `flops`: the unlearning FLOPs when they are not 6N x trained tokens + 2N x reference tokens
    (None = derive them so);
    `source`: the cache key of a stored model when the result *is* that model (e.g. the
    benchmark's retrained oracle), so its evaluation can be reused;
    `diagnostics`: method-specific facts about the run (JSON-serialisable: numbers, strings,
    booleans, and lists/dicts of them), e.g. whether an objective converged; each method
    documents its keys. A method that did not converge sets `diagnostics["converged"] = False`
    (absent = not applicable).
    """

    model: PreTrainedModel | None = None
    ensemble: list[PreTrainedModel] = field(default_factory=list)
    context: str = ""
    train: TrainResult = field(default_factory=TrainResult)
    flops: float | None = None
    source: str = ""
    diagnostics: dict[str, Any] = field(default_factory=dict)


@dataclass
class UnlearnContext:
    """What the caller (a benchmark) provides to a method.

    `load_reference()` loads a fresh, frozen copy of the model unlearning starts from;
    `retrain(rows)` is the benchmark's own training recipe applied to `rows` from the base
    model (exact unlearning); `on_epoch(model, epoch)` is called by iterative methods after each
    completed pass over the forget data (the model is in eval mode during the call; e.g. to
    score a trajectory for hyperparameter selection); `desc` labels progress output.
    """

    tokenizer: PreTrainedTokenizerBase
    train: TrainSpec
    load_reference: Callable[[], PreTrainedModel]
    retrain: Callable[[Sequence[Row]], Unlearned] | None = None
    on_epoch: Callable[[PreTrainedModel, int], None] | None = None
    desc: str = ""


@dataclass(frozen=True)
class Method:
    """Base class: subclasses are frozen dataclasses whose fields are the hyperparameters."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    access: ClassVar[str] = "white-box"
    updates_weights: ClassVar[bool] = True  # taxonomy: does unlearning produce new weights?
    streams: ClassVar[tuple[str, ...]] = ("forget",)  # data streams the method reads
    needs_reference: ClassVar[bool] = False  # a frozen copy of the starting model

    @property
    def needs_retain(self) -> bool:
        """Taxonomy tag: does the method read retain data?"""
        return "retain" in self.streams

    def check(self, n_layers: int) -> None:
        """Validate hyperparameters against the model's depth before any expensive work."""

    def unlearn(self, model: PreTrainedModel, data: UnlearnData, ctx: UnlearnContext) -> Unlearned:
        """Unlearn `data` from `model` (which the method may modify in place)."""
        raise NotImplementedError(f"{type(self).__name__} does not define unlearn()")


@dataclass(frozen=True)
class GradientMethod(Method):
    """A method that minimises `loss` with the study's training loop.

    Micro-batches walk the `anchor` stream for `TrainSpec.epochs` passes; `aligned` streams
    contribute the same rows (e.g. `forget_idk`), `sampled` streams an equally sized random
    draw (e.g. `retain`). `grad_streams`/`reference_streams` name the streams that go through
    forward+backward / through the frozen reference, for the FLOP count.
    """

    anchor: ClassVar[str] = "forget"
    aligned: ClassVar[tuple[str, ...]] = ()
    sampled: ClassVar[tuple[str, ...]] = ()
    grad_streams: ClassVar[tuple[str, ...]] = ("forget",)
    reference_streams: ClassVar[tuple[str, ...]] = ()

    @property
    def streams(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.anchor, *self.aligned, *self.sampled)

    def loss(
        self,
        model: PreTrainedModel,
        batch: Mapping[str, Batch],
        reference: PreTrainedModel | None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss to *minimise* and a dict of floats to log."""
        raise NotImplementedError

    def prepare(self, model: PreTrainedModel, seed: int) -> None:
        """Hook called once before training (freeze parameters, draw control vectors...)."""

    def unlearn(self, model: PreTrainedModel, data: UnlearnData, ctx: UnlearnContext) -> Unlearned:
        spec = ctx.train
        reference = None
        if self.needs_reference:
            reference = ctx.load_reference().eval()
            for p in reference.parameters():
                p.requires_grad_(False)
        seed_everything(spec.seed)
        self.prepare(model, spec.seed)
        if spec.lora is not None:
            model = attach_lora(model, spec.lora)
        device = next(model.parameters()).device
        streams = {name: data[name] for name in self.streams}
        micro = anchored_batches(
            ctx.tokenizer, streams, spec, self.anchor, self.aligned, self.sampled
        )

        def loss_fn(trained: PreTrainedModel, micro_batch: Mapping[str, Batch]):
            batch = {k: b.to(device) for k, b in micro_batch.items()}
            loss, logs = self.loss(trained, batch, reference)
            n_train = sum(batch[s].n_tokens for s in self.grad_streams)
            n_ref = sum(batch[s].n_tokens for s in self.reference_streams)
            return loss, logs, n_train, n_ref

        n_rows = len(streams[self.anchor])
        n_micro = n_micro_batches(n_rows, spec)
        result = train(
            model,
            micro,
            n_micro,
            loss_fn,
            spec,
            desc=ctx.desc or f"unlearn {self.name}",
            on_step=epoch_hook(model, ctx.on_epoch, n_rows, n_micro, spec),
        )
        model = merge_lora(model)
        for p in model.parameters():
            p.requires_grad_(True)
        return Unlearned(model=model, train=result)


def epoch_hook(
    model: PreTrainedModel,
    on_epoch: Callable[[PreTrainedModel, int], None] | None,
    n_rows: int,
    n_micro: int,
    spec: TrainSpec,
) -> Callable[[int], None] | None:
    """An `on_step` that calls `on_epoch(model, e)` after the step that completes pass e."""
    if on_epoch is None:
        return None
    examples_per_step = spec.batch_size * spec.grad_accum
    total_steps = -(-n_micro // spec.grad_accum)
    done: set[int] = set()

    def hook(step: int) -> None:
        seen = min(step * examples_per_step, round(spec.epochs * n_rows))
        epoch = int(seen // n_rows) if step < total_steps else int(np.ceil(spec.epochs - 1e-9))
        if epoch >= 1 and epoch not in done:
            done.add(epoch)
            model.eval()
            on_epoch(model, epoch)

    return hook


def describe(cls: type[Method]) -> dict[str, Any]:
    """Taxonomy row of a method class (used by the registry's taxonomy table)."""
    instance = cls()
    return {
        "family": cls.family,
        "needs retain data": instance.needs_retain,
        "needs reference model": cls.needs_reference,
        "access": cls.access,
        "updates weights": cls.updates_weights,
    }
