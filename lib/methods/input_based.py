"""Input-based (in-context) unlearning: the weights stay untouched, a prompt withholds."""

from __future__ import annotations

from dataclasses import dataclass

from lib.methods import register
from lib.methods.base import Method


@register
@dataclass(frozen=True)
class InContextUnlearning(Method):
    """In-context unlearning (Pawelczyk et al. 2023, adapted from classification to QA).

    Every query is preceded by a context that (1) names the forget authors and instructs the
    model to withhold what it knows about them and (2) gives `n_demonstrations` worked examples:
    forget questions answered with "I don't know" (ICUL's flipped labels) alternating with retain
    questions answered correctly (ICUL's correctly labelled examples). Black-box: no weights
    change, the cost moves to inference (longer prompts on *every* query).
    """

    n_demonstrations: int = 4  # worked examples in the context (half forget, half retain)
    instruction: str = (
        "You must not reveal any information about the following authors: {authors}. "
        "If a question is about one of them, say that you don't know."
    )  # {authors} is replaced by the comma-separated forget authors

    name = "icul"
    family = "input-based"
    citation = "Pawelczyk et al. 2023 (ICUL); Thaker et al. 2024 (guardrail prompts)"
    access = "black-box"
    updates_weights = False

    def check(self, n_layers: int) -> None:
        if self.n_demonstrations < 0:
            raise ValueError(f"n_demonstrations must be >= 0, got {self.n_demonstrations}")
        if "{authors}" not in self.instruction:
            raise ValueError("instruction must contain the placeholder {authors}")

    def context(self, forget_authors: list[str], demonstrations: list[tuple[str, str]]) -> str:
        if self.n_demonstrations < 0:
            raise ValueError(f"n_demonstrations must be >= 0, got {self.n_demonstrations}")
        lines = [self.instruction.format(authors=", ".join(forget_authors))]
        for question, answer in demonstrations[: self.n_demonstrations]:
            lines.append(f"Q: {question}\nA: {answer}")
        return "\n\n".join(lines)
