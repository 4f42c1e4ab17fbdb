"""The TOFU-style protocol (lib.benchmarks.tofu) on tiny-random: fine-tuning, the sweep, the
cache (resume, no recomputation, no pickle) and validation before any work."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import pandas as pd
import pytest

from lib import cache, runner
from lib.benchmarks import tofu
from lib.benchmarks.tofu_suite import EvalSpec
from lib.specs import ModelSpec, TrainSpec

METHODS = ["ga", "retrain", "icul"]
HEADLINE = [
    "forget_fact_acc",
    "paraphrase_fact_acc",
    "forget_quality",
    "model_utility",
    "forget_rouge",
    "mia_auc",
    "relearn_fact_acc",
    "relearn_recovery",
    "flops",
    "seconds",
]


class NoWorkAllowed(AssertionError):
    """Raised by monkeypatched expensive steps: reaching one fails the test."""


def _forbid(*_args, **_kwargs):
    raise NoWorkAllowed("expensive work was started")


def _target(**data_overrides) -> tofu.FinetuneSpec:
    data = tofu.DataSpec(
        **{"n_authors": 6, "qa_per_author": 4, "forget_split": "forget10", **data_overrides}
    )
    return tofu.FinetuneSpec(
        ModelSpec("tiny-random"), data, "full", TrainSpec(epochs=1, lr=1e-3, batch_size=8)
    )


EVAL = EvalSpec(n_retain=6, n_probes=6, max_new_tokens=4)
UNLEARN = TrainSpec(epochs=1, lr=1e-4, batch_size=4)


def _specs(methods=METHODS, hparams=None, target=None) -> list[tofu.UnlearnSpec]:
    return tofu.unlearn_specs(
        target or _target(), methods, UNLEARN, EVAL, tofu.RelearnSpec(epochs=1), hparams
    )


def _entry(spec) -> object:
    return cache.entry_dir("runs", runner.key(spec))


@pytest.fixture(scope="module")
def setup_table() -> pd.DataFrame:
    return tofu.setup_table(_target(), EVAL)


@pytest.fixture(scope="module")
def resumed(setup_table) -> SimpleNamespace:
    """The sweep of these tests, run as an interrupted sweep that then resumes.

    The first call fails on its 2nd spec ("retrain"); the second call must serve "ga" from the
    cache (no unlearning) and compute the rest.
    """
    specs = _specs()
    calls: list[str] = []
    compute = runner.TASKS[tofu.UnlearnSpec]

    def failing(spec):
        calls.append(spec.method)
        if spec.method == "retrain":
            raise RuntimeError("interrupted")
        return compute(spec)

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(runner.TASKS, tofu.UnlearnSpec, failing)
        with pytest.raises(RuntimeError, match="interrupted"):
            runner.sweep(specs)
    done = {s.method: cache.is_sealed(_entry(s)) for s in specs}
    ga_state = (_entry(specs[0]) / "state.json").stat().st_mtime_ns

    computed: list[str] = []

    def counting(spec):
        computed.append(spec.method)
        return compute(spec)

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(runner.TASKS, tofu.UnlearnSpec, counting)
        results = runner.sweep(specs)
    return SimpleNamespace(
        specs=specs,
        results=results,
        table=tofu.results_table(results, METHODS),
        first_calls=calls,
        done_after_interrupt=done,
        ga_mtime=ga_state,
        computed_on_resume=computed,
    )


# --------------------------------------------------------------------------- setup and sweep


def test_setup_rows(setup_table):
    assert list(setup_table.index) == ["base", "target", "retrain", "retrain (seed 2)"]
    assert setup_table.loc["retrain", "forget_quality"] == 1.0
    assert setup_table.loc["retrain", "privleak"] == 0.0
    assert {"forget_fact_acc", "forget_quality", "model_utility", "mia_auc"} <= set(setup_table)
    assert tofu.oracle_of(_target(), 1).train.seed == _target().train.seed + 1
    for spec in (_target(), tofu.oracle_of(_target()), tofu.oracle_of(_target(), 1)):
        folder = tofu.finetuned(spec)
        assert (folder / "config.json").exists() and cache.is_sealed(folder)
        record = tofu.train_record(spec)
        assert record["steps"] >= 1 and record["n_params"] > 0 and not record["diverged"]


def test_finetuning_is_cached(setup_table, monkeypatch):
    monkeypatch.setattr(tofu, "train", _forbid)
    assert (tofu.finetuned(_target()) / "train.json").exists()
    assert tofu.train_record(tofu.oracle_of(_target()))["steps"] >= 1


def test_sweep_rows_in_order_with_headline_columns(resumed):
    table = resumed.table
    assert list(table.index) == METHODS
    assert set(HEADLINE) <= set(table.columns)
    assert table.loc["retrain", "forget_quality"] == 1.0
    assert table.loc["ga", "steps"] == 1  # 4 forget QA, batch 4, 1 epoch
    assert table.loc["ga", "flops"] > 0
    assert table.loc["retrain", "flops"] > table.loc["ga", "flops"]
    assert table.loc["icul", "flops"] == 0.0
    assert table.loc["icul", "inference_overhead"] > 0  # the context lengthens every prompt
    assert (table["status"] == "ok").all()


def test_interrupted_sweep_resumes_without_recomputing(resumed):
    assert resumed.first_calls == ["ga", "retrain"]
    assert resumed.done_after_interrupt == {"ga": True, "retrain": False, "icul": False}
    assert resumed.computed_on_resume == ["retrain", "icul"]  # "ga" came from the cache ...
    state = _entry(resumed.specs[0]) / "state.json"
    assert state.stat().st_mtime_ns == resumed.ga_mtime  # ... and was not rewritten
    assert all(cache.is_sealed(_entry(s)) for s in resumed.specs)


def test_second_sweep_is_served_from_cache(resumed, monkeypatch):
    monkeypatch.setitem(runner.TASKS, tofu.UnlearnSpec, _forbid)
    monkeypatch.setattr(tofu, "train", _forbid)
    monkeypatch.setattr(tofu, "collect", _forbid)
    again = runner.sweep(resumed.specs)
    pd.testing.assert_frame_equal(tofu.results_table(again, METHODS), resumed.table)


def test_cached_result_is_plain_json_and_npz(resumed):
    folder = _entry(resumed.specs[0])
    assert sorted(p.name for p in folder.iterdir()) == [
        "arrays.npz",
        "checksums.json",
        "spec.json",
        "state.json",
    ]
    assert json.loads((folder / "spec.json").read_text())["method"] == "ga"
    result = runner.run(resumed.specs[0])
    assert isinstance(result, tofu.RunResult) and result.method == "ga"
    forget = tofu.benchmark_data(_target().data).forget
    assert len(result.stats.forget_gen) == len(forget)
    assert len(result.stats.forget.logprobs) == len(forget)
    assert result.log and result.log[0]["step"] == 1


# --------------------------------------------------------------------------- validation first


def test_unknown_method_fails_before_any_work(monkeypatch):
    monkeypatch.setattr(tofu, "finetuned", _forbid)
    monkeypatch.setattr(runner, "run", _forbid)
    with pytest.raises(KeyError, match="nope") as info:
        _specs(["ga", "nope"])
    assert "grad_diff" in str(info.value)  # lists the known methods


def test_bad_hyperparameters_fail_before_any_work(monkeypatch):
    monkeypatch.setattr(tofu, "finetuned", _forbid)
    with pytest.raises(ValueError, match="rmu layer must be in"):
        _specs(["ga", "rmu"], {"rmu": {"layer": 2}})  # tiny-random has 2 layers
    with pytest.raises(KeyError, match="lr"):
        _specs(["npo"], {"npo": {"lr": 1.0}})
    with pytest.raises(KeyError, match="not run"):
        _specs(["ga"], {"npo": {"beta": 1.0}})


@pytest.mark.parametrize(
    ("method", "hparams"),
    [
        ("npo", {"nll_reduction": "median"}),
        ("ga_kl", {"kl_mask": "all"}),
        ("icul", {"n_demonstrations": -1}),
    ],
)
def test_every_bad_option_fails_before_any_work(monkeypatch, method, hparams):
    monkeypatch.setattr(tofu, "finetuned", _forbid)
    with pytest.raises(ValueError):
        _specs([method], {method: hparams})


def test_unlearn_spec_keys():
    (a,) = _specs(["npo"], {"npo": {"beta": 0.5, "alpha": 2.0}})
    (b,) = _specs(["npo"], {"npo": {"alpha": 2.0, "beta": 0.5}})
    assert a == b and runner.key(a) == runner.key(b)  # hyperparameter order does not matter
    (c,) = _specs(["npo"], {"npo": {"beta": 0.6, "alpha": 2.0}})
    assert runner.key(a) != runner.key(c)
    (d,) = _specs(["npo"], target=_target(seed=1))
    assert runner.key(d) != runner.key(_specs(["npo"])[0])
    assert _target().key() != tofu.oracle_of(_target()).key()
    assert tofu.oracle_of(_target()).split == "retain10"
    seeds = tofu.unlearn_specs(_target(), ["ga"], UNLEARN, EVAL, None, seeds=[3, 4])
    assert [s.train.seed for s in seeds] == [3, 4]


# --------------------------------------------------------------------------- probes


def test_probe_answers_are_cached(monkeypatch, tiny_tokenizer):
    budgets: list[int] = []

    def fake_generate(model, tokenizer, questions, context="", max_new_tokens=32, **_kw):
        budgets.append(max_new_tokens)
        return [""] * len(questions)

    model = ModelSpec("tiny-random", device="cpu")  # a probe cache entry of its own
    monkeypatch.setattr(tofu, "generate", fake_generate)
    first, filtered = tofu.probes(model, replace(EVAL, max_new_tokens=4))
    assert budgets == [4]
    assert len(first) == 6 and not filtered  # nothing known: all kept unfiltered, cut to 6
    monkeypatch.setattr(tofu, "load_base", _forbid)
    assert tofu.probes(model, replace(EVAL, max_new_tokens=4))[0] == first  # from the cache
    assert budgets == [4]
    monkeypatch.setattr(tofu, "load_base", lambda _m: None)
    tofu.probes(model, replace(EVAL, max_new_tokens=5))
    assert budgets == [4, 5]  # the answers depend on the generation budget
