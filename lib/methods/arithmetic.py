"""Task-vector negation (Ilharco et al. 2023, "Editing Models with Task Arithmetic").

A task vector is the weight change of fine-tuning on a task, tau = theta_ft - theta. Negating it
moves the model away from the task: theta_unlearned = theta_target - alpha * tau, where
theta_ft is the target fine-tuned further on the forget data with plain NLL. MUSE (Shi et al.
2024) uses exactly this as its "task vector" LLM-unlearning baseline, with alpha = 1.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import torch
from transformers import PreTrainedModel

from lib.methods import register
from lib.methods.base import GradientMethod, Method, UnlearnContext, UnlearnData, Unlearned
from lib.methods.losses import ce_mean, forward_logits

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ForgetFinetune(GradientMethod):
    """Fine-tune on the forget answers with plain NLL (minimised): the run that makes theta_ft.

    Not registered: on its own it *teaches* the forget data; `TaskVectorNegation` uses it.
    """

    family = "weight arithmetic"
    citation = "Ilharco et al. 2023 (task vector fine-tuning)"

    def loss(self, model, batch, reference):
        nll = ce_mean(forward_logits(model, batch["forget"]), batch["forget"].labels)
        return nll, {"forget_nll": float(nll.detach())}


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter by name (tied weights once), on the same device."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@torch.no_grad()
def negate_task_vector(
    model: torch.nn.Module, target: Mapping[str, torch.Tensor], alpha: float
) -> float:
    """In place: every parameter p (holding theta_ft) becomes target - alpha * (p - target).

    Works tensor by tensor, so it needs no memory beyond `model` and `target`. alpha = 0 gives
    back `target` bit for bit. Returns the L2 norm of the task vector tau = theta_ft - target.

    Raises KeyError (before changing anything) when the parameter names do not match.
    """
    params = dict(model.named_parameters())
    if set(params) != set(target):
        missing, extra = sorted(set(target) - set(params)), sorted(set(params) - set(target))
        raise KeyError(f"parameter names differ: missing {missing[:5]}, unexpected {extra[:5]}")
    squares = 0.0
    for name, p in params.items():
        t = target[name].to(p.device)
        p.sub_(t)  # p = tau
        squares += float(p.double().pow(2).sum())
        p.mul_(-alpha).add_(t)  # p = target - alpha * tau
    return math.sqrt(squares)


@register
@dataclass(frozen=True)
class TaskVectorNegation(Method):
    """theta_target - alpha * (theta_ft - theta_target), theta_ft = target fine-tuned on forget.

    The forget fine-tuning uses the study's training loop with the unlearning recipe given by
    the caller (`UnlearnContext.train`: epochs, lr, batch size, schedule, LoRA), plain NLL on
    the forget answers; its cost is the method's cost (`Unlearned.train`), the arithmetic is
    negligible. Memory: the model plus one copy of the target weights (no second model).

    `alpha` (Ilharco et al.'s scaling coefficient lambda) is chosen on held-out validation data
    in the paper (for negation: the largest value that keeps control-task accuracy within 95%
    of the original); the default 1.0 is MUSE's task-vector baseline. alpha = 0 returns the
    target unchanged (after paying for the fine-tuning).

    `diagnostics`: `task_vector_norm` (L2 norm of theta_ft - theta_target),
    `task_vector_relative_norm` (that norm / L2 norm of the target weights), `alpha`, and
    `finetune_forget_nll_first` / `_last` (the fine-tuning loss at its first and last step).
    """

    alpha: float = 1.0  # scaling coefficient of the negated task vector (MUSE: 1.0)

    name = "task_vector"
    family = "weight arithmetic"
    citation = "Ilharco et al. 2023 (task arithmetic); Shi et al. 2024 (MUSE task-vector baseline)"
    streams = ("forget",)

    def check(self, n_layers: int) -> None:
        if not math.isfinite(self.alpha) or self.alpha < 0:
            raise ValueError(
                f"task_vector alpha must be a finite number >= 0 (0 = no change; a negative "
                f"alpha would add the forget task), got {self.alpha}"
            )

    def unlearn(self, model: PreTrainedModel, data: UnlearnData, ctx: UnlearnContext) -> Unlearned:
        self.check(0)
        if len(data["forget"]) == 0:  # (a missing stream raises KeyError naming the others)
            raise ValueError("task_vector needs a non-empty forget stream")
        target = snapshot(model)
        finetune_ctx = replace(ctx, desc=f"{ctx.desc or f'unlearn {self.name}'}: forget fine-tune")
        tuned = ForgetFinetune().unlearn(model, data, finetune_ctx)
        assert tuned.model is not None
        tau_norm = negate_task_vector(tuned.model, target, self.alpha)
        target_norm = math.sqrt(sum(float(t.double().pow(2).sum()) for t in target.values()))
        del target
        if tau_norm == 0.0:
            logger.warning("task_vector: the forget fine-tuning left the weights unchanged")
        log = tuned.train.log
        diagnostics = {
            "alpha": self.alpha,
            "task_vector_norm": tau_norm,
            "task_vector_relative_norm": tau_norm / target_norm if target_norm else math.nan,
            "finetune_forget_nll_first": log[0]["forget_nll"] if log else math.nan,
            "finetune_forget_nll_last": log[-1]["forget_nll"] if log else math.nan,
        }
        return Unlearned(model=tuned.model, train=tuned.train, diagnostics=diagnostics)
