"""SISA fine-tuning (Bourtoule et al. 2021, "Machine Unlearning"): sharded, isolated, sliced,
aggregated training, whose unlearning retrains only the affected shard from the affected slice.

The bookkeeping (which example is in which shard and slice, what a deletion forces to be
retrained, the aggregation rules) is `lib.algorithms.sisa`; this module trains the models:

- the n training rows are permuted (seeded) into S shards of R slices (`SisaPartition`); shard s
  trains in R stages, stage r continuing from checkpoint r-1 (stage 0 from the base model) on the
  rows of slices 0..r for 2E/(R+1) epochs (Bourtoule et al. Sec. V-B: the sliced schedule then
  costs E epochs of the shard), and saves checkpoint r (`SisaEnsemble`);
- each stage is a deterministic function of its starting checkpoint, its rows and its seed
  (derived from (seed, shard, stage)); a fresh AdamW and learning-rate schedule start at every
  stage (a checkpoint holds the weights only). Retraining stage r after a deletion therefore gives
  exactly the model that training on the remaining rows from the start would give, and several
  deletions applied together give the same models as applying them one at a time (tested);
- LoRA adapters through peft by default (`ctx.train.lora`, or `LoraSpec()` when it is None),
  optionally on the top `lora_top_layers` decoder layers only (a shorter backward pass); full
  fine-tuning with `full_finetune=True`. Checkpoints hold the trained parameters only (the
  adapters, or every weight) in a temporary folder (`SisaEnsemble.checkpoint_bytes`: SISA's
  storage cost);
- inference: every non-empty shard's model scores the query; the label distributions are
  averaged (`aggregation="probabilities"`) or the shard predictions voted (`"vote"`).

Training rows: `{"prompt", "completion"}` pairs (the completion's tokens are the labels; no EOS
is added; prompts are left-padded so that only the last positions' logits are computed, the
vocabulary projection being most of a short sequence's cost), or the study's QA/text rows
(`lib.batches.encode_rows`).

Cost accounting: the FLOPs of (re)training are 6 N x tokens, the issue's convention for full
fine-tuning; with LoRA the backward pass skips frozen weights' gradients (and, with top-layer
adapters, the lower layers), so this overestimates LoRA's cost.

Full retraining on each deletion is the special case S = R = 1 (`Sisa(n_shards=1, n_slices=1)`):
every deletion retrains the single model from the base on the remaining rows.
"""

from __future__ import annotations

import copy
import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib import models
from lib.algorithms.sisa import (
    RetrainPlan,
    SisaPartition,
    average_probabilities,
    bourtoule_stage_epochs,
    majority_vote,
    normalize_label_logprobs,
)
from lib.batches import IGNORE, Row, encode_rows, epoch_orders, pad_id
from lib.methods import register
from lib.methods.base import Method, UnlearnContext, UnlearnData, Unlearned
from lib.methods.losses import ce_mean, forward_logits
from lib.specs import LoraSpec, TrainSpec
from lib.train import TrainResult, attach_lora, merge_lora, seed_everything, train

logger = logging.getLogger(__name__)

__all__ = ["AGGREGATIONS", "Sisa", "SisaEnsemble", "aggregate", "merge_results", "row_tokens"]

#: How shard models answer together.
AGGREGATIONS = ("probabilities", "vote")


