"""The seven unlearning methods of Yao et al. 2024, "Machine Unlearning of Pre-trained Large
Language Models" (arXiv 2402.15159), as the official code (`yaojin17/Unlearning_LLM`) computes
them. Rows are raw-text chunks (`{"text": ...}`, every token after the first labelled).

Every method minimises one form, the mean over the chunks b of a micro-batch of
`factor_b * loss_b`, with `loss_b` a per-chunk loss:

| name           | paper     | chunks                                   | factor  | loss_b      |
|----------------|-----------|------------------------------------------|---------|-------------|
| `pt_ga`        | GA        | forget                                   | -1      | CE_b        |
| `pt_rl`        | RL        | forget, labels drawn uniformly at random | +1      | CE_b        |
| `pt_as`        | AS        | forget, labels = adversarial samples     | +1      | CE_b        |
| `pt_ga_gd_in`  | GA+GD_in  | forget / in-distribution retain, 1:1     | -1 / +w | CE_b / CE_b |
| `pt_ga_kl_in`  | GA+KL_in  | forget / in-distribution retain, 1:1     | -1 / +w | CE_b / H_b  |
| `pt_ga_gd_gen` | GA+GD_gen | forget / general retain, 1:1             | -1 / +w | CE_b / CE_b |
| `pt_ga_kl_gen` | GA+KL_gen | forget / general retain, 1:1             | -1 / +w | CE_b / H_b  |

- CE_b: the chunk's mean next-token NLL over its labelled tokens (nats/token).
- **Per-chunk weighting.** The code runs one chunk per device and micro-batch (gradient
  accumulation mixes them), so every chunk's mean weighs the same whatever its length
  (`AscentPlusDescentTrainer` makes this explicit). Here the mean over the rows of a micro-batch
  keeps that weighting for any batch size. The study's `ga` takes the token mean over the whole
  micro-batch instead: the two agree only for batch_size 1 or equal-length chunks, so `pt_ga`
  is its own method.
- **Order.** GA, RL and AS walk the forget chunks in a fresh shuffled order each epoch (the HF
  Trainer's random sampler). The four retain methods walk f0, r0, f1, r1, ... in order (the
  code's interleaved `AdvSupervisedDataset` read by a `SequentialSampler`; `retain_ratio`
  retain chunks per forget chunk, the code's `positive_ratio` = 1). They therefore use only the
  first n_forget x ratio retain chunks, and one epoch has (1 + ratio) times more chunks.
- **Retain data.** The `_in` and `_gen` variants differ only in which rows the `retain` stream
  holds: the class attribute `retain_set` says which the benchmark supplies ("in-distribution":
  the forget domain's retain split; "general": the general retain mix; the code's `--general`).
- **The "KL" term** H_b = -sum_v p_orig(v) log p_theta(v) is the cross-entropy to the frozen
  original model (`compute_kl`, from kevinyaobytedance/llm_unlearn): KL(p_orig || p_theta) plus
  the entropy of p_orig, so the same gradient; the logged value is the cross-entropy, as the
  code. `kl_mask="labelled"` (default) averages it over the positions that predict a real token;
  `kl_mask="none"` reproduces the code: every position of a row padded to `max_length`,
  padding included (the code pads every chunk to `model_max_length`). log p via log_softmax
  (the code: log(softmax + 1e-12)).
- **RL labels** (`completely_random`): each labelled position gets a token drawn uniformly
  from `[0, tokenizer.vocab_size)`, except special tokens (pad/EOS/BOS/UNK), which keep their
  own id; drawn once per chunk (seeded by the run seed and the chunk index), as the code draws
  them once at tokenisation.
- **AS labels** (`top_k=1, rm_groundtruth=True`): the original model's top-1 prediction with the
  true token excluded (`adversarial_labels`). The code masks, at position j, the logit of the
  *input* token x_j, but logits at j predict x_{j+1}, and the HF loss shifts labels by one: the
  target at position j becomes the top-1 guess for x_{j+2} with x_{j+1} excluded. Default: the
  intended alignment (target of position j = argmax over v != x_{j+1} of logits_j).
  `official_off_by_one=True` reproduces the code, including `logits[..., -1] = -inf`, which
  removes the last *vocabulary id*. The labels need one forward pass of the original model over
  the forget chunks: a benchmark may precompute (and cache) them and pass them as the aligned
  stream `forget_adversarial` (or `forget_adversarial_official`; rows with `labels`); otherwise
  the method computes them from `UnlearnContext.load_reference()`. Either way the pass is
  counted as reference tokens.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib import models
from lib.batches import IGNORE, Batch, Row, encode_rows, epoch_orders, pad_id
from lib.methods import register
from lib.methods.base import (
    GradientMethod,
    UnlearnContext,
    UnlearnData,
    Unlearned,
    epoch_hook,
)
from lib.methods.losses import forward_logits, mean_nll, shifted
from lib.specs import TrainSpec
from lib.train import attach_lora, merge_lora, seed_everything, train

CITATION = "Yao et al. 2024 (arXiv 2402.15159); code yaojin17/Unlearning_LLM"
RETAIN_SETS = ("in-distribution", "general")
KL_MASKS = ("labelled", "none")
#: Registry name -> the paper's name (for tables and figures).
PAPER_NAMES = {
    "pt_ga": "GA",
    "pt_rl": "RL",
    "pt_as": "AS",
    "pt_ga_gd_in": "GA+GD_in",
    "pt_ga_kl_in": "GA+KL_in",
    "pt_ga_gd_gen": "GA+GD_gen",
    "pt_ga_kl_gen": "GA+KL_gen",
}
ADVERSARIAL_STREAM = "forget_adversarial"


def adversarial_stream(official_off_by_one: bool) -> str:
    """Name of the optional stream of precomputed AS labels for one alignment."""
    return ADVERSARIAL_STREAM + ("_official" if official_off_by_one else "")


# --------------------------------------------------------------------------- label builders
def token_ids(tokenizer: PreTrainedTokenizerBase, text: str, max_length: int) -> list[int]:
    """The ids `lib.batches.encode_rows` gives a raw-text row (no special tokens, cut)."""
    return tokenizer(text, add_special_tokens=False)["input_ids"][:max_length]


def random_labels(
    tokenizer: PreTrainedTokenizerBase, ids: Sequence[int], seed: int, index: int
) -> np.ndarray:
    """RL labels of one chunk (module docstring): uniform random tokens, special tokens kept,
    the first position unlabelled (nothing predicts it)."""
    special = {
        t
        for t in (
            tokenizer.pad_token_id,
            tokenizer.eos_token_id,
            tokenizer.bos_token_id,
            tokenizer.unk_token_id,
        )
        if t is not None
    }
    rng = np.random.default_rng([seed, index])
    drawn = rng.integers(0, tokenizer.vocab_size, size=len(ids))
    labels = np.array([t if t in special else int(d) for t, d in zip(ids, drawn, strict=True)])
    labels[:1] = IGNORE
    return labels.astype(np.int64)


def adversarial_from_logits(
    logits: torch.Tensor, ids: torch.Tensor, official_off_by_one: bool = False
) -> np.ndarray:
    """AS labels of one chunk from the original model's logits (n, V) over its ids (n,).

    Intended: label[j+1] = argmax_{v != ids[j+1]} logits[j] (label[0] unlabelled). Official
    code: label[j] = argmax_{v != ids[j], v != V-1} logits[j] (see the module docstring)."""
    n = ids.shape[0]
    work = logits.detach().float().clone()
    labels = np.full(n, IGNORE, dtype=np.int64)
    if official_off_by_one:
        work[:, -1] = float("-inf")
        work[torch.arange(n), ids] = float("-inf")
        labels[1:] = work.argmax(-1).cpu().numpy()[1:]  # label[0] is never used by the shift
        return labels
    if n > 1:
        work = work[: n - 1]
        work[torch.arange(n - 1), ids[1:]] = float("-inf")
        labels[1:] = work.argmax(-1).cpu().numpy()
    return labels


@torch.no_grad()
def adversarial_labels(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[Row],
    max_length: int,
    official_off_by_one: bool = False,
    batch_size: int = 4,
) -> list[np.ndarray]:
    """AS labels (one array per raw-text row, aligned with its ids) from `model`'s top-1
    predictions with the true token excluded; see the module docstring."""
    model.eval()
    device = next(model.parameters()).device
    out: list[np.ndarray] = []
    for start in range(0, len(rows), batch_size):
        batch = encode_rows(tokenizer, rows[start : start + batch_size], max_length).to(device)
        with models.autocast(model):
            logits = forward_logits(model, batch)
        lengths = batch.attention_mask.sum(-1).tolist()
        for row, n in enumerate(lengths):
            ids = batch.input_ids[row, :n]
            out.append(adversarial_from_logits(logits[row, :n], ids, official_off_by_one))
    return out


# --------------------------------------------------------------------------- losses
def reference_cross_entropy(
    logits: torch.Tensor, ref_logits: torch.Tensor, labels: torch.Tensor, mask: str = "labelled"
) -> torch.Tensor:
    """(B,) per-row H(p_ref, p_theta) = -sum_v p_ref log p_theta, averaged over positions.

    `mask="labelled"`: the positions t whose next token t+1 is labelled (the CE positions);
    `mask="none"`: all T positions of the row, padding included (the official code)."""
    if mask not in KL_MASKS:
        raise ValueError(f"kl_mask must be one of {KL_MASKS}, got {mask!r}")
    logp = F.log_softmax(logits.float(), dim=-1)
    p_ref = F.softmax(ref_logits.float(), dim=-1)
    per_position = -(p_ref * logp).sum(-1)  # (B, T)
    if mask == "none":
        return per_position.mean(dim=1)
    _, next_labels = shifted(logits, labels)
    keep = F.pad(next_labels != IGNORE, (0, 1), value=False)  # position t predicts t+1
    return (per_position * keep).sum(1) / keep.sum(1).clamp(min=1)


def pad_to(batch: Batch, width: int, pad: int) -> Batch:
    """Right-pad a batch to `width` columns (mask 0, label -100), as the code's chunking."""
    extra = width - batch.input_ids.shape[1]
    if extra <= 0:
        return batch
    return Batch(
        F.pad(batch.input_ids, (0, extra), value=pad),
        F.pad(batch.attention_mask, (0, extra), value=0),
        F.pad(batch.labels, (0, extra), value=IGNORE),
    )


