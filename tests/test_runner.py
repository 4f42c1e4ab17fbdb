"""lib.runner: the task registry, cached runs and sweeps, spec files."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from lib import cache, runner
from lib.benchmarks import tofu
from lib.benchmarks.tofu_suite import EvalSpec
from lib.specs import ModelSpec, TrainSpec


@dataclass(frozen=True)
class SquareSpec:
    """A toy task: square a number (counts its computations)."""

    x: int
    diverge: bool = False


CALLS: list[int] = []


@runner.task(SquareSpec)
def _square(spec: SquareSpec) -> dict:
    CALLS.append(spec.x)
    return {"x": spec.x, "y": spec.x**2, "status": "diverged" if spec.diverge else "ok"}


def test_run_computes_once_then_reads_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDY_CACHE_DIR", str(tmp_path))
    CALLS.clear()
    assert runner.run(SquareSpec(3))["y"] == 9
    assert runner.run(SquareSpec(3))["y"] == 9
    assert CALLS == [3]
    assert runner.is_done(SquareSpec(3)) and not runner.is_done(SquareSpec(4))


def test_sweep_keeps_order_and_goes_on_after_a_diverged_run(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDY_CACHE_DIR", str(tmp_path))
    CALLS.clear()
    specs = [SquareSpec(2), SquareSpec(5, diverge=True), SquareSpec(1)]
    results = runner.sweep(specs)
    assert [r["y"] for r in results] == [4, 25, 1]
    assert [r["status"] for r in results] == ["ok", "diverged", "ok"]
    assert CALLS == [2, 5, 1]
    runner.sweep(specs)
    assert CALLS == [2, 5, 1]  # everything came from the cache


def test_unregistered_specs_fail_before_any_work(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDY_CACHE_DIR", str(tmp_path))
    CALLS.clear()

    @dataclass(frozen=True)
    class Unknown:
        a: int = 1

    with pytest.raises(KeyError, match="no task registered for Unknown"):
        runner.sweep([SquareSpec(7), Unknown()])
    assert CALLS == []
    with pytest.raises(KeyError, match="registered twice"):
        runner.task(SquareSpec)(_square)


def test_keys_name_the_task():
    assert runner.key(SquareSpec(1)) != runner.key(SquareSpec(2))
    assert runner.task_name(SquareSpec(1)).endswith(":SquareSpec")


def test_spec_files_round_trip(tmp_path):
    target = tofu.FinetuneSpec(ModelSpec("tiny-random"), tofu.DataSpec(), "full", TrainSpec())
    (spec,) = tofu.unlearn_specs(
        target, ["npo"], TrainSpec(), EvalSpec(), None, {"npo": {"beta": 0.2}}
    )
    path = runner.write_spec(spec, tmp_path / "spec.json")
    assert json.loads(path.read_text())["task"] == "lib.benchmarks.tofu:UnlearnSpec"
    back = runner.read_spec(path)
    assert back == spec and runner.key(back) == runner.key(spec)


def test_spec_files_only_name_tasks_of_lib(tmp_path):
    path = tmp_path / "spec.json"
    cache.atomic_write_json(path, {"task": "os:system", "spec": {}})
    with pytest.raises(ValueError, match="not defined in lib"):
        runner.read_spec(path)
    cache.atomic_write_json(path, {"spec": {}})
    with pytest.raises(ValueError, match="expected"):
        runner.read_spec(path)