# ----------------------------------------------------------------------------------- batches
@dataclass
class PairBatch:
    """Left-padded prompt + completion batch; the last `n_kept` positions' logits predict the
    completion tokens (`labels`, (B, n_kept), -100 elsewhere)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    labels: torch.Tensor

    @property
    def n_kept(self) -> int:
        return int(self.labels.shape[1])

    @property
    def n_tokens(self) -> int:
        return int(self.attention_mask.sum())

    def to(self, device: torch.device) -> PairBatch:
        return PairBatch(*(t.to(device) for t in self.__dict__.values()))


def encode_left(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    completions: Sequence[str],
    max_length: int,
) -> PairBatch:
    """Tokenise prompt and completion separately, concatenate, left-pad (the prompt's start is
    cut when longer than `max_length`; the completion is kept whole)."""
    seqs, n_completion = [], []
    for prompt, completion in zip(prompts, completions, strict=True):
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        c = tokenizer(completion, add_special_tokens=False)["input_ids"]
        if not c or not p:
            raise ValueError(f"empty prompt or completion: {prompt!r} -> {completion!r}")
        keep = max(1, max_length - len(c))
        seqs.append(p[-keep:] + c)
        n_completion.append(len(c))
    width = max(len(s) for s in seqs)
    n_kept = max(n_completion)
    input_ids = torch.full((len(seqs), width), pad_id(tokenizer), dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    labels = torch.full((len(seqs), n_kept), IGNORE, dtype=torch.long)
    for r, (s, n_c) in enumerate(zip(seqs, n_completion, strict=True)):
        input_ids[r, width - len(s) :] = torch.tensor(s, dtype=torch.long)
        mask[r, width - len(s) :] = 1
        # logits kept = positions width-n_kept-1 .. width-2; kept j predicts column width-n_kept+j
        labels[r, n_kept - n_c :] = torch.tensor(s[len(s) - n_c :], dtype=torch.long)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return PairBatch(input_ids, mask, positions, labels)


def _pair_loss(model: PreTrainedModel, batch: PairBatch) -> torch.Tensor:
    """Token-mean cross-entropy of the completions, from the last positions' logits only."""
    out = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        logits_to_keep=batch.n_kept + 1,
        use_cache=False,
    )
    logits = out.logits[:, :-1].float()  # the last position predicts nothing
    mask = batch.labels != IGNORE
    return F.cross_entropy(logits[mask], batch.labels[mask])


def _is_pair(row: Row) -> bool:
    return "prompt" in row and "completion" in row


def row_tokens(tokenizer: PreTrainedTokenizerBase, row: Row, max_length: int) -> int:
    """Tokens one pass over `row` trains on (prompt and completion, as the batches encode it)."""
    if _is_pair(row):
        c = len(tokenizer(row["completion"], add_special_tokens=False)["input_ids"])
        p = len(tokenizer(row["prompt"], add_special_tokens=False)["input_ids"])
        return min(p, max(1, max_length - c)) + c
    return encode_rows(tokenizer, [row], max_length).n_tokens


