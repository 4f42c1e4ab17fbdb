"""What every unlearning method is: hyperparameters (cited defaults) + a loss, and taxonomy tags.

Methods never run loops, log or save: `lib.train` owns the loop. The taxonomy tags follow Liu et
al. 2024 ("Rethinking Machine Unlearning for LLMs"): family, whether retain data or a reference
model is needed, and white-box (weights) vs black-box (inputs only) access.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

import torch
from transformers import PreTrainedModel

from lib.prompting import Batch

FAMILIES = (
    "gradient ascent",  # GA and its regularised variants
    "preference optimization",  # NPO, SimNPO, DPO: treat forget answers as dispreferred
    "relabeling",  # fine-tune towards alternative answers (IDK)
    "representation",  # localisation-informed: steer hidden states (RMU)
    "input-based",  # in-context: prompts, weights untouched
    "exact",  # retraining without the forget data
)
ACCESS = ("white-box", "black-box")


@dataclass
class UnlearnBatch:
    """One micro-batch of every stream a method may use.

    `forget` carries the true answers, `forget_idk` the same questions with "I don't know"
    answers, `retain` an equally sized random draw of retain examples.
    """

    forget: Batch
    retain: Batch | None = None
    forget_idk: Batch | None = None

    def to(self, device: torch.device) -> UnlearnBatch:
        return UnlearnBatch(
            self.forget.to(device),
            self.retain.to(device) if self.retain is not None else None,
            self.forget_idk.to(device) if self.forget_idk is not None else None,
        )


@dataclass(frozen=True)
class Method:
    """Base class: subclasses are frozen dataclasses whose fields are the hyperparameters."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    needs_retain: ClassVar[bool] = False
    needs_reference: ClassVar[bool] = False
    needs_idk: ClassVar[bool] = False
    access: ClassVar[str] = "white-box"
    updates_weights: ClassVar[bool] = True
    # Streams of an UnlearnBatch that go through forward+backward / through the frozen reference
    # (for the FLOP count): "forget", "retain", "forget_idk".
    grad_streams: ClassVar[tuple[str, ...]] = ("forget",)
    reference_streams: ClassVar[tuple[str, ...]] = ()

    def loss(
        self, model: PreTrainedModel, batch: UnlearnBatch, reference: PreTrainedModel | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss to *minimise* and a dict of floats to log."""
        raise NotImplementedError(f"{type(self).__name__} does not train")

    def check(self, n_layers: int) -> None:
        """Validate hyperparameters against the model's depth before any expensive work."""

    def prepare(self, model: PreTrainedModel, seed: int) -> None:
        """Hook called once before training (freeze parameters, draw control vectors...)."""

    def trainable_parameters(self, model: PreTrainedModel) -> Iterable[torch.nn.Parameter]:
        """Parameters the optimiser updates (default: all that require gradients)."""
        return [p for p in model.parameters() if p.requires_grad]

    def context(self, forget_authors: list[str], demonstrations: list[tuple[str, str]]) -> str:
        """Prompt context for input-based methods ('' for weight-updating methods)."""
        return ""
