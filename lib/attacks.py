"""Robustness attacks on unlearned weights that need no data: weight quantization.

Zhang et al. (ICLR 2025, "Catastrophic Failure of LLM Unlearning via Quantization") show that
quantizing an unlearned model to 4 bits restores much of the "forgotten" knowledge: unlearning
with a small learning rate moves weights by less than one quantization step, so rounding
snaps many of them back to the target's grid points. Their released evaluation loads models
through bitsandbytes (`load_in_4bit`: FP4 with absmax blocks of 64; `load_in_8bit`: LLM.int8),
and the paper also reports GPTQ and AWQ.

`fake_quantize` simulates weight-only integer quantization with symmetric round-to-nearest
(RTN) scales and de-quantizes back to float32, so the study's evaluation runs unchanged on CPU
or GPU with no quantization kernels. It is the plain RTN baseline of GPTQ/AWQ papers, not
GPTQ's error-compensating rounding and not bitsandbytes' FP4 code book.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field

import torch
from torch import nn

logger = logging.getLogger(__name__)

#: bit widths `fake_quantize` accepts (the attack uses 8 and 4)
BITS = range(2, 9)
#: GPTQ/AWQ's common 4-bit group size (input columns sharing one scale)
DEFAULT_GROUP_SIZE = 128


@dataclass
class QuantizedLinear:
    """One quantized layer: its name, weight shape, ||W|| and ||W_q - W|| (Frobenius)."""

    name: str
    shape: tuple[int, ...]
    norm: float
    error: float

    @property
    def relative_error(self) -> float:
        """||W_q - W|| / ||W|| (0 for an all-zero weight)."""
        return self.error / self.norm if self.norm else 0.0


@dataclass
class QuantizationReport:
    """What `fake_quantize` did, attached to the quantized model as `fake_quantization`."""

    bits: int
    group_size: int | None
    layers: list[QuantizedLinear] = field(default_factory=list)

    @property
    def relative_error(self) -> float:
        """Relative weight error over all quantized layers: sqrt(sum err^2) / sqrt(sum ||W||^2)."""
        norm = math.sqrt(sum(layer.norm**2 for layer in self.layers))
        error = math.sqrt(sum(layer.error**2 for layer in self.layers))
        return error / norm if norm else 0.0


def _check(bits: int, group_size: int | None) -> None:
    if not isinstance(bits, int) or bits not in BITS:
        raise ValueError(
            f"bits must be an integer in [{BITS.start}, {BITS.stop - 1}], got {bits!r}"
        )
    if group_size is not None and (not isinstance(group_size, int) or group_size < 1):
        raise ValueError(f"group_size must be a positive integer or None, got {group_size!r}")


@torch.no_grad()
def quantize_weight(
    weight: torch.Tensor, bits: int, group_size: int | None = DEFAULT_GROUP_SIZE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric round-to-nearest quantization of a (out, in) weight, de-quantized to its dtype.

    Each output row is cut into groups of `group_size` consecutive input columns (None: the
    whole row, i.e. per-output-channel scales; a last group shorter than `group_size` keeps its
    own scale). Per group: scale = max|w| / qmax with qmax = 2^(bits-1) - 1, q = round(w /
    scale) in [-qmax, qmax] (the symmetric grid; -2^(bits-1) is unused; `torch.round` rounds
    halves to even), w_q = q * scale. Every
    value therefore lies within scale / 2 of the original. An all-zero group keeps scale 0.

    Returns (w_q with the shape and dtype of `weight`, scales of shape (out, n_groups)).
    """
    _check(bits, group_size)
    if weight.ndim != 2:
        raise ValueError(f"expected a 2-D (out, in) weight, got shape {tuple(weight.shape)}")
    out_features, in_features = weight.shape
    size = in_features if group_size is None else min(group_size, in_features)
    n_groups = -(-in_features // size)
    w = weight.float()
    pad = n_groups * size - in_features
    if pad:  # zeros never raise a group's max|w|, and are cut off again below
        w = torch.nn.functional.pad(w, (0, pad))
    groups = w.view(out_features, n_groups, size)
    qmax = 2 ** (bits - 1) - 1
    scale = groups.abs().amax(dim=-1, keepdim=True) / qmax
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.clamp(torch.round(groups / safe), -qmax, qmax)
    dequantized = (q * scale).view(out_features, n_groups * size)[:, :in_features]
    return dequantized.to(weight.dtype).contiguous(), scale.squeeze(-1)


def _skipped_weights(model: nn.Module) -> set[int]:
    """Ids of the input/output embedding matrices (one tensor when they are tied)."""
    skip = set()
    for getter in ("get_input_embeddings", "get_output_embeddings"):
        module = getattr(model, getter, lambda: None)()
        if module is not None and getattr(module, "weight", None) is not None:
            skip.add(id(module.weight))
    return skip


@torch.no_grad()
def fake_quantize(
    model: nn.Module,
    bits: int,
    group_size: int | None = DEFAULT_GROUP_SIZE,
    inplace: bool = False,
) -> nn.Module:
    """Weight-only RTN fake quantization of every decoder `nn.Linear` (see `quantize_weight`).

    Quantized: the weight of every `nn.Linear` except the output layer and anything sharing a
    tensor with the input embedding (tied `lm_head`); embeddings, norms and biases stay in full
    precision, as GPTQ/AWQ/bitsandbytes leave the embeddings and the output layer unquantized.

    Args:
        model: the (unlearned) model; float32 weights as this study holds them.
        bits: 8 or 4 for the attack (2-8 accepted).
        group_size: input columns per scale (GPTQ/AWQ's usual 128); None = one scale per
            output channel.
        inplace: quantize `model` itself (saves one copy of the weights); default: a deep copy
            is quantized and `model` is left untouched (e.g. for a later relearning attack).

    Returns the quantized model, with a `QuantizationReport` as its attribute
    `fake_quantization` (per-layer and overall relative weight errors). Its `compute_dtype`
    (if any) is kept, so evaluation autocasts as before.
    """
    _check(bits, group_size)
    target = model if inplace else copy.deepcopy(model)  # (the copy keeps compute_dtype)
    skip = _skipped_weights(target)
    report = QuantizationReport(bits, group_size)
    for name, module in target.named_modules():
        if not isinstance(module, nn.Linear) or id(module.weight) in skip:
            continue
        weight = module.weight
        quantized, _ = quantize_weight(weight.data, bits, group_size)
        norm = float(weight.data.double().norm())
        error = float((quantized.double() - weight.data.double()).norm())
        weight.data.copy_(quantized)
        report.layers.append(QuantizedLinear(name, tuple(weight.shape), norm, error))
    if not report.layers:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer to quantize")
    target.fake_quantization = report
    logger.info(
        "fake-quantized %d linear layers to %d bits (group size %s): relative weight error %.3g",
        len(report.layers),
        bits,
        group_size,
        report.relative_error,
    )
    return target
