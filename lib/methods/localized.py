"""Saliency-masked unlearning (SalUn; Fan et al., ICLR 2024, "SalUn: Empowering Machine
Unlearning via Gradient-based Weight Saliency in Both Image Classification and Generation").

Localisation-informed: the weights that matter for the forget data are located first, and only
they are updated. Weight saliency is |gradient of the forget loss| per weight, taken once at the
start (one pass over the forget data); a binary mask keeps the top `keep_fraction` of weights;
training then updates masked-in weights only, and every other weight stays bit-identical.

Reference code: `OPTML-Group/Unlearn-Saliency`, `Classification/generate_mask.py` (commit
ac880a2): the forget loss is the negated cross-entropy, its gradients are summed over the forget
batches, the absolute values are ranked *globally* across all parameter tensors and the top
fraction is kept (ties by position). Another version of that file (commit 2b0a8a1) ranks
without the minus sign, which keeps the *least* salient weights, and takes optimiser steps
between the batches; we follow ac880a2, which matches the paper.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib import models, progress
from lib.batches import Row, encode_rows
from lib.methods import register
from lib.methods.base import GradientMethod, UnlearnContext, UnlearnData, Unlearned
from lib.methods.losses import ce_mean, forward_logits

logger = logging.getLogger(__name__)

SCOPES = ("global", "tensor")


# --------------------------------------------------------------------------- saliency


def saliency(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[Row],
    batch_size: int,
    max_length: int,
    desc: str = "saliency",
) -> tuple[dict[str, torch.Tensor], int]:
    """SalUn's weight saliency of every trainable parameter: |sum_b grad(-CE_mean(batch b))|.

    The forget rows are taken in order in batches of `batch_size` (the per-batch token mean,
    summed over batches, as the reference code); forward passes run in the model's compute
    dtype, gradients accumulate in float32. The model is left unchanged with no gradients.

    Returns (saliency by parameter name, tokens that went through forward+backward).
    """
    if not rows:
        raise ValueError("saliency needs at least one forget row")
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError("the model has no trainable parameters")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()  # as the reference code (no dropout in the measurement)
    for p in params.values():
        p.grad = None
    tokens = 0
    starts = range(0, len(rows), batch_size)
    for start in progress.iterate(starts, desc=desc, unit="batch"):
        batch = encode_rows(tokenizer, rows[start : start + batch_size], max_length).to(device)
        with models.autocast(model):
            loss = -ce_mean(forward_logits(model, batch), batch.labels)
        loss.backward()
        tokens += batch.n_tokens
    scores = {}
    for name, p in params.items():
        scores[name] = torch.zeros_like(p) if p.grad is None else p.grad.abs_()
        p.grad = None
    model.train(was_training)
    return scores, tokens


_SAMPLE = 1 << 20  # entries sampled to bracket the threshold


def _count(bits: Sequence[torch.Tensor], at_least: int, strict: bool = False) -> int:
    """Entries >= `at_least` (> with `strict`) over all tensors (bit patterns)."""
    if strict:
        return sum(int((b > at_least).sum()) for b in bits)
    return sum(int((b >= at_least).sum()) for b in bits)


def _bracket(bits: Sequence[torch.Tensor], n: int, k: int) -> tuple[int, int, int] | None:
    """Values a <= b (bit patterns) with the k-th largest entry in [a, b], estimated from a
    seeded uniform sample (about `_SAMPLE` entries, each tensor in proportion to its size; a
    strided sample is biased by the per-column structure of LLM weights) and verified by
    counting, and the number of entries above b (None if the check fails)."""
    generator = torch.Generator().manual_seed(0)
    picks = []
    for b in bits:
        m_b = min(b.numel(), math.ceil(b.numel() * _SAMPLE / n))
        index = torch.randint(0, b.numel(), (m_b,), generator=generator).to(b.device)
        picks.append(b.view(-1)[index])
    sample = torch.cat(picks).sort(descending=True).values
    m = sample.numel()
    rank = k / n * m
    margin = 8.0 * math.sqrt(rank * (1 - k / n)) + 64  # many standard errors of the rank
    high = int(sample[max(0, int(rank - margin))])  # fewer than k entries above it
    low = int(sample[min(m - 1, int(rank + margin))])  # at least k entries >= it
    if _count(bits, low) < k:
        return None
    above = _count(bits, high, strict=True)
    return (low, high, above) if above < k else None


def _kth_largest(bits: Sequence[torch.Tensor], n: int, k: int) -> int:
    """Bit pattern of the k-th largest entry (1 <= k <= n) without concatenating everything:
    the entries of a verified bracket [a, b] are gathered and ranked; if the sampled bracket
    fails its check, bisection over the bit patterns (monotone for non-negative floats)."""
    bracket = _bracket(bits, n, k)
    if bracket is not None:
        a, b, above = bracket
        inside = torch.cat([x[(x >= a) & (x <= b)] for x in bits])
        rank = k - above  # rank of the k-th largest within [a, b]
        return int(torch.kthvalue(inside, inside.numel() - rank + 1).values)
    lo, hi = 0, max(int(x.max()) for x in bits if x.numel())  # _count(lo) = n >= k
    while lo < hi:  # largest v with at least k entries >= v
        mid = (lo + hi + 1) // 2
        if _count(bits, mid) >= k:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _top_k(scores: Sequence[torch.Tensor], k: int) -> list[torch.Tensor]:
    """Boolean masks over `scores` (non-negative) selecting exactly the k largest entries.

    Entries above the k-th largest value (`_kth_largest`) are kept, and entries equal to it
    are taken in position order (tensor order, then row-major) until k are kept.
    """
    bits = []
    for s in scores:
        b = s.detach().float().contiguous().view(torch.int32)
        if (b < 0).any():  # -0.0, the one non-negative float with the sign bit: rank it as 0.0
            b = b.clamp(min=0)
        bits.append(b)
    n = sum(b.numel() for b in bits)
    if k <= 0:
        return [torch.zeros_like(b, dtype=torch.bool) for b in bits]
    if k >= n:
        return [torch.ones_like(b, dtype=torch.bool) for b in bits]
    threshold = _kth_largest(bits, n, k)
    masks = [b > threshold for b in bits]
    need = k - sum(int(m.sum()) for m in masks)
    for mask, b in zip(masks, bits, strict=True):
        if need == 0:
            break
        ties = (b == threshold).flatten().nonzero().squeeze(1)[:need]
        mask.view(-1)[ties] = True
        need -= ties.numel()
    assert need == 0, "the threshold search lost entries"
    return masks


def top_fraction_masks(
    scores: Mapping[str, torch.Tensor], keep_fraction: float, scope: str = "global"
) -> dict[str, torch.Tensor]:
    """Boolean masks keeping the highest-scoring `keep_fraction` of entries.

    `scope="global"` (SalUn): one ranking over all tensors together, keeping
    round(keep_fraction * total entries); `scope="tensor"`: each tensor keeps
    round(keep_fraction * its entries). Ties at the threshold are broken by position, so the
    counts are exact and deterministic.
    """
    if not 0.0 <= keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction must be in [0, 1], got {keep_fraction}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    for name, s in scores.items():
        if not torch.isfinite(s).all() or (s < 0).any():
            raise ValueError(f"saliency of {name} must be finite and >= 0")
    names = list(scores)
    if scope == "tensor":
        return {
            name: _top_k([scores[name]], _rounded(keep_fraction * scores[name].numel()))[0]
            for name in names
        }
    total = sum(scores[name].numel() for name in names)
    masks = _top_k([scores[name] for name in names], _rounded(keep_fraction * total))
    return dict(zip(names, masks, strict=True))


def _rounded(x: float) -> int:
    return int(math.floor(x + 0.5))


# --------------------------------------------------------------------------- masked updates


def _mask_gradient(mask: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    return grad * mask


class MaskedUpdates:
    """Context manager: training inside it changes only the masked-in entries of parameters.

    - a parameter whose mask is all False is frozen (`requires_grad=False`), so the optimiser
      never holds it (no gradient memory, no weight decay);
    - a partly masked parameter gets a gradient hook that zeroes the gradient outside the
      mask at every backward pass, so AdamW's moments stay exactly zero there and its Adam
      update is exactly zero;
    - AdamW's *decoupled* weight decay (p <- p * (1 - lr * wd)) still shrinks those entries,
      whatever their gradient: with `restore_decayed=True` their original values are kept
      (one float per masked-out entry) and written back after every optimiser step (a torch
      optimiser step post-hook, active only inside the context and only for optimisers that
      hold these parameters). Masked-in entries are decayed as usual.

    Parameters not named in `masks` are left alone. On exit, hooks are removed and frozen
    parameters require gradients again. Not for FSDP (flattened parameters); DDP is fine.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        masks: Mapping[str, torch.Tensor],
        restore_decayed: bool = True,
    ) -> None:
        params = dict(model.named_parameters())
        unknown = sorted(set(masks) - set(params))
        if unknown:
            raise KeyError(f"masks name unknown parameters: {unknown[:5]}")
        for name, mask in masks.items():
            if mask.shape != params[name].shape or mask.dtype != torch.bool:
                shape = tuple(params[name].shape)
                raise ValueError(f"mask of {name} must be a bool tensor of shape {shape}")
        self._params = params
        self._masks = masks
        self._restore = restore_decayed
        self._frozen: list[torch.nn.Parameter] = []
        self._partial: list[tuple[torch.nn.Parameter, torch.Tensor]] = []
        self._kept: dict[int, torch.Tensor] = {}
        self._handles: list = []

    def __enter__(self) -> MaskedUpdates:
        for name, mask in self._masks.items():
            p = self._params[name]
            mask = mask.to(p.device)
            if not mask.any():
                if p.requires_grad:
                    p.requires_grad_(False)
                    self._frozen.append(p)
            elif not mask.all():
                self._handles.append(p.register_hook(functools.partial(_mask_gradient, mask)))
                self._partial.append((p, mask))
                if self._restore:
                    self._kept[id(p)] = p.detach()[~mask]
        if self._restore and self._partial:
            self._handles.append(register_optimizer_step_post_hook(self._after_step))
        return self

    @torch.no_grad()
    def _after_step(self, optimizer: torch.optim.Optimizer, *_: object) -> None:
        owned = {id(p) for group in optimizer.param_groups for p in group["params"]}
        for p, mask in self._partial:
            if id(p) in owned:
                p.masked_scatter_(~mask, self._kept[id(p)])

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        for p in self._frozen:
            p.requires_grad_(True)
        self._handles, self._frozen, self._partial, self._kept = [], [], [], {}


