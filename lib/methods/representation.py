"""Representation misdirection (RMU; Li et al. 2024, WMDP)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import nn

from lib import distributed
from lib.batches import IGNORE, Batch
from lib.methods import register
from lib.methods.base import GradientMethod


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


def masked_mse(a: torch.Tensor, b: torch.Tensor, batch: Batch, mask: str) -> torch.Tensor:
    """open-unlearning's MSE: mean_b [sum_t m_bt * mean_d (a-b)^2 / sum_t m_bt].

    `mask="answer"`: m = answer tokens (open-unlearning); `mask="none"`: every position,
    padding included, as the WMDP reference code's plain `mse_loss`.
    """
    per_token = ((a - b) ** 2).mean(dim=-1)  # (B, T)
    if mask == "none":
        return per_token.mean()
    if mask != "answer":
        raise ValueError(f"RMU mask must be 'answer' or 'none', got {mask!r}")
    m = (batch.labels != IGNORE).float()
    return ((per_token * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)).mean()


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
    """

    layer: int = 7  # decoder block whose output is steered
    steering: float = 2.0  # norm of the control vector
    gamma: float = 1.0  # weight of the forget MSE
    alpha: float = 1.0  # weight of the retain MSE
    trainable: str = "all"  # all | wmdp (down_proj of layers layer-2..layer)
    mask: str = "answer"  # answer (open-unlearning) | none (WMDP code)
    _control: dict = field(default_factory=dict, compare=False, repr=False)

    name = "rmu"
    family = "representation"
    citation = "Li et al. 2024 (WMDP/RMU); open-unlearning RMU"
    needs_reference = True
    sampled = ("retain",)
    grad_streams = ("forget", "retain")
    reference_streams = ("retain",)

    def check(self, n_layers: int) -> None:
        if not 0 <= self.layer < n_layers:
            raise ValueError(
                f"rmu layer must be in [0, {n_layers - 1}] for this model, got {self.layer}"
            )
        if self.trainable not in {"all", "wmdp"}:
            raise ValueError(f"trainable must be 'all' or 'wmdp', got {self.trainable!r}")
        if self.mask not in {"answer", "none"}:
            raise ValueError(f"mask must be 'answer' or 'none', got {self.mask!r}")

    def prepare(self, model, seed: int) -> None:
        if self.trainable not in {"all", "wmdp"}:
            raise ValueError(f"trainable must be 'all' or 'wmdp', got {self.trainable!r}")
        width = decoder_layers(model)[0].mlp.down_proj.out_features
        generator = torch.Generator().manual_seed(seed)
        u = torch.rand(width, generator=generator)
        self._control["c"] = self.steering * u / u.norm()
        if self.trainable == "wmdp":
            lo = max(0, self.layer - 2)
            wanted = re.compile(
                rf"layers\.({'|'.join(map(str, range(lo, self.layer + 1)))})"
                r"\.mlp\.down_proj\.weight$"
            )
            for name, param in model.named_parameters():
                param.requires_grad_(bool(wanted.search(name)))

    def loss(self, model, batch, reference):
        control = self._control["c"].to(batch["forget"].input_ids.device)
        h_forget = hidden_at(model, batch["forget"], self.layer)
        forget = masked_mse(h_forget, control.expand_as(h_forget), batch["forget"], self.mask)
        h_retain = hidden_at(model, batch["retain"], self.layer)
        with torch.no_grad():
            h_ref = hidden_at(reference, batch["retain"], self.layer)
        retain = masked_mse(h_retain, h_ref, batch["retain"], self.mask)
        return self.gamma * forget + self.alpha * retain, {
            "forget_mse": float(forget.detach()),
            "retain_mse": float(retain.detach()),
        }
