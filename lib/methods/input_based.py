"""Input-based (in-context) unlearning: the weights stay untouched, a prompt withholds."""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedModel

from lib.methods import register
from lib.methods.base import Method, UnlearnContext, UnlearnData, Unlearned


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
    streams = ("forget_idk", "retain")
    #: every `forget_step`-th forget question and `retain_step`-th retain question are the
    #: demonstration candidates (spread over the sets, deterministic)
    forget_step: int = 7
    retain_step: int = 37

    def check(self, n_layers: int) -> None:
        if self.n_demonstrations < 0:
            raise ValueError(f"n_demonstrations must be >= 0, got {self.n_demonstrations}")
        if self.forget_step < 1 or self.retain_step < 1:
            raise ValueError("forget_step and retain_step must be >= 1")
        if "{authors}" not in self.instruction:
            raise ValueError("instruction must contain the placeholder {authors}")

    def context(self, data: UnlearnData) -> str:
        """The prompt context: instruction naming the subjects, then the demonstrations."""
        self.check(0)
        demonstrations: list[tuple[str, str]] = []
        forget, retain = data["forget_idk"], data["retain"]
        pairs = zip(
            (forget[i] for i in range(0, len(forget), self.forget_step)),
            (retain[i] for i in range(0, len(retain), self.retain_step)),
            strict=False,
        )
        for forget_row, retain_row in pairs:
            demonstrations += [
                (forget_row["question"], forget_row["answer"]),
                (retain_row["question"], retain_row["answer"]),
            ]
        lines = [self.instruction.format(authors=", ".join(data.subjects))]
        for question, answer in demonstrations[: self.n_demonstrations]:
            lines.append(f"Q: {question}\nA: {answer}")
        return "\n\n".join(lines)

    def unlearn(self, model: PreTrainedModel, data: UnlearnData, ctx: UnlearnContext) -> Unlearned:
        return Unlearned(model=model, context=self.context(data))