# --------------------------------------------------------------------------- methods
@dataclass(frozen=True)
class PretrainedMethod(GradientMethod):
    """Shared machinery of the seven methods (module docstring): the schedule of chunks, the
    label replacement, the factor-weighted per-chunk mean, the training loop."""

    family = "gradient ascent"
    citation = CITATION
    grad_streams = ("forget",)
    forget_factor: ClassVar[float] = -1.0  # -1: ascent on the forget chunks; +1: descent
    retain_set: ClassVar[str | None] = None  # None | "in-distribution" | "general"

    @property
    def streams(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("forget", "retain") if self.retain_set else ("forget",)

    # -- what subclasses change
    def retain_losses(
        self, model: PreTrainedModel, batch: Batch, reference: Any
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """(B,) per-chunk losses of retain rows (descent methods: CE_b)."""
        ce = mean_nll(forward_logits(model, batch), batch.labels)
        return ce, {"retain_nll": float(ce.detach().mean())}

    def forget_labels(
        self, data: UnlearnData, ctx: UnlearnContext
    ) -> tuple[list[np.ndarray] | None, int]:
        """Replacement labels of the forget rows (None = the true tokens) and the reference
        tokens spent building them."""
        return None, 0

    @property
    def retain_weight_value(self) -> float:
        return float(getattr(self, "retain_weight", 1.0))

    # -- the loss
    def loss(
        self,
        model: PreTrainedModel,
        batch: Mapping[str, Batch],
        reference: Any,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """mean_b(factor_b * loss_b) over the rows of `batch["forget"]` and, for the retain
        methods, `batch["retain"]` (either may be absent from a micro-batch)."""
        total = None
        rows = 0
        logs: dict[str, float] = {}
        if "forget" in batch:
            forget = batch["forget"]
            ce = mean_nll(forward_logits(model, forget), forget.labels)
            total = self.forget_factor * ce.sum()
            rows += len(ce)
            logs["forget_nll"] = float(ce.detach().mean())
        if self.retain_set and "retain" in batch:
            losses, retain_logs = self.retain_losses(model, batch["retain"], reference)
            term = self.retain_weight_value * losses.sum()
            total = term if total is None else total + term
            rows += len(losses)
            logs.update(retain_logs)
        if total is None:
            raise KeyError(f"{self.name}: the micro-batch has none of the streams {self.streams}")
        return total / rows, logs

    # -- the schedule
    def schedule(self, data: UnlearnData, spec: TrainSpec) -> list[tuple[str, int]]:
        """(stream, row index) of every chunk in training order, over `spec.epochs`."""
        n_forget = len(data["forget"])
        if n_forget == 0:
            raise ValueError(f"{self.name}: the forget stream is empty")
        if not self.retain_set:
            return [("forget", i) for i in epoch_orders(n_forget, spec.epochs, spec.seed)]
        ratio = int(getattr(self, "retain_ratio", 1))
        n_retain = len(data["retain"])
        if n_retain < n_forget * ratio:
            raise ValueError(
                f"{self.name}: {n_forget} forget chunks need {n_forget * ratio} retain chunks "
                f"({ratio} each, in order, as the code), but the retain stream has {n_retain}"
            )
        one_epoch = []
        for i in range(n_forget):
            one_epoch.append(("forget", i))
            one_epoch.extend(("retain", i * ratio + j) for j in range(ratio))
        order = one_epoch * math.ceil(spec.epochs)
        return order[: max(1, int(round(spec.epochs * len(one_epoch))))]

    def _micro_batches(
        self,
        data: UnlearnData,
        order: list[tuple[str, int]],
        labels: list[np.ndarray] | None,
        ctx: UnlearnContext,
    ) -> Iterator[dict[str, Batch]]:
        spec = ctx.train
        full_width = getattr(self, "kl_mask", "labelled") == "none"
        for start in range(0, len(order), spec.batch_size):
            group = order[start : start + spec.batch_size]
            micro: dict[str, Batch] = {}
            for stream in self.streams:
                idx = [i for s, i in group if s == stream]
                if not idx:
                    continue
                batch = encode_rows(ctx.tokenizer, [data[stream][i] for i in idx], spec.max_length)
                if stream == "forget" and labels is not None:
                    for row, i in enumerate(idx):
                        width = int(batch.attention_mask[row].sum())
                        if len(labels[i]) < width:
                            raise ValueError(
                                f"{self.name}: replacement labels of forget row {i} cover "
                                f"{len(labels[i])} of its {width} tokens"
                            )
                        batch.labels[row, :width] = torch.as_tensor(labels[i][:width])
                if full_width:
                    batch = pad_to(batch, spec.max_length, pad_id(ctx.tokenizer))
                micro[stream] = batch
            yield micro

    def unlearn(self, model: PreTrainedModel, data: UnlearnData, ctx: UnlearnContext) -> Unlearned:
        spec = ctx.train
        order = self.schedule(data, spec)  # checks the data before any expensive work
        seed_everything(spec.seed)
        labels, label_tokens = self.forget_labels(data, ctx)
        reference = None
        if self.needs_reference:
            reference = ctx.load_reference()
            if isinstance(reference, torch.nn.Module):
                reference.eval()
                for p in reference.parameters():
                    p.requires_grad_(False)
        if spec.lora is not None:
            model = attach_lora(model, spec.lora)
        device = next(model.parameters()).device

        def loss_fn(trained: PreTrainedModel, micro: Mapping[str, Batch]):
            batch = {k: b.to(device) for k, b in micro.items()}
            loss, logs = self.loss(trained, batch, reference)
            n_train = sum(b.n_tokens for b in batch.values())
            n_ref = sum(batch[s].n_tokens for s in self.reference_streams if s in batch)
            return loss, logs, n_train, n_ref

        n_micro = math.ceil(len(order) / spec.batch_size)
        # One pass = every forget chunk once (with its retain chunks for the 1:1 methods).
        ratio = int(getattr(self, "retain_ratio", 1)) if self.retain_set else 0
        per_epoch = len(data["forget"]) * (1 + ratio)
        result = train(
            model,
            self._micro_batches(data, order, labels, ctx),
            n_micro,
            loss_fn,
            spec,
            desc=ctx.desc or f"unlearn {self.name}",
            on_step=epoch_hook(model, ctx.on_epoch, per_epoch, n_micro, spec),
        )
        result.reference_tokens += label_tokens
        model = merge_lora(model)
        for p in model.parameters():
            p.requires_grad_(True)
        return Unlearned(model=model, train=result)


@register
@dataclass(frozen=True)
class PretrainedGA(PretrainedMethod):
    """GA: minimise -CE_b on forget chunks, per-chunk weighted (`GradientAscentTrainer`)."""

    name = "pt_ga"


@register
@dataclass(frozen=True)
class RandomLabels(PretrainedMethod):
    """RL: fine-tune the forget chunks towards labels drawn uniformly from the vocabulary
    (`random_label --completely_random True`)."""

    name = "pt_rl"
    family = "relabeling"
    forget_factor = 1.0

    def forget_labels(self, data, ctx):
        rows = data["forget"]
        labels = [
            random_labels(
                ctx.tokenizer,
                token_ids(ctx.tokenizer, r["text"], ctx.train.max_length),
                ctx.train.seed,
                i,
            )
            for i, r in enumerate(rows)
        ]
        return labels, 0


@register
@dataclass(frozen=True)
class AdversarialSamples(PretrainedMethod):
    """AS: fine-tune the forget chunks towards the original model's top-1 prediction with the
    true token excluded (`random_label --top_k 1 --rm_groundtruth True`); see the module
    docstring for the code's off-by-one (`official_off_by_one=True` reproduces it)."""

    official_off_by_one: bool = False  # True: the code's alignment (and last-vocab-id removal)

    name = "pt_as"
    family = "relabeling"
    forget_factor = 1.0

    def forget_labels(self, data, ctx):
        rows = data["forget"]
        n_tokens = sum(len(token_ids(ctx.tokenizer, r["text"], ctx.train.max_length)) for r in rows)
        stream = adversarial_stream(self.official_off_by_one)
        if stream in data.streams:
            given = data[stream]
            if len(given) != len(rows):
                raise ValueError(f"{stream} has {len(given)} rows for {len(rows)} forget rows")
            return [np.asarray(r["labels"], dtype=np.int64) for r in given], n_tokens
        original = ctx.load_reference()
        labels = adversarial_labels(
            original, ctx.tokenizer, rows, ctx.train.max_length, self.official_off_by_one
        )
        del original
        return labels, n_tokens


@dataclass(frozen=True)
class _AscentPlusDescent(PretrainedMethod):
    """GA + GD: mean_b(factor_b * CE_b) over the interleaved chunks (`ascent_plus_descent`)."""

    retain_ratio: int = 1  # retain chunks after each forget chunk (code: positive_ratio)
    retain_weight: float = 1.0  # factor of the retain chunks (code: positive_factor)

    grad_streams = ("forget", "retain")

    def check(self, n_layers: int) -> None:
        if not isinstance(self.retain_ratio, int) or self.retain_ratio < 1:
            raise ValueError(f"retain_ratio must be an integer >= 1, got {self.retain_ratio!r}")
        if not self.retain_weight > 0:
            raise ValueError(f"retain_weight must be > 0, got {self.retain_weight!r}")


@dataclass(frozen=True)
class _AscentPlusKL(_AscentPlusDescent):
    """GA + KL: -CE_b on forget chunks, w * H_b(p_orig, p_theta) on retain chunks
    (`ascent_plus_kl_divergence`)."""

    kl_mask: str = "labelled"  # labelled | none (the code: every position, padding included)

    needs_reference = True
    reference_streams = ("retain",)

    def check(self, n_layers: int) -> None:
        super().check(n_layers)
        if self.kl_mask not in KL_MASKS:
            raise ValueError(f"kl_mask must be one of {KL_MASKS}, got {self.kl_mask!r}")

    def retain_losses(self, model, batch, reference):
        if reference is None:
            raise ValueError(f"{self.name} needs the frozen original model as reference")
        logits = forward_logits(model, batch)
        with torch.no_grad():
            ref_logits = forward_logits(reference, batch)
        h = reference_cross_entropy(logits, ref_logits, batch.labels, self.kl_mask)
        return h, {"retain_ce_to_reference": float(h.detach().mean())}


@register
@dataclass(frozen=True)
class GAGDIn(_AscentPlusDescent):
    """GA+GD_in: gradient descent on the forget domain's own retain split."""

    name = "pt_ga_gd_in"
    retain_set = "in-distribution"


@register
@dataclass(frozen=True)
class GAKLIn(_AscentPlusKL):
    """GA+KL_in: cross-entropy to the original model on the forget domain's retain split."""

    name = "pt_ga_kl_in"
    retain_set = "in-distribution"


@register
@dataclass(frozen=True)
class GAGDGen(_AscentPlusDescent):
    """GA+GD_gen: gradient descent on the general retain mix (`--general True`)."""

    name = "pt_ga_gd_gen"
    retain_set = "general"


@register
@dataclass(frozen=True)
class GAKLGen(_AscentPlusKL):
    """GA+KL_gen: cross-entropy to the original model on the general retain mix."""

    name = "pt_ga_kl_gen"
    retain_set = "general"
