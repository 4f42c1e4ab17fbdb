"""lib.benchmarks.icl: in-context accuracy, the deletion streams of every learner (tiny random
model, seconds), what is counted against what ran, the cost curve, and validation."""

from __future__ import annotations

import numpy as np
import pytest

from lib import runner
from lib.benchmarks import icl
from lib.data.tasks import build_task
from lib.evaluate import score_choices
from lib.methods.sisa import Sisa
from lib.specs import ModelSpec, TrainSpec

TINY = ModelSpec("tiny-random", dtype="float32")
TASK = icl.TaskSpec("topic_blue_green", n_train=24, n_test=8)
# R = 2 slices, E = 1.5: every stage trains 2E/(R+1) = 1 epoch, so counted tokens are exact
FINETUNE = TrainSpec(epochs=1.5, lr=1e-3, batch_size=4, warmup_ratio=0.0, schedule="constant")


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
    # the counted prompt length is the prefix plus the mean query
    n = lambda t: len(tiny_tokenizer(t, add_special_tokens=False)["input_ids"])  # noqa: E731
    prefix = task.template.prefix(task.demonstrations(demos))
    queries = [task.template.query(t, True) for t in task.data["test"]["text"]]
    expected = n(prefix) + np.mean([n(q) for q in queries])
    assert icl.icl_prompt_tokens(tiny_tokenizer, task, demos) == pytest.approx(expected)


def test_rows_for_demonstrations_and_fine_tuning(task) -> None:
    demo = icl.demonstration_rows(task)[0]
    word = task.label_names[demo["label"]]
    assert demo["demonstration"] == task.template.block(demo["text"], word)
    pair = icl.finetune_rows(task)[0]
    assert pair == {"prompt": task.template.block(demo["text"]), "completion": " " + word}
    assert icl.label_choices(task) == [" blue", " green"]


def test_deletion_stream_is_seeded_and_distinct() -> None:
    a = icl.deletion_stream(50, 20, seed=3)
    assert len(set(a.tolist())) == 20 and a.max() < 50
    np.testing.assert_array_equal(a, icl.deletion_stream(50, 20, seed=3))
    assert not np.array_equal(a, icl.deletion_stream(50, 20, seed=4))
    with pytest.raises(ValueError, match="n_deletions"):
        icl.deletion_stream(10, 10, 0)


def test_specs_and_resolve_validate_before_work() -> None:
    with pytest.raises(KeyError, match="unknown task"):
        icl.TaskSpec("nope")
    with pytest.raises(ValueError, match="n_train"):
        icl.TaskSpec("topic_blue_green", n_train=0)
    with pytest.raises(ValueError, match="increasing"):
        icl.StreamSpec(TINY, TASK, "erase", checkpoints=(3, 1))
    with pytest.raises(ValueError, match="beyond"):
        icl.StreamSpec(TINY, TASK, "erase", n_deletions=5, checkpoints=(0, 6))
    full = icl.resolve("retrain", {"lora_top_layers": 1})
    assert isinstance(full, Sisa) and (full.n_shards, full.n_slices) == (1, 1)
    assert icl.resolve("zero_shot", {}) is None
    with pytest.raises(KeyError, match="hyperparameters"):
        icl.resolve("zero_shot", {"k": 2})
    with pytest.raises(KeyError, match="not a learner"):
        icl.resolve("ga", {})
    with pytest.raises(KeyError, match="unknown method"):
        icl.resolve("nope", {})


def _stream(method: str, **hparams) -> icl.StreamResult:
    checkpoints = (0, 2, 4)
    spec = icl.StreamSpec(
        TINY,
        TASK,
        method,
        tuple(sorted(hparams.items())),
        n_deletions=4,
        checkpoints=checkpoints,
        seed=1,
        finetune=FINETUNE,
    )
    return runner.run(spec)


@pytest.mark.parametrize("method", ["erase", "random_kshot"])
def test_in_context_streams(method: str) -> None:
    hparams = {"k": 3, **({"projection_dim": 4} if method == "erase" else {})}
    result = _stream(method, **hparams)
    assert result.checkpoints == [0, 2, 4] and len(result.accuracy) == 3
    assert all(0 <= a <= 1 for a in result.accuracy)
    assert result.deletion_seconds.shape == (4,) and (result.deletion_tokens == 0).all()
    assert result.n_models == 1 and len(result.diagnostics["demonstrations"]) <= 3
    stream = set(icl.deletion_stream(24, 4, 1).tolist())
    assert not set(result.diagnostics["demonstrations"]) & stream  # deleted rows never shown
    expected = 2.0 * result.n_params * (result.prompt_tokens + 1)  # single-token labels
    assert result.inference_flops_per_query == pytest.approx(expected)
    if method == "erase":
        assert result.setup_flops > 0 and (result.deletion_flops > 0).all()
    else:
        assert not result.reclustered.any() and result.setup_flops == 0