# ------------------------------------------------------------------------------------ shards
class SisaEnsemble:
    """The S shard models of a `SisaPartition`, trained stage by stage, with a checkpoint per
    (shard, stage) and retraining on deletion (module docstring).

    Args:
        base: the model every shard starts from (not modified; deep-copied per stage).
        tokenizer: its tokenizer.
        rows: the training rows (indices are positions in this list).
        partition: the shard/slice layout (its `stage_epochs` are the epochs of each stage).
        spec: optimisation (lr, batch size, max_length, seed; `epochs` is ignored: stages use
            the partition's); `spec.lora` = the adapters, None with `lora=None` = full weights.
        lora: adapters (None = full fine-tuning).
        lora_layers: decoder layers with adapters (None = all).
        desc: progress label.
    """

    def __init__(
        self,
        base: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        rows: Sequence[Row],
        partition: SisaPartition,
        spec: TrainSpec,
        lora: LoraSpec | None,
        lora_layers: Sequence[int] | None = None,
        desc: str = "sisa",
    ) -> None:
        if partition.n != len(rows):
            raise ValueError(f"the partition has {partition.n} rows, the data {len(rows)}")
        self.base, self.tokenizer, self.rows = base, tokenizer, list(rows)
        self.partition, self.spec, self.lora = partition, spec, lora
        self.lora_layers = None if lora_layers is None else list(lora_layers)
        self.desc = desc
        self.n_params = models.n_parameters(base)
        self._dir = tempfile.TemporaryDirectory(prefix="sisa-")
        self._trained: set[tuple[int, int]] = set()
        self.fitted = False

    # ------------------------------------------------------------------------------ training
    def stage_seed(self, shard: int, stage: int) -> int:
        """Seed of one stage: a function of (seed, shard, stage) only."""
        state = np.random.SeedSequence([self.spec.seed, shard, stage]).generate_state(1)
        return int(state[0])

    def _path(self, shard: int, stage: int) -> Path:
        return Path(self._dir.name) / f"shard{shard}-stage{stage}.safetensors"

    def _model_at(self, shard: int, stage: int) -> PreTrainedModel:
        """A trainable model holding checkpoint `stage` of `shard` (-1 = the base model)."""
        from safetensors.torch import load_file

        seed_everything(self.stage_seed(shard, max(stage + 1, 0)))  # adapter initialisation
        model = copy.deepcopy(self.base)
        if self.lora is not None:
            model = attach_lora(model, self.lora, self.lora_layers)
        else:
            for p in model.parameters():
                p.requires_grad_(True)
        if stage >= 0:
            state = load_file(str(self._path(shard, stage)))
            missing = set(state) - {n for n, _ in model.named_parameters()}
            if missing:
                raise KeyError(f"checkpoint parameters not in the model: {sorted(missing)[:3]}")
            model.load_state_dict(state, strict=False)
        return model

    def _save(self, model: PreTrainedModel, shard: int, stage: int) -> None:
        from safetensors.torch import save_file

        state = {
            n: p.detach().clone().contiguous()
            for n, p in model.named_parameters()
            if p.requires_grad
        }
        save_file(state, str(self._path(shard, stage)))
        self._trained.add((shard, stage))

    def _batches(self, rows: list[Row], spec: TrainSpec):
        order = epoch_orders(len(rows), spec.epochs, spec.seed)
        for start in range(0, len(order), spec.batch_size):
            chunk = [rows[i] for i in order[start : start + spec.batch_size]]
            if _is_pair(chunk[0]):
                yield encode_left(
                    self.tokenizer,
                    [r["prompt"] for r in chunk],
                    [r["completion"] for r in chunk],
                    spec.max_length,
                )
            else:
                yield encode_rows(self.tokenizer, chunk, spec.max_length)

    def _train_stage(self, shard: int, stage: int) -> TrainResult:
        """Train stage `stage` of `shard` from checkpoint stage-1 and save checkpoint `stage`."""
        members = self.partition.stage_members(shard, stage)
        epochs = float(self.partition.stage_epochs[stage])
        model = self._model_at(shard, stage - 1)
        if len(members) == 0 or epochs == 0:  # nothing to learn: the checkpoint carries over
            self._save(model, shard, stage)
            return TrainResult()
        spec = replace(self.spec, epochs=epochs, seed=self.stage_seed(shard, stage))
        rows = [self.rows[int(i)] for i in members]
        device = next(model.parameters()).device

        def loss_fn(trained: PreTrainedModel, micro: Any) -> tuple:
            batch = micro.to(device)
            if isinstance(batch, PairBatch):
                return _pair_loss(trained, batch), {}, batch.n_tokens, 0
            return ce_mean(forward_logits(trained, batch), batch.labels), {}, batch.n_tokens, 0

        n_micro = -(-len(epoch_orders(len(rows), epochs, spec.seed)) // spec.batch_size)
        result = train(
            model,
            self._batches(rows, spec),
            n_micro,
            loss_fn,
            spec,
            desc=f"{self.desc} shard {shard} stage {stage}",
        )
        if result.diverged:
            raise RuntimeError(
                f"{self.desc}: shard {shard} stage {stage} diverged: {result.message}"
            )
        self._save(model, shard, stage)
        return result

    def _train_from(self, shard: int, from_stage: int) -> TrainResult:
        total = TrainResult()
        for stage in range(from_stage, self.partition.n_slices):
            total = merge_results(total, self._train_stage(shard, stage))
        return total

    def fit(self) -> TrainResult:
        """Train every shard through every stage (the initial training; not unlearning)."""
        total = TrainResult()
        for shard in range(self.partition.n_shards):
            total = merge_results(total, self._train_from(shard, 0))
        self.fitted = True
        return total

    def delete(self, indices: int | Sequence[int]) -> tuple[list[RetrainPlan], TrainResult]:
        """Delete `indices` as one request: retrain each affected shard once, from its earliest
        affected slice. Returns the plans and what the retraining did (tokens, seconds)."""
        if not self.fitted:
            raise RuntimeError("call fit() first")
        plans = self.partition.delete(indices)
        total = TrainResult()
        for plan in plans:
            total = merge_results(total, self._train_from(plan.shard, plan.from_slice))
        return plans, total

    # ----------------------------------------------------------------------------- inference
    @property
    def live_shards(self) -> list[int]:
        """Shards with remaining rows (empty ones are left out of the aggregation)."""
        empty = set(self.partition.empty_shards)
        return [s for s in range(self.partition.n_shards) if s not in empty]

    def shard_model(self, shard: int) -> PreTrainedModel:
        """The final model of a shard (adapters merged), in eval mode."""
        if not self.fitted:
            raise RuntimeError("call fit() first")
        model = merge_lora(self._model_at(shard, self.partition.n_slices - 1))
        for p in model.parameters():
            p.requires_grad_(False)
        return model.eval()

    def models(self) -> list[PreTrainedModel]:
        """Every live shard's model (all in memory at once; `shard_scores` loads one at a time)."""
        return [self.shard_model(s) for s in self.live_shards]

    def shard_scores(self, score: Callable[[PreTrainedModel], np.ndarray]) -> np.ndarray:
        """`score(model)` of every live shard's model, stacked: (live shards, ...)."""
        out = []
        for shard in self.live_shards:
            model = self.shard_model(shard)
            out.append(np.asarray(score(model)))
            del model
        return np.stack(out)

    @property
    def checkpoint_bytes(self) -> int:
        """Disk held by the checkpoints (SISA's storage cost)."""
        return sum(p.stat().st_size for p in Path(self._dir.name).glob("*.safetensors"))


def merge_results(a: TrainResult, b: TrainResult) -> TrainResult:
    """Sum of two training runs' costs (steps, tokens, seconds; peak memory = the max)."""
    return TrainResult(
        steps=a.steps + b.steps,
        train_tokens=a.train_tokens + b.train_tokens,
        reference_tokens=a.reference_tokens + b.reference_tokens,
        seconds=a.seconds + b.seconds,
        peak_memory_mb=max(a.peak_memory_mb, b.peak_memory_mb),
        diverged=a.diverged or b.diverged,
        message=a.message or b.message,
        log=a.log + b.log,
    )


def aggregate(label_logprobs: np.ndarray, how: str) -> np.ndarray:
    """Predicted labels (m,) from the shards' label log-probabilities (S, m, C)."""
    if how not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {how!r}")
    lp = np.asarray(label_logprobs)
    if how == "vote":
        return majority_vote(lp.argmax(axis=2), n_labels=lp.shape[2])
    return average_probabilities(normalize_label_logprobs(lp))[1]


# ------------------------------------------------------------------------------------ method
@register
@dataclass(frozen=True)
class Sisa(Method):
    """SISA fine-tuning (module docstring): S shards x R slices, a checkpoint per slice,
    retraining of the affected shard from the affected slice. Defaults: 4 shards x 4 slices
    [U: the ERASE paper's SISA variants are unknown; Bourtoule et al. use up to 20 shards]."""

    n_shards: int = 4  # S: isolated shard models
    n_slices: int = 4  # R: slices (checkpoints) per shard
    aggregation: str = "probabilities"  # probabilities (mean label distribution) | vote
    full_finetune: bool = False  # False = LoRA adapters (peft), True = every weight
    lora_top_layers: int = 0  # adapters on the top N decoder layers only (0 = every layer)
    partition_seed: int = 0  # seed of the shard/slice permutation

    name: ClassVar[str] = "sisa"
    family: ClassVar[str] = "exact"
    citation: ClassVar[str] = "Bourtoule et al. 2021 (SISA); baseline of Muresanu et al. 2024"
    streams: ClassVar[tuple[str, ...]] = ("retain", "forget")

    def check(self, n_layers: int) -> None:
        for field_name in ("n_shards", "n_slices"):
            value = getattr(self, field_name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{field_name} must be an integer >= 1, got {value!r}")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")
        if not isinstance(self.lora_top_layers, int) or self.lora_top_layers < 0:
            raise ValueError(
                f"lora_top_layers must be an integer >= 0, got {self.lora_top_layers!r}"
            )
        if n_layers and self.lora_top_layers > n_layers:
            raise ValueError(
                f"lora_top_layers = {self.lora_top_layers} but the model has {n_layers} layers"
            )

    def lora_spec(self, spec: TrainSpec) -> LoraSpec | None:
        """The adapters: None for full fine-tuning, else the TrainSpec's or peft defaults."""
        return None if self.full_finetune else (spec.lora or LoraSpec())

    def partition(
        self, n_rows: int, epochs: float, lengths: Sequence[float] | np.ndarray | None = None
    ) -> SisaPartition:
        """The shard/slice layout of `n_rows` rows trained for `epochs` (per-stage epochs
        2E/(R+1)); `lengths` = tokens per row for token counts."""
        self.check(0)
        return SisaPartition(
            n_rows,
            self.n_shards,
            self.n_slices,
            seed=self.partition_seed,
            lengths=lengths,
            stage_epochs=bourtoule_stage_epochs(epochs, self.n_slices),
        )

    def ensemble(
        self,
        base: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        rows: Sequence[Row],
        spec: TrainSpec,
        desc: str = "",
    ) -> SisaEnsemble:
        """An untrained ensemble over `rows` (call `fit()`); `spec.epochs` = E."""
        n_layers = int(getattr(base.config, "num_hidden_layers", 0))
        self.check(n_layers)
        layers = None
        if self.lora_top_layers and not self.full_finetune:
            layers = list(range(n_layers - self.lora_top_layers, n_layers))
        lengths = [row_tokens(tokenizer, r, spec.max_length) for r in rows]
        return SisaEnsemble(
            base,
            tokenizer,
            rows,
            self.partition(len(rows), spec.epochs, lengths),
            spec,
            self.lora_spec(spec),
            layers,
            desc or self.name,
        )

    def unlearn(self, model: PreTrainedModel, data: UnlearnData, ctx: UnlearnContext) -> Unlearned:
        """Train the ensemble on D = retain + forget from `model` (not counted as unlearning),
        then delete the forget rows as one request (the retraining is counted: `train`, and
        `flops` = 6 N x tokens). Diagnostics: `shards_retrained`, `plans` (shard, from_slice,
        rows deleted), `checkpoint_bytes`, `initial_train_tokens`."""
        rows = [*data["retain"], *data["forget"]]
        doomed = list(range(len(data["retain"]), len(rows)))
        ensemble = self.ensemble(model, ctx.tokenizer, rows, ctx.train, ctx.desc)
        initial = ensemble.fit()
        plans, result = ensemble.delete(doomed) if doomed else ([], TrainResult())
        return Unlearned(
            ensemble=ensemble.models(),
            train=result,
            flops=6.0 * ensemble.n_params * result.train_tokens,
            diagnostics={
                "shards_retrained": len(plans),
                "plans": [
                    {"shard": p.shard, "from_slice": p.from_slice, "deleted": len(p.deleted)}
                    for p in plans
                ],
                "checkpoint_bytes": ensemble.checkpoint_bytes,
                "initial_train_tokens": initial.train_tokens,
            },
        )
