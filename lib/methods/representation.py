"""Representation misdirection (RMU; Li et al. 2024, WMDP), with depth-aware options."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib import distributed, models
from lib.batches import IGNORE, Batch, Row, encode_rows
from lib.methods import register
from lib.methods.base import GradientMethod, UnlearnContext, UnlearnData, Unlearned
from lib.specs import TrainSpec

logger = logging.getLogger(__name__)


class _StopForward(Exception):
    """Raised by a hook once the wanted hidden state is captured (skips the upper layers)."""


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The list of decoder blocks of a causal LM (Llama-style `model.layers`, GPT-style `h`)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and name.split(".")[-1] in {"layers", "h"}:
            return module
    raise ValueError(f"cannot find the decoder layers of {type(model).__name__}")


def hidden_at(model: nn.Module, batch: Batch, layer: int) -> torch.Tensor:
    """Output of decoder block `layer` (B, T, d) in float32.

    Upper blocks are not computed (the forward stops once the state is captured), except in a
    multi-process run, where DDP needs every forward to finish.
    """
    stop_early = not distributed.active()
    layers = decoder_layers(model)
    if not 0 <= layer < len(layers):
        raise ValueError(f"layer must be in [0, {len(layers) - 1}], got {layer}")
    captured: dict[str, torch.Tensor] = {}

    def hook(_module, _inputs, output):
        captured["h"] = output[0] if isinstance(output, tuple) else output
        if stop_early:
            raise _StopForward

    handle = layers[layer].register_forward_hook(hook)
    try:
        model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False)
    except _StopForward:
        pass
    finally:
        handle.remove()
    return captured["h"].float()


MASKS = ("answer", "answer_ou", "none")
STEERING_MODES = ("absolute", "relative")
TRAINABLE = ("all", "wmdp")
#: RMU counts as converged when the forget MSE at the end of training is at most
#: (1 - CONVERGED_DROP) x its value at the start, i.e. it fell at least half-way towards zero.
CONVERGED_DROP = 0.5


def masked_mse(a: torch.Tensor, b: torch.Tensor, batch: Batch, mask: str) -> torch.Tensor:
    """Mean squared difference of hidden states, (B, T, d) each, reduced as `mask` says.

    With per-token e_bt = mean_d (a - b)^2, answer-token mask m_bt (positions whose label is
    scored), S_b = sum_t m_bt e_bt and n_b = sum_t m_bt:

    - `answer`: mean_b (S_b / n_b), each sequence's mean over its answer tokens, averaged over
      sequences: what open-unlearning's RMU code intends (its shape comments);
    - `answer_ou`: (mean_b S_b) x (mean_b 1 / n_b), what open-unlearning's
      `compute_activation_loss` actually computes (S of shape (B,) divided by n of shape (B, 1)
      broadcasts to a (B, B) matrix before the mean). It equals `answer` when every sequence
      has the same number of answer tokens, and differs on ragged batches;
    - `none`: mean over every position of the batch, padding included, as the WMDP reference
      code's plain `mse_loss`.

    n_b is clamped to >= 1 (a sequence without answer tokens contributes 0, not NaN).
    """
    per_token = ((a - b) ** 2).mean(dim=-1)  # (B, T)
    if mask == "none":
        return per_token.mean()
    if mask not in MASKS:
        raise ValueError(f"RMU mask must be one of {MASKS}, got {mask!r}")
    m = (batch.labels != IGNORE).float()
    total = (per_token * m).sum(dim=1)  # S_b
    count = m.sum(dim=1).clamp(min=1)  # n_b
    if mask == "answer_ou":
        return (total[None, :] / count[:, None]).mean()
    return (total / count).mean()


def token_mask(batch: Batch, mask: str) -> torch.Tensor:
    """(B, T) bool: the positions whose hidden states RMU's forget loss reads under `mask`
    (answer tokens; every real token for `none`, padding excluded)."""
    if mask == "none":
        return batch.attention_mask.bool()
    return batch.answer_mask


def layer_at_fraction(fraction: float, n_layers: int) -> int:
    """Decoder block at relative depth `fraction` = index / n_layers, rounded half up.

    WMDP's RMU on Zephyr-7B steers block 7 of 32 (fraction 7/32 = 0.21875); the same fraction
    gives block 7 of SmolLM2-135M's 30, and open-unlearning's block 7 of Llama-3.2-1B's 16 is
    7/16 = 0.4375.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"layer_fraction must be in [0, 1), got {fraction}")
    return min(n_layers - 1, int(math.floor(fraction * n_layers + 0.5)))


def _forward_batches(
    tokenizer: PreTrainedTokenizerBase, rows: Sequence[Row], spec: TrainSpec
) -> Iterator[Batch]:
    for start in range(0, len(rows), spec.batch_size):
        yield encode_rows(tokenizer, rows[start : start + spec.batch_size], spec.max_length)