def test_zero_shot_learns_and_deletes_nothing() -> None:
    result = _stream("zero_shot")
    assert len(set(result.accuracy)) == 1 and (result.deletion_flops == 0).all()


@pytest.mark.parametrize("method", ["sisa", "retrain"])
def test_fine_tuning_streams_count_every_request_and_run_the_checkpoints(method: str) -> None:
    hparams = {"n_shards": 2, "n_slices": 2} if method == "sisa" else {}
    result = _stream(method, lora_top_layers=1, **hparams)
    assert len(result.accuracy) == 3
    # every request counted; 6 N x tokens; seconds at the measured throughput
    assert (result.deletion_tokens > 0).all()
    np.testing.assert_allclose(
        result.deletion_flops, 6.0 * result.n_params * result.deletion_tokens
    )
    per_token = result.diagnostics["seconds_per_token"]
    np.testing.assert_allclose(result.deletion_seconds, result.deletion_tokens * per_token)
    # the retraining run for real (two batches) is what the plans count for those batches:
    # exactly when every stage trains whole epochs (SISA here: 2E/(R+1) = 1), else up to the
    # rounding of a fractional pass to whole rows (retrain: E = 1.5 epochs)
    if method == "sisa":
        assert result.real_retrain_tokens == result.counted_batch_tokens > 0
    else:
        assert result.real_retrain_tokens == pytest.approx(result.counted_batch_tokens, rel=0.02)
    assert result.n_models == (2 if method == "sisa" else 1)
    if method == "retrain":
        # full retraining: every request retrains E epochs of the remaining rows
        assert result.deletion_tokens[0] > result.deletion_tokens[-1]


def test_cost_curve_rows_and_counted_full_retraining() -> None:
    spec = icl.DeletionCostSpec(
        TINY,
        (TASK,),
        erase=(("k", 3), ("projection_dim", 4)),
        sisa=(("n_shards", 2), ("n_slices", 2)),
        epochs=2.0,
        sizes=(10, 24, 60),
        n_deletions=5,
        other_models=(ModelSpec("tiny-random", dtype="float32", device="cpu"),),
    )
    curve = runner.run(spec)
    rows = {(r["model"], r["n"], r["method"]): r for r in curve.rows}
    assert curve.n_real == 24
    assert rows[("tiny-random", 10, "erase")]["source"] == "real"
    assert rows[("tiny-random", 60, "erase")]["source"] == "synthetic"
    assert all(
        rows[("tiny-random", n, "erase")]["llm_flops_per_deletion"] == 0 for n in (10, 24, 60)
    )
    # full retraining retrains E epochs of the remaining rows, whatever row is deleted: the 5
    # deletions (one after another) leave 59, 58, ..., 55 rows
    counted = rows[("tiny-random", 60, "retrain")]["tokens_per_deletion"]
    assert counted == pytest.approx(2.0 * np.mean([59, 58, 57, 56, 55]) * curve.tokens_per_row)
    assert rows[("tiny-random", 60, "sisa")]["tokens_per_deletion"] < counted
    real = np.zeros((5, 3))
    a = icl.synthetic_features(real + np.arange(3), 7, 0.25, seed=0)
    assert a.shape == (7, 3)
    np.testing.assert_array_equal(a, icl.synthetic_features(real + np.arange(3), 7, 0.25, seed=0))
    with pytest.raises(ValueError, match="sizes"):
        icl.DeletionCostSpec(TINY, (TASK,), sizes=(1,))


def test_bigbench_task_spec_subsamples_the_loaded_task(tmp_path, monkeypatch) -> None:
    """The hub layout of tasksource/bigbench (one parquet folder per config), written here."""
    import datasets
    from datasets import Dataset

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "bigbench"
    (root / "causal_judgment").mkdir(parents=True)
    for split, n in (("train", 5), ("validation", 4)):
        rows = {
            "idx": list(range(n)),
            "inputs": [f"Q: question {i}?\nA:" for i in range(n)],
            "targets": [["Yes"]] * n,
            "multiple_choice_targets": [["Yes", "No"]] * n,
            "multiple_choice_scores": [[1, 0] if i % 2 else [0, 1] for i in range(n)],
        }
        Dataset.from_dict(rows).to_parquet(str(root / "causal_judgment" / f"{split}-0.parquet"))
    (root / "README.md").write_text(
        "---\nconfigs:\n- config_name: causal_judgment\n  data_files:\n"
        "  - split: train\n    path: causal_judgment/train-*.parquet\n"
        "  - split: validation\n    path: causal_judgment/validation-*.parquet\n---\n"
    )
    spec = icl.TaskSpec("bigbench:causal_judgment", n_train=3, n_test=1, path=str(root))
    task = icl.load_task(spec)
    assert len(task.data["train"]) == 3 and len(task.data["test"]) == 1
    assert task.label_names == ["Yes", "No"]
