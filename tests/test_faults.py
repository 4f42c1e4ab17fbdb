"""Runs survive faults and lose nothing: a diverging run, kill -9 in the middle of a sweep,
half-written cache entries, out-of-memory advice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lib import cache, runner
from lib.benchmarks import tofu
from lib.benchmarks.tofu_suite import EvalSpec
from lib.methods.gradient import GradAscent
from lib.specs import ModelSpec, TrainSpec

METHODS = ["ga", "grad_diff", "npo", "idk"]


def _specs(methods=METHODS, epochs: float = 1.0, data_seed: int = 3) -> list[tofu.UnlearnSpec]:
    data = tofu.DataSpec(n_authors=6, qa_per_author=4, seed=data_seed)
    target = tofu.FinetuneSpec(
        ModelSpec("tiny-random"), data, "full", TrainSpec(epochs=1, lr=1e-3, batch_size=8)
    )
    return tofu.unlearn_specs(
        target,
        methods,
        TrainSpec(epochs=epochs, lr=1e-3, batch_size=4),
        EvalSpec(n_retain=4, n_probes=4, max_new_tokens=4),
        tofu.RelearnSpec(epochs=1),
    )


def test_a_diverging_run_is_recorded_and_the_sweep_goes_on(monkeypatch):
    calls = {"n": 0}
    original = GradAscent.loss

    def nan_at_the_second_step(self, model, batch, reference):
        calls["n"] += 1
        loss, logs = original(self, model, batch, reference)
        return (loss * float("nan") if calls["n"] == 2 else loss), logs

    monkeypatch.setattr(GradAscent, "loss", nan_at_the_second_step)
    results = runner.sweep(_specs(["ga", "grad_diff"], epochs=2.0, data_seed=4))
    ga, grad_diff = results
    assert ga.status == "diverged" and "non-finite" in ga.message
    assert ga.cost["steps"] == 1  # the last good step was kept and evaluated
    assert 0 <= ga.metrics["forget_quality"] <= 1 and "model_utility" in ga.metrics
    assert grad_diff.status == "ok" and grad_diff.cost["steps"] == 2
    assert runner.run(_specs(["ga"], epochs=2.0, data_seed=4)[0]).status == "diverged"  # cached


SWEEP = """
import sys
from tests.test_faults import _specs
from lib import runner
runner.sweep(_specs())
"""


def _sealed(cache_dir: Path) -> dict[str, int]:
    runs = cache_dir / "runs"
    if not runs.exists():
        return {}
    return {
        p.name: (p / "state.json").stat().st_mtime_ns
        for p in runs.iterdir()
        if not p.name.startswith(".") and (p / "checksums.json").exists()
    }


def test_kill_9_in_the_middle_of_a_sweep_then_resume(tmp_path, monkeypatch, tiny_tokenizer):
    cache_dir = tmp_path / "cache"
    tokenizer_dir = Path(tiny_tokenizer.name_or_path)
    (cache_dir / "models").mkdir(parents=True)
    os.symlink(tokenizer_dir, cache_dir / "models" / tokenizer_dir.name)
    env = {**os.environ, "STUDY_CACHE_DIR": str(cache_dir), "OMP_NUM_THREADS": "1"}
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-c", SWEEP], cwd=root, env=env, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while len(_sealed(cache_dir)) < 2 and time.monotonic() < deadline:
        assert process.poll() is None, "the sweep ended before it could be killed"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # in the middle of the third run
    process.wait()
    before = _sealed(cache_dir)
    assert len(before) == 2, "the sweep was not killed in the middle"

    monkeypatch.setenv("STUDY_CACHE_DIR", str(cache_dir))
    specs = _specs()
    computed: list[str] = []
    compute = runner.TASKS[tofu.UnlearnSpec]

    def counting(spec):
        computed.append(spec.method)
        return compute(spec)

    monkeypatch.setitem(runner.TASKS, tofu.UnlearnSpec, counting)
    results = runner.sweep(specs)
    assert computed == METHODS[2:]  # finished runs were not recomputed ...
    after = _sealed(cache_dir)
    assert all(after[key] == mtime for key, mtime in before.items())  # ... nor rewritten
    assert len(after) == len(METHODS) and all(
        cache.is_sealed(cache_dir / "runs" / k) for k in after
    )
    assert [r.method for r in results] == METHODS and all(r.status == "ok" for r in results)
    leftovers = [p for p in cache_dir.rglob(".*") if p.name not in (".", "..")]
    assert leftovers == [], f"half-written temporaries left: {leftovers}"


def test_temporaries_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    stale_dir = tmp_path / f".abc123.{dead_pid}.x7k2m9q1"
    stale_dir.mkdir()
    (stale_dir / "half.bin").write_bytes(b"half")
    stale_file = tmp_path / f".state.json.{dead_pid}.q8w7e6r5.tmp"
    stale_file.write_text("{")
    live = tmp_path / f".abc123.{os.getpid()}.a1b2c3d4"
    live.mkdir()
    assert cache.remove_stale_temporaries(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name]


def test_out_of_memory_names_the_batch_size_to_try():
    model = torch.nn.Linear(2, 1)

    def loss_fn(_m, _x):
        raise torch.OutOfMemoryError("CUDA out of memory")

    spec = TrainSpec(batch_size=16, grad_accum=2)
    with pytest.raises(RuntimeError, match="batch_size=8 with grad_accum=4"):
        from lib.train import train

        train(model, [torch.zeros(2)], 1, loss_fn, spec, desc="oom")
