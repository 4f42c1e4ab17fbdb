"""lib.benchmarks.icl: in-context accuracy, the deletion-stream protocol and its costs
(tiny random model, seconds)."""

from __future__ import annotations

import numpy as np
import pytest

from lib.benchmarks import icl
from lib.data.tasks import build_task
from lib.evaluate import score_choices


@pytest.fixture(scope="module")
def task():
    return build_task("topic_blue_green", n_train=40, n_test=12, seed=0)


def test_icl_accuracy_is_the_argmax_accuracy_of_full_prompts(tiny_model, tiny_tokenizer, task):
    demos = [0, 1, 2]
    acc = icl.icl_accuracy(tiny_model, tiny_tokenizer, task, demos, n_test=10)
    prompts = [
        task.template.prompt(task.demonstrations(demos), t) for t in task.data["test"]["text"][:10]
    ]
    scores = score_choices(tiny_model, tiny_tokenizer, prompts, [" blue", " green"])
    cached = icl.icl_scores(tiny_model, tiny_tokenizer, task, demos, n_test=10)
    np.testing.assert_allclose(cached, scores, atol=1e-4)
    assert acc == pytest.approx(float((scores.argmax(1) == task.data["test"]["label"][:10]).mean()))
