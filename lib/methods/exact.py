"""Exact unlearning: retrain without the forget data (the gold standard of TOFU)."""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedModel

from lib.methods import register
from lib.methods.base import Method, UnlearnContext, UnlearnData, Unlearned


@register
@dataclass(frozen=True)
class Retrain(Method):
    """Train the base model again on the retain data only (TOFU's retain model).

    The benchmark supplies its own training recipe (`UnlearnContext.retrain`), so the result
    *is* the benchmark's retain oracle, at the full cost of training it.
    """

    name = "retrain"
    family = "exact"
    citation = "Bourtoule et al. 2021 (exact unlearning); Maini et al. 2024 (TOFU retain model)"
    streams = ("retain",)

    def unlearn(self, model: PreTrainedModel, data: UnlearnData, ctx: UnlearnContext) -> Unlearned:
        if ctx.retrain is None:
            raise ValueError(
                "retrain needs the benchmark's training recipe (UnlearnContext.retrain)"
            )
        return ctx.retrain(data["retain"])
