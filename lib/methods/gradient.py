"""Gradient ascent and its retain-regularised variants (TOFU baselines; open-unlearning)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lib.methods import register
from lib.methods.base import GradientMethod
from lib.methods.losses import ce_mean, forward_logits, kl_to_reference


@register
@dataclass(frozen=True)
class GradAscent(GradientMethod):
    """Maximise the NLL of the forget answers: loss = -CE_mean(forget).

    Jang et al. 2023 (knowledge unlearning); Maini et al. 2024 (TOFU). No retain term, so utility
    usually collapses after a few epochs.
    """

    name = "ga"
    family = "gradient ascent"
    citation = "Jang et al. 2023; Maini et al. 2024 (TOFU)"

    def loss(self, model, batch, reference):
        forget = ce_mean(forward_logits(model, batch["forget"]), batch["forget"].labels)
        return -forget, {"forget_nll": float(forget.detach())}


@register
@dataclass(frozen=True)
class GradDiff(GradientMethod):
    """Gradient difference: -gamma * CE_mean(forget) + alpha * CE_mean(retain).

    Liu et al. 2022; TOFU `grad_diff`; open-unlearning `GradDiff` defaults gamma = alpha = 1.
    """

    gamma: float = 1.0  # weight of the forget (ascent) term
    alpha: float = 1.0  # weight of the retain NLL term

    name = "grad_diff"
    family = "gradient ascent"
    citation = "Liu et al. 2022; Maini et al. 2024 (TOFU); open-unlearning GradDiff"
    sampled = ("retain",)
    grad_streams = ("forget", "retain")

    def loss(self, model, batch, reference):
        forget = ce_mean(forward_logits(model, batch["forget"]), batch["forget"].labels)
        retain = ce_mean(forward_logits(model, batch["retain"]), batch["retain"].labels)
        loss = -self.gamma * forget + self.alpha * retain
        return loss, {"forget_nll": float(forget.detach()), "retain_nll": float(retain.detach())}


@register
@dataclass(frozen=True)
class GradAscentKL(GradientMethod):
    """GA + KL to the original model on retain data: -CE(forget) + alpha * KL(p_ref || p).

    TOFU `KL`; open-unlearning GradDiff with retain_loss_type=KL. Fix: the KL is averaged over
    retain *answer* tokens (`kl_mask="answer"`); open-unlearning averages over all B*T positions
    including padding (`kl_mask="none"` reproduces it).
    """

    gamma: float = 1.0  # weight of the forget (ascent) term
    alpha: float = 1.0  # weight of the KL term
    kl_mask: str = "answer"  # answer | none (open-unlearning: unmasked)

    name = "ga_kl"
    family = "gradient ascent"
    citation = "Maini et al. 2024 (TOFU KL); open-unlearning GradDiff(KL)"
    needs_reference = True
    sampled = ("retain",)
    grad_streams = ("forget", "retain")
    reference_streams = ("retain",)

    def check(self, n_layers: int) -> None:
        if self.kl_mask not in ("answer", "none"):
            raise ValueError(f"kl_mask must be 'answer' or 'none', got {self.kl_mask!r}")

    def loss(self, model, batch, reference):
        forget = ce_mean(forward_logits(model, batch["forget"]), batch["forget"].labels)
        logits = forward_logits(model, batch["retain"])
        with torch.no_grad():
            ref_logits = forward_logits(reference, batch["retain"])
        kl = kl_to_reference(logits, ref_logits, batch["retain"].labels, self.kl_mask)
        return -self.gamma * forget + self.alpha * kl, {
            "forget_nll": float(forget.detach()),
            "retain_kl": float(kl.detach()),
        }