# --------------------------------------------------------------------------- the method


def _kind(name: str) -> str:
    """Coarse module kind of a parameter name, for the mask's location summary."""
    for kind, keys in (
        ("embedding", ("embed", "lm_head", "wte", "wpe")),
        ("attention", ("attn", "attention")),
        ("mlp", ("mlp", "ffn")),
        ("norm", ("norm", "ln_")),
    ):
        if any(key in name for key in keys):
            return kind
    return "other"


@register
@dataclass(frozen=True)
class SaliencyUnlearning(GradientMethod):
    """SalUn's weight-saliency mask applied to gradient-difference unlearning.

    1. Saliency: |grad of -CE_mean(forget)| summed over one in-order pass of the forget data
       (`saliency`); its forward+backward tokens and seconds are added to `Unlearned.train`.
    2. Mask: the top `keep_fraction` of weights, ranked over the whole model (`scope="global"`,
       SalUn) or within each tensor (`scope="tensor"`).
    3. Train with -gamma * CE_mean(forget) + alpha * CE_mean(retain), updating only masked-in
       weights (`MaskedUpdates`: weights outside the mask stay bit-identical, AdamW's weight
       decay included).

    Loss: SalUn's own classification recipe is random labels on forget + fine-tuning on retain;
    random labels have no counterpart for free-text answers, and pure gradient ascent without a
    retain term collapses utility in a few epochs, so the default is gradient difference
    (GA + retain NLL, open-unlearning's GradDiff weights gamma = alpha = 1), as weight-
    attribution unlearning for LLMs (WAGLE, Jia et al. 2024) pairs its masks with GradDiff and
    NPO; `alpha=0` is masked plain GA (the retain batch is still drawn and counted).

    `keep_fraction` 0.5: SalUn's default mask (50% sparse). Every parameter that requires
    gradients is ranked (embeddings, tied output layer, norms included, as the reference ranks
    all parameters). Not combinable with LoRA (the adapters would bypass the mask).

    `diagnostics`: `kept_fraction` (achieved, exact), `n_weights`, `saliency_seconds`,
    `saliency_tokens`, and `kept_by_kind` (fraction of each module kind's weights in the mask:
    embedding, attention, mlp, norm, other), which says where the forget data is localised.
    """

    keep_fraction: float = 0.5  # fraction of weights updated (SalUn: 50%)
    scope: str = "global"  # global (SalUn: one ranking over the model) | tensor
    gamma: float = 1.0  # weight of the forget (ascent) term
    alpha: float = 1.0  # weight of the retain NLL (0 = masked plain GA)

    name = "salun"
    family = "localization-informed"
    citation = "Fan et al. 2024 (SalUn weight saliency); Liu et al. 2022 (gradient difference)"
    sampled = ("retain",)
    grad_streams = ("forget", "retain")

    def check(self, n_layers: int) -> None:
        if not 0.0 < self.keep_fraction <= 1.0:
            raise ValueError(f"salun keep_fraction must be in (0, 1], got {self.keep_fraction}")
        if self.scope not in SCOPES:
            raise ValueError(f"salun scope must be one of {SCOPES}, got {self.scope!r}")

    def loss(self, model, batch, reference):
        forget = ce_mean(forward_logits(model, batch["forget"]), batch["forget"].labels)
        retain = ce_mean(forward_logits(model, batch["retain"]), batch["retain"].labels)
        loss = -self.gamma * forget + self.alpha * retain
        return loss, {"forget_nll": float(forget.detach()), "retain_nll": float(retain.detach())}

    def unlearn(self, model: PreTrainedModel, data: UnlearnData, ctx: UnlearnContext) -> Unlearned:
        self.check(0)
        spec = ctx.train
        if spec.lora is not None:
            raise ValueError(
                "salun masks the full weights; LoRA adapters would bypass the mask (set "
                "TrainSpec.lora to None for this method)"
            )
        rows = data["forget"]
        for name in self.streams:
            if len(data[name]) == 0:
                raise ValueError(f"salun needs a non-empty {name!r} stream")
        desc = ctx.desc or f"unlearn {self.name}"
        start = time.perf_counter()
        scores, tokens = saliency(
            model, ctx.tokenizer, rows, spec.batch_size, spec.max_length, f"{desc}: saliency"
        )
        masks = top_fraction_masks(scores, self.keep_fraction, self.scope)
        del scores
        seconds = time.perf_counter() - start
        with MaskedUpdates(model, masks, restore_decayed=spec.weight_decay > 0):
            out = super().unlearn(model, data, ctx)
        out.train.train_tokens += tokens
        out.train.seconds += seconds
        out.diagnostics = {**out.diagnostics, **_mask_summary(masks)}
        out.diagnostics.update(saliency_seconds=seconds, saliency_tokens=tokens)
        logger.info(
            "%s: saliency mask keeps %.3g of %d weights (%s), built in %.1f s",
            desc,
            out.diagnostics["kept_fraction"],
            out.diagnostics["n_weights"],
            self.scope,
            seconds,
        )
        return out


def _mask_summary(masks: Mapping[str, torch.Tensor]) -> dict:
    kept: dict[str, list[int]] = {}
    for name, mask in masks.items():
        counts = kept.setdefault(_kind(name), [0, 0])
        counts[0] += int(mask.sum())
        counts[1] += mask.numel()
    n_kept = sum(c[0] for c in kept.values())
    n = sum(c[1] for c in kept.values())
    return {
        "kept_fraction": n_kept / n if n else math.nan,
        "n_weights": n,
        "kept_by_kind": {kind: c[0] / c[1] for kind, c in sorted(kept.items())},
    }