def _hidden_states(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[Row],
    layer: int,
    spec: TrainSpec,
) -> Iterator[tuple[Batch, torch.Tensor]]:
    """(batch on the model's device, block `layer`'s output) for `rows` in order, in eval mode
    and the model's compute dtype (as training); the model's train/eval mode is restored."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        for batch in _forward_batches(tokenizer, rows, spec):
            batch = batch.to(device)
            with torch.no_grad(), models.autocast(model):
                yield batch, hidden_at(model, batch, layer)
    finally:
        model.train(was_training)


@torch.no_grad()
def activation_norm(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[Row],
    layer: int,
    spec: TrainSpec,
    mask: str = "answer",
) -> float:
    """Mean L2 norm of block `layer`'s output over the tokens `mask` selects (`token_mask`) of
    `rows`, computed in the model's compute dtype (as training), in batches of
    `spec.batch_size`."""
    total, count = 0.0, 0
    for batch, h in _hidden_states(model, tokenizer, rows, layer, spec):
        keep = token_mask(batch, mask)
        total += float(h.norm(dim=-1)[keep].double().sum())
        count += int(keep.sum())
    if count == 0:
        raise ValueError("no tokens to measure the activation norm on")
    return total / count


@register
@dataclass(frozen=True)
class RMU(GradientMethod):
    """Push layer-`layer` activations on forget data towards a random control vector c = s*u/|u|,
    keep them equal to the frozen target's on retain data:
    L = gamma * MSE(h(x_f), c) + alpha * MSE(h(x_r), h_ref(x_r)).

    Defaults: open-unlearning's TOFU config (layer 7, steering 2, gamma = alpha = 1, all
    parameters trainable). `trainable="wmdp"` updates only `mlp.down_proj` of layers
    layer-2..layer as the WMDP recipe (which also used steering 6.5, alpha 1200, lr 5e-5).
    Unlike open-unlearning, frozen parameters really get no gradients (it re-enabled them all).
    `mask` picks the MSE reduction (`masked_mse`: `answer`, `answer_ou` = open-unlearning's
    code on ragged batches, `none` = WMDP code).

    Depth-aware options (defaults keep the behaviour above):

    - `layer_fraction`: the steered block as a relative depth, index / n_layers
      (`layer_at_fraction`; WMDP's 7 of 32 = 0.21875). When given it replaces `layer`, which
      must then be left at its default.
    - `steering_mode="relative"`: |c| = steering x the mean L2 norm of the block's output on
      the forget tokens the loss reads, measured on the starting model before training
      (`activation_norm`), so models of different width and activation scale get comparable
      pushes (WMDP tunes the absolute coefficient per model, 6.5 in its released Zephyr-7B
      run; the adaptive RMU of Dang et al., AAAI 2025, scales it by each forget example's
      activation norm instead of the mean). `"absolute"`: |c| = steering. On SmolLM2-135M the
      mean norm at block 7 is ~125 (`bench/methods_probes.py`), so the absolute default
      |c| = 2 asks for near-zero activations rather than a push along a random direction.

    Convergence check: the forget MSE on the whole forget set is measured before and after
    training (same control vector, batches of the training batch size, in order); RMU counts as
    converged when it fell at least `CONVERGED_DROP` (50%) of the way to zero; a run that did
    not converge (or diverged) is marked so that rankings can leave it out. `diagnostics`: `layer`,
    `layer_fraction` (layer / n_layers), `activation_norm`, `steering_norm` (|c|),
    `forget_mse_start`, `forget_mse_end`, `forget_mse_drop` (1 - end / start) and `converged`;
    a run that did not converge also says so in `Unlearned.train.message`.
    """

    layer: int = 7  # decoder block whose output is steered
    steering: float = 2.0  # |c| (absolute) or |c| / mean activation norm (relative)
    gamma: float = 1.0  # weight of the forget MSE
    alpha: float = 1.0  # weight of the retain MSE
    trainable: str = "all"  # all | wmdp (down_proj of layers layer-2..layer)
    mask: str = "answer"  # answer (open-unlearning) | answer_ou (its code's form) | none (WMDP)
    layer_fraction: float | None = None  # relative depth index / n_layers; replaces `layer`
    steering_mode: str = "absolute"  # absolute | relative (x mean activation norm at the layer)
    _control: dict = field(default_factory=dict, compare=False, repr=False)

    name = "rmu"
    family = "representation"
    citation = "Li et al. 2024 (WMDP/RMU); open-unlearning RMU"
    needs_reference = True
    sampled = ("retain",)
    grad_streams = ("forget", "retain")
    reference_streams = ("retain",)

    def check(self, n_layers: int) -> None:
        if self.layer_fraction is not None:
            if self.layer != RMU.layer:
                raise ValueError(
                    f"give rmu either layer or layer_fraction, not both (layer={self.layer}, "
                    f"layer_fraction={self.layer_fraction})"
                )
            layer_at_fraction(self.layer_fraction, max(n_layers, 1))
        elif not 0 <= self.layer < n_layers:
            raise ValueError(
                f"rmu layer must be in [0, {n_layers - 1}] for this model, got {self.layer}"
            )
        if self.trainable not in TRAINABLE:
            raise ValueError(f"trainable must be one of {TRAINABLE}, got {self.trainable!r}")
        if self.mask not in MASKS:
            raise ValueError(f"mask must be one of {MASKS}, got {self.mask!r}")
        if self.steering_mode not in STEERING_MODES:
            raise ValueError(
                f"steering_mode must be one of {STEERING_MODES}, got {self.steering_mode!r}"
            )
        if not math.isfinite(self.steering) or self.steering < 0:
            raise ValueError(f"rmu steering must be a finite number >= 0, got {self.steering}")

    def resolve_layer(self, n_layers: int) -> int:
        """The steered block of a model with `n_layers` blocks (validated)."""
        self.check(n_layers)
        if self.layer_fraction is not None:
            return layer_at_fraction(self.layer_fraction, n_layers)
        return self.layer

    def prepare(self, model, seed: int) -> None:
        layers = decoder_layers(model)
        layer = self.resolve_layer(len(layers))
        scale = 1.0
        if self.steering_mode == "relative":
            if "activation_norm" not in self._control:
                raise ValueError(
                    "steering_mode='relative' needs the activation norm, measured by unlearn() "
                    "(or set _control['activation_norm'] first)"
                )
            scale = self._control["activation_norm"]
        width = layers[0].mlp.down_proj.out_features
        generator = torch.Generator().manual_seed(seed)
        u = torch.rand(width, generator=generator)
        self._control["layer"] = layer
        self._control["c"] = self.steering * scale * u / u.norm()
        if self.trainable == "wmdp":
            lo = max(0, layer - 2)
            wanted = re.compile(
                rf"layers\.({'|'.join(map(str, range(lo, layer + 1)))})"
                r"\.mlp\.down_proj\.weight$"
            )
            for name, param in model.named_parameters():
                param.requires_grad_(bool(wanted.search(name)))

    def loss(self, model, batch, reference):
        layer = self._control["layer"]
        control = self._control["c"].to(batch["forget"].input_ids.device)
        h_forget = hidden_at(model, batch["forget"], layer)
        forget = masked_mse(h_forget, control.expand_as(h_forget), batch["forget"], self.mask)
        h_retain = hidden_at(model, batch["retain"], layer)
        with torch.no_grad():
            h_ref = hidden_at(reference, batch["retain"], layer)
        retain = masked_mse(h_retain, h_ref, batch["retain"], self.mask)
        return self.gamma * forget + self.alpha * retain, {
            "forget_mse": float(forget.detach()),
            "retain_mse": float(retain.detach()),
        }

    @torch.no_grad()
    def forget_mse(
        self,
        model: nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        rows: Sequence[Row],
        spec: TrainSpec,
    ) -> float:
        """The forget term MSE(h(x_f), c) over all of `rows` (after `prepare`): batches of
        `spec.batch_size` in order, averaged weighting each batch by its sequences."""
        layer, control = self._control["layer"], self._control["c"]
        total, count = 0.0, 0
        for batch, h in _hidden_states(model, tokenizer, rows, layer, spec):
            mse = masked_mse(h, control.to(h.device).expand_as(h), batch, self.mask)
            total += float(mse) * len(batch)
            count += len(batch)
        return total / count

    def unlearn(self, model: PreTrainedModel, data: UnlearnData, ctx: UnlearnContext) -> Unlearned:
        n_layers = len(decoder_layers(model))
        layer = self.resolve_layer(n_layers)  # ValueError before any work
        rows = data["forget"]
        spec = ctx.train
        self._control.clear()
        norm = activation_norm(model, ctx.tokenizer, rows, layer, spec, self.mask)
        self._control["activation_norm"] = norm
        self.prepare(model, spec.seed)  # draws c; unlearn() below redraws the same one
        start = self.forget_mse(model, ctx.tokenizer, rows, spec)
        out = super().unlearn(model, data, ctx)
        assert out.model is not None
        end = self.forget_mse(out.model, ctx.tokenizer, rows, spec)
        drop = 1.0 - end / start if start > 0 else 0.0
        converged = (drop >= CONVERGED_DROP) and not out.train.diverged
        out.diagnostics = {
            **out.diagnostics,
            "layer": layer,
            "layer_fraction": layer / n_layers,
            "activation_norm": norm,
            "steering_norm": float(self._control["c"].norm()),
            "forget_mse_start": start,
            "forget_mse_end": end,
            "forget_mse_drop": drop,
            "converged": converged,
        }
        if not converged:
            why = (
                f"rmu did not converge: forget MSE {start:.4g} -> {end:.4g} fell "
                f"{100 * drop:.0f}% of the way to 0 (needs {100 * CONVERGED_DROP:.0f}%)"
            )
            logger.warning("%s: %s", ctx.desc or "rmu", why)
            out.train.message = f"{out.train.message}; {why}" if out.train.message else why
        return out
