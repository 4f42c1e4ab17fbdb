"""One run, one or two processes: `python -m lib.runner` alone and under `accelerate launch`
(two CPU processes, gloo) give the same loss trajectory and the same evaluation numbers.

The spec fine-tunes tiny-random (2 micro-batches per step: one per process), unlearns with
grad_diff (2 micro-batches per step) and runs the relearning attack (1 micro-batch per step:
the second process runs a zero-weighted one), then evaluates with every example scored on one
process and gathered.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lib import cache, runner
from lib.benchmarks import tofu
from lib.benchmarks.tofu_suite import EvalSpec
from lib.specs import ModelSpec, TrainSpec


def _spec() -> tofu.UnlearnSpec:
    model = ModelSpec("tiny-random", dtype="float32", device="cpu")
    data = tofu.DataSpec(n_authors=10, qa_per_author=4)
    target = tofu.FinetuneSpec(
        model, data, "full", TrainSpec(epochs=1, lr=1e-3, batch_size=4, grad_accum=2)
    )
    (spec,) = tofu.unlearn_specs(
        target,
        ["grad_diff"],
        TrainSpec(epochs=2, lr=1e-3, batch_size=1, grad_accum=2, warmup_ratio=0.0),
        EvalSpec(n_retain=6, n_probes=6, max_new_tokens=4),
        tofu.RelearnSpec(epochs=1, batch_size=1),
    )
    return spec


def _run(spec_file: Path, cache_dir: Path, processes: int) -> None:
    env = {**os.environ, "STUDY_CACHE_DIR": str(cache_dir), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "lib.runner", "run", str(spec_file)]
    if processes > 1:
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
        command = [*launch, "--num_processes", str(processes), *command[1:]]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def results(tmp_path_factory, tiny_tokenizer):
    tmp = tmp_path_factory.mktemp("distributed")
    spec = _spec()
    spec_file = runner.write_spec(spec, tmp / "spec.json")
    tokenizer_dir = Path(tiny_tokenizer.name_or_path)
    loaded = {}
    for processes in (1, 2):
        cache_dir = tmp / f"cache{processes}"
        # the tokenizer is built from the GGUF in seconds; not under test here
        (cache_dir / "models").mkdir(parents=True)
        os.symlink(tokenizer_dir, cache_dir / "models" / tokenizer_dir.name)
        _run(spec_file, cache_dir, processes)
        entry = cache_dir / "runs" / runner.key(spec)
        assert cache.is_sealed(entry)
        loaded[processes] = cache.load_tree(entry)
    return loaded


def test_two_processes_follow_the_same_loss_trajectory(results):
    one, two = results[1], results[2]
    assert [e["step"] for e in one.log] == [e["step"] for e in two.log] == [1, 2, 3, 4]
    for a, b in zip(one.log, two.log, strict=True):
        for key in ("loss", "forget_nll", "retain_nll", "grad_norm", "lr"):
            assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-7), (key, a, b)
    assert one.cost["steps"] == two.cost["steps"] == 4
    assert one.cost["flops"] == two.cost["flops"]  # tokens counted over both processes


def test_two_processes_give_the_same_evaluation(results):
    one, two = results[1], results[2]
    n = len(one.stats.forget.logprobs)
    assert n == len(two.stats.forget.logprobs) == 4  # every example once
    for a, b in zip(one.stats.forget.logprobs, two.stats.forget.logprobs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert one.stats.forget_gen == two.stats.forget_gen
    assert one.stats.eval_tokens == two.stats.eval_tokens
    for key, value in one.metrics.items():
        assert two.metrics[key] == pytest.approx(value, rel=1e-5, abs=1e-6, nan_ok=True), key
    for key, value in one.relearn.items():
        assert two.relearn[key] == pytest.approx(value, rel=1e-5, abs=1e-6, nan_ok=True), key
