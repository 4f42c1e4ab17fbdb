"""Relabelling: fine-tune the forget questions towards "I don't know" answers."""

from __future__ import annotations

from dataclasses import dataclass

from lib.methods import register
from lib.methods.base import GradientMethod
from lib.methods.losses import ce_mean, forward_logits


@register
@dataclass(frozen=True)
class IdkFinetune(GradientMethod):
    """TOFU `idk`: gamma * NLL(IDK answer | forget question) + alpha * NLL(retain)."""

    gamma: float = 1.0  # weight of the IDK NLL
    alpha: float = 1.0  # weight of the retain NLL

    name = "idk"
    family = "relabeling"
    citation = "Maini et al. 2024 (TOFU idk)"
    aligned = ("forget_idk",)
    sampled = ("retain",)
    grad_streams = ("forget_idk", "retain")

    def loss(self, model, batch, reference):
        idk = ce_mean(forward_logits(model, batch["forget_idk"]), batch["forget_idk"].labels)
        retain = ce_mean(forward_logits(model, batch["retain"]), batch["retain"].labels)
        return self.gamma * idk + self.alpha * retain, {
            "idk_nll": float(idk.detach()),
            "retain_nll": float(retain.detach()),
        }
