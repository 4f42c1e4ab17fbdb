"""Preference-optimisation unlearning: NPO, SimNPO and (Idk)DPO."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lib.methods import register
from lib.methods.base import GradientMethod
from lib.methods.losses import ce_mean, forward_logits, mean_nll, reduce_nll


def _retain_nll(model, batch) -> torch.Tensor:
    return ce_mean(forward_logits(model, batch["retain"]), batch["retain"].labels)


def _npo_term(excess_nll: torch.Tensor, beta: float) -> torch.Tensor:
    """-(2/beta) * mean logsigmoid(beta * excess_nll): NPO's forget loss (SimNPO with a margin)."""
    return -(2.0 / beta) * F.logsigmoid(beta * excess_nll).mean()


def _forget_plus_retain(
    method, model, batch, forget: torch.Tensor, nll: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """gamma * forget + alpha * retain NLL, with the logged floats NPO and SimNPO share."""
    retain = _retain_nll(model, batch)
    return method.gamma * forget + method.alpha * retain, {
        "forget_loss": float(forget.detach()),
        "retain_nll": float(retain.detach()),
        "forget_nll": float(nll.mean().detach()),
    }


@register
@dataclass(frozen=True)
class NPO(GradientMethod):
    """Negative Preference Optimisation (Zhang et al. 2024, Eq. 3) + retain NLL.

    L_f = (2/beta) * mean_i log(1 + (pi_theta(y_i|x_i) / pi_ref(y_i|x_i))^beta)
        = -(2/beta) * mean_i logsigmoid(beta * (NLL_theta - NLL_ref)),
    with *sequence-sum* NLLs (`nll_reduction="sum"`, NPO paper code and open-unlearning);
    `"mean"` gives SOUL's token-mean variant. The reference is the frozen target.
    """

    beta: float = 0.1  # inverse temperature; beta -> 0 recovers gradient ascent
    gamma: float = 1.0  # weight of the forget term
    alpha: float = 1.0  # weight of the retain NLL (open-unlearning NPO default)
    nll_reduction: str = "sum"  # sum | mean

    name = "npo"
    family = "preference optimization"
    citation = "Zhang et al. 2024 (NPO); open-unlearning NPO"
    needs_reference = True
    sampled = ("retain",)
    grad_streams = ("forget", "retain")
    reference_streams = ("forget",)

    def check(self, n_layers: int) -> None:
        if self.nll_reduction not in ("sum", "mean"):
            raise ValueError(f"nll_reduction must be 'sum' or 'mean', got {self.nll_reduction!r}")
        if self.beta <= 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")

    def loss(self, model, batch, reference):
        labels = batch["forget"].labels
        nll = reduce_nll(forward_logits(model, batch["forget"]), labels, self.nll_reduction)
        with torch.no_grad():
            ref_nll = reduce_nll(
                forward_logits(reference, batch["forget"]), labels, self.nll_reduction
            )
        forget = _npo_term(nll - ref_nll, self.beta)
        return _forget_plus_retain(self, model, batch, forget, nll)


@register
@dataclass(frozen=True)
class SimNPO(GradientMethod):
    """SimNPO (Fan et al. 2024): reference-free, length-normalised NPO + retain NLL.

    L_f = -(2/beta) * mean_i logsigmoid(beta * (NLL_theta(y_i)/|y_i| - delta)); the paper's
    gamma equals beta * delta. Defaults: open-unlearning simnpo.yaml (beta 4.5, delta 0,
    forget weight 0.125, retain weight 1).
    """

    beta: float = 4.5  # inverse temperature
    delta: float = 0.0  # reward margin (paper gamma = beta * delta)
    gamma: float = 0.125  # weight of the forget term (Unlearn-Simple npo_coeff)
    alpha: float = 1.0  # weight of the retain NLL

    name = "simnpo"
    family = "preference optimization"
    citation = "Fan et al. 2024 (SimNPO); open-unlearning SimNPO"
    sampled = ("retain",)
    grad_streams = ("forget", "retain")

    def loss(self, model, batch, reference):
        nll = mean_nll(forward_logits(model, batch["forget"]), batch["forget"].labels)
        forget = _npo_term(nll - self.delta, self.beta)
        return _forget_plus_retain(self, model, batch, forget, nll)


@register
@dataclass(frozen=True)
class IdkDPO(GradientMethod):
    """DPO with "I don't know" as the preferred and the true answer as the rejected response.

    L_f = -s * mean log sigmoid(beta * [(logpi(y_w) - logpi_ref(y_w)) - (logpi(y_l) -
    logpi_ref(y_l))]) with sequence-sum log-probs. `scale_two_over_beta=True` gives s = 2/beta
    as open-unlearning (and the NPO/SimNPO TOFU forks); False gives s = 1 as the DPO paper
    (Rafailov et al. 2023) and the original TOFU `dpo` branch: at beta = 0.1 the two differ by 20x
    in the forget/retain balance.
    """

    beta: float = 0.1  # inverse temperature
    gamma: float = 1.0  # weight of the preference term
    alpha: float = 1.0  # weight of the retain NLL
    scale_two_over_beta: bool = True  # True: open-unlearning; False: DPO paper / TOFU

    name = "idk_dpo"
    family = "preference optimization"
    citation = "Rafailov et al. 2023 (DPO); Maini et al. 2024; open-unlearning IdkDPO"
    needs_reference = True
    aligned = ("forget_idk",)
    sampled = ("retain",)
    grad_streams = ("forget", "forget_idk", "retain")
    reference_streams = ("forget", "forget_idk")

    def loss(self, model, batch, reference):
        win, lose = batch["forget_idk"], batch["forget"]
        nll_w = reduce_nll(forward_logits(model, win), win.labels, "sum")
        nll_l = reduce_nll(forward_logits(model, lose), lose.labels, "sum")
        with torch.no_grad():
            ref_w = reduce_nll(forward_logits(reference, win), win.labels, "sum")
            ref_l = reduce_nll(forward_logits(reference, lose), lose.labels, "sum")
        margin = (ref_w - nll_w) - (ref_l - nll_l)
        scale = 2.0 / self.beta if self.scale_two_over_beta else 1.0
        forget = -scale * F.logsigmoid(self.beta * margin).mean()
        retain = _retain_nll(model, batch)
        return self.gamma * forget + self.alpha * retain, {
            "forget_loss": float(forget.detach()),
            "retain_nll": float(retain.detach()),
            "margin": float(margin.mean().detach()),
        }
