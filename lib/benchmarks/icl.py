"""In-context learning vs fine-tuning on classification tasks, under a stream of deletions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lib.data.tasks import ClassificationTask
from lib.evaluate import TokenCounter, score_choices


def label_choices(task: ClassificationTask) -> list[str]:
    """The scored continuations: each label word after a space (the template's separator)."""
    return [" " + name for name in task.label_names]


def icl_scores(
    model: Any,
    tokenizer: Any,
    task: ClassificationTask,
    demo_indices: Sequence[int] = (),
    n_test: int | None = None,
    batch_size: int = 32,
    counter: TokenCounter | None = None,
) -> np.ndarray:
    """(n_test, n_labels) log-probabilities of the label words for the test queries, with one
    fixed list of train demonstrations (in prompt order) shared by every query, as in a
    deployment that prepends the same k examples to every query (ERASE, random k-shot); `()` is
    zero-shot (the instruction alone)."""
    test = task.data["test"]
    n = len(test) if n_test is None else min(n_test, len(test))
    prefix = task.template.prefix(task.demonstrations(demo_indices))
    prompts = [task.template.query(t, bool(prefix)) for t in test["text"][:n]]
    return score_choices(
        model, tokenizer, prompts, label_choices(task), prefix, batch_size, counter
    )


def icl_accuracy(
    model: Any,
    tokenizer: Any,
    task: ClassificationTask,
    demo_indices: Sequence[int] = (),
    n_test: int | None = None,
    batch_size: int = 32,
) -> float:
    """Test accuracy (argmax of `icl_scores`; higher = better) with a fixed demonstration list."""
    scores = icl_scores(model, tokenizer, task, demo_indices, n_test, batch_size)
    labels = np.asarray(task.data["test"]["label"][: len(scores)])
    return float((scores.argmax(axis=1) == labels).mean())
