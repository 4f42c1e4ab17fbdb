"""Tests of lib.data.tasks: the generated classification tasks, the prompt template, and the
Big-Bench loader on an offline fixture in the hub dataset's layout written here (label scoring:
tests/test_evaluate.py, `score_choices`)."""

from __future__ import annotations

import numpy as np
import pytest

from lib.data.tasks import (
    TASKS,
    PromptTemplate,
    bigbench_to_task,
    build_task,
    build_tasks,
    load_bigbench_task,
    random_demonstrations,
)

# ------------------------------------------------------------------------------ generated tasks


@pytest.fixture(scope="module")
def tasks():
    return build_tasks(n_train=60, n_test=31, seed=0)


def test_schema_sizes_and_balance(tasks) -> None:
    assert set(tasks) == set(TASKS) and len(TASKS) >= 4
    for name, task in tasks.items():
        assert set(task.data) == {"train", "test"}
        assert task.label_names == list(TASKS[name].label_names)
        for split, size in (("train", 60), ("test", 31)):
            ds = task.data[split]
            assert ds.column_names == ["text", "label"] and len(ds) == size
            counts = np.bincount(ds["label"], minlength=task.n_labels)
            assert counts.max() - counts.min() <= 1
        train, test = set(task.data["train"]["text"]), set(task.data["test"]["text"])
        assert len(train) == 60 and len(test) == 31 and not train & test


def test_texts_carry_their_class_cue(tasks) -> None:
    spec = TASKS["review_foo_bar"]
    for row in tasks["review_foo_bar"].data["train"]:
        word = row["text"].rstrip(".").split()[-1]
        assert word in spec.cues[row["label"]] and word not in spec.cues[1 - row["label"]]


def test_deterministic_and_seeded(tasks) -> None:
    again = build_task("when_up_down", n_train=60, n_test=31, seed=0)
    assert again.split_hashes() == tasks["when_up_down"].split_hashes()
    assert again.data["test"]["text"] == tasks["when_up_down"].data["test"]["text"]
    other = build_task("when_up_down", n_train=60, n_test=31, seed=1)
    assert other.split_hashes()["train"] != again.split_hashes()["train"]


def test_bad_arguments_raise() -> None:
    with pytest.raises(KeyError, match="review_foo_bar"):
        build_task("sentiment")
    with pytest.raises(ValueError, match="distinct texts"):
        build_task("sighting_left_right", n_train=300, n_test=200)
    with pytest.raises(ValueError, match=">= 1"):
        build_task("review_foo_bar", n_train=0)


def test_label_words_are_single_tokens(tiny_tokenizer) -> None:
    for spec in TASKS.values():
        for word in spec.label_names:
            assert len(tiny_tokenizer(" " + word, add_special_tokens=False)["input_ids"]) == 1, word


def test_prompt_template_hand_written() -> None:
    template = PromptTemplate("Label these.", "Review:")
    expected = (
        "Label these.\n\nReview: good\nLabel: foo\n\nReview: bad\nLabel: bar\n\nReview: ok\nLabel:"
    )
    assert template.prompt([("good", "foo"), ("bad", "bar")], "ok") == expected
    assert template.prompt([], "ok") == "Label these.\n\nReview: ok\nLabel:"
    bare = PromptTemplate("", "Q:")
    assert bare.prompt([], "x") == "Q: x\nLabel:" and bare.prefix([]) == ""


def test_random_demonstrations_distinct_and_seeded(tasks) -> None:
    task = tasks["review_foo_bar"]
    demos = random_demonstrations(task, 16, seed=3)
    assert len(set(demos)) == 16 and max(demos) < 60
    assert demos == random_demonstrations(task, 16, seed=3) != random_demonstrations(task, 16, 4)
    assert random_demonstrations(task, 0) == []
    with pytest.raises(ValueError, match="k must be"):
        random_demonstrations(task, 61)


# ------------------------------------------------------------------------------------ Big-Bench


def _bigbench_rows(choices_per_row: list[list[str]], correct: list[int]) -> dict[str, list]:
    return {
        "idx": list(range(len(correct))),
        "inputs": [f"Q: question {i}?\nA:" for i in range(len(correct))],
        "targets": [[c[y]] for c, y in zip(choices_per_row, correct, strict=True)],
        "multiple_choice_targets": choices_per_row,
        "multiple_choice_scores": [
            [int(j == y) for j in range(len(c))]
            for c, y in zip(choices_per_row, correct, strict=True)
        ],
    }


def _write_hub_fixture(root, task: str) -> None:
    """The layout of `tasksource/bigbench` on the hub: one parquet folder per task (config),
    declared in the README's `configs` metadata, splits train and validation."""
    from datasets import Dataset

    train = _bigbench_rows(
        [["Yes", "No"], ["No", "Yes"], [" Yes", "No "], ["Yes", "No"]], [0, 0, 1, 1]
    )
    validation = _bigbench_rows([["Yes", "No"], ["No", "Yes"]], [1, 1])
    (root / task).mkdir(parents=True)
    Dataset.from_dict(train).to_parquet(str(root / task / "train-00000-of-00001.parquet"))
    Dataset.from_dict(validation).to_parquet(str(root / task / "validation-00000-of-00001.parquet"))
    (root / "README.md").write_text(
        "---\nconfigs:\n"
        f"- config_name: {task}\n  data_files:\n"
        f"  - split: train\n    path: {task}/train-*.parquet\n"
        f"  - split: validation\n    path: {task}/validation-*.parquet\n"
        "---\n"
    )


def test_bigbench_loader_on_offline_fixture(tmp_path) -> None:
    root = tmp_path / "bigbench"
    _write_hub_fixture(root, "causal_judgment")
    task = load_bigbench_task("causal_judgment", path=str(root), cache_dir=str(tmp_path / "cache"))
    assert set(task.data) == {"train", "test"} and task.label_names == ["Yes", "No"]
    # row 1 lists ["No", "Yes"] with "No" correct -> label 1; row 2 " Yes" stripped, "No " correct
    assert task.data["train"]["label"] == [0, 1, 1, 1]
    assert task.data["test"]["label"] == [1, 0]
    assert task.data["train"]["text"][0] == "Q: question 0?\nA:"
    assert task.template.prompt([], "Q: x?\nA:").endswith("Q: x?\nA:\nAnswer:")


def test_bigbench_mapping_rejects_varying_choices() -> None:
    from datasets import Dataset, DatasetDict

    raw = DatasetDict(
        {"train": Dataset.from_dict(_bigbench_rows([["a", "b"], ["c", "d"]], [0, 1]))}
    )
    with pytest.raises(ValueError, match="fixed-label"):
        bigbench_to_task("some_task", raw)
    with pytest.raises(ValueError, match="train split"):
        bigbench_to_task("some_task", DatasetDict({"validation": raw["train"]}))
