"""Tests of lib.runner (the cached Study) and lib.specs (cache keys), on tiny-random."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

import lib.runner as runner
from lib import paths, specs
from lib.runner import (
    RelearnSpec,
    Study,
    atomic_write_bytes,
    read_pickle,
    write_json,
    write_pickle,
)
from lib.specs import (
    DataSpec,
    FinetuneSpec,
    LoraSpec,
    ModelSpec,
    TrainSpec,
    UnlearnSpec,
    canonical_json,
    spec_key,
)
from lib.suite import EvalSpec

METHODS = ["ga", "retrain", "icul"]
HEADLINE = [
    "forget_quality",
    "model_utility",
    "forget_rouge",
    "mia_auc",
    "relearn_recovery",
    "flops",
    "seconds",
]


class NoWorkAllowed(AssertionError):
    """Raised by monkeypatched expensive steps: reaching one fails the test."""


def _forbid(*_args, **_kwargs):
    raise NoWorkAllowed("expensive work was started")


def _new_study(**data_overrides) -> Study:
    return Study(
        ModelSpec("tiny-random"),
        DataSpec(
            **{"n_authors": 6, "qa_per_author": 4, "forget_split": "forget10", **data_overrides}
        ),
        TrainSpec(epochs=1, lr=1e-3, batch_size=8),
        TrainSpec(epochs=1, lr=1e-4, batch_size=4),
        EvalSpec(n_retain=6, n_probes=6, max_new_tokens=4),
        RelearnSpec(epochs=1),
    )


@pytest.fixture(scope="module")
def study(tiny_tokenizer) -> Study:
    return _new_study()


@pytest.fixture(scope="module")
def setup_table(study) -> pd.DataFrame:
    return study.setup()


def _result_json(study: Study, method: str) -> Path:
    return study.cache / "runs" / study.unlearn_spec_for(method).key() / "result.json"


@pytest.fixture(scope="module")
def resumed(study, setup_table) -> SimpleNamespace:
    """The sweep of these tests, run as an interrupted sweep that then resumes.

    The first call fails on its 2nd method ("retrain"); the second call must serve "ga" from the
    cache (no `_unlearn`) and compute the rest.
    """
    calls: list[str] = []
    original_run = Study.run

    def failing_run(self, name, *args, **kwargs):
        calls.append(name)
        if name == "retrain":
            raise RuntimeError("interrupted")
        return original_run(self, name, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Study, "run", failing_run)
        with pytest.raises(RuntimeError, match="interrupted"):
            study.sweep(METHODS)
    done = {m: _result_json(study, m).exists() for m in METHODS}
    ga_record = json.loads(_result_json(study, "ga").read_text())
    ga_mtime = _result_json(study, "ga").stat().st_mtime_ns

    unlearned: list[str] = []
    original_unlearn = Study._unlearn

    def counting_unlearn(self, method, spec):
        unlearned.append(method.name)
        return original_unlearn(self, method, spec)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Study, "_unlearn", counting_unlearn)
        table = study.sweep(METHODS)
    return SimpleNamespace(
        table=table,
        first_calls=calls,
        done_after_interrupt=done,
        ga_record=ga_record,
        ga_mtime=ga_mtime,
        unlearned_on_resume=unlearned,
    )


# --------------------------------------------------------------------------- setup and sweep


def test_setup_rows(setup_table, study):
    assert list(setup_table.index) == ["base", "target", "retrain"]
    assert setup_table.loc["retrain", "forget_quality"] == 1.0
    assert setup_table.loc["retrain", "privleak"] == 0.0
    assert {"forget_quality", "model_utility", "forget_rouge", "mia_auc"} <= set(setup_table)
    assert study.cache == paths.cache_dir()
    for spec in (study.target_spec, study.oracle_spec):
        run_dir = study.cache / "runs" / spec.key()
        assert (run_dir / "checkpoint" / "config.json").exists()
        record = json.loads((run_dir / "train.json").read_text())
        assert record["steps"] >= 1 and record["n_params"] > 0 and not record["diverged"]


def test_finetuning_is_cached(setup_table, study, monkeypatch):
    monkeypatch.setattr(runner, "train", _forbid)
    assert study.finetuned(study.target_spec).name == "checkpoint"
    assert study.train_record(study.oracle_spec)["steps"] >= 1


def test_sweep_rows_in_order_with_headline_columns(resumed, study):
    table = resumed.table
    assert list(table.index) == METHODS
    assert set(HEADLINE) <= set(table.columns)
    assert table.loc["retrain", "forget_quality"] == 1.0
    assert table.loc["ga", "steps"] == 1  # 4 forget QA, batch 4, 1 epoch
    assert table.loc["ga", "flops"] > 0
    assert table.loc["retrain", "flops"] > table.loc["ga", "flops"]
    assert table.loc["icul", "flops"] == 0.0
    assert table.loc["icul", "inference_overhead"] > 0  # the context lengthens every prompt
    assert set(study.results) == set(METHODS)


def test_interrupted_sweep_resumes_without_recomputing(resumed, study):
    assert resumed.first_calls == ["ga", "retrain"]
    assert resumed.done_after_interrupt == {"ga": True, "retrain": False, "icul": False}
    assert resumed.unlearned_on_resume == []  # "ga" came from the cache ...
    assert _result_json(study, "ga").stat().st_mtime_ns == resumed.ga_mtime  # ... not rewritten
    assert resumed.table.loc["ga", "forget_quality"] == pytest.approx(
        resumed.ga_record["forget_quality"]
    )
    assert all(_result_json(study, m).exists() for m in METHODS)


def test_second_sweep_is_served_from_cache(resumed, study, monkeypatch):
    monkeypatch.setattr(Study, "_unlearn", _forbid)
    monkeypatch.setattr(Study, "_relearn", _forbid)
    monkeypatch.setattr(Study, "finetuned", _forbid)
    monkeypatch.setattr(runner, "collect", _forbid)
    again = study.sweep(METHODS)
    pd.testing.assert_frame_equal(again, resumed.table)


def test_cached_result_pickle_holds_the_statistics(resumed, study):
    run_dir = _result_json(study, "ga").parent
    result = read_pickle(run_dir / "result.pkl")
    assert result.method == "ga"
    assert len(result.stats.forget_gen) == len(study.forget)
    assert json.loads((run_dir / "spec.json").read_text())["method"] == "ga"
    assert sorted(p.name for p in run_dir.iterdir()) == ["result.json", "result.pkl", "spec.json"]


# --------------------------------------------------------------------------- validation first


def test_unknown_method_fails_before_any_work(monkeypatch):
    study = _new_study()
    monkeypatch.setattr(Study, "finetuned", _forbid)
    monkeypatch.setattr(Study, "run", _forbid)
    with pytest.raises(KeyError, match="nope") as info:
        study.sweep(["ga", "nope"])
    assert "grad_diff" in str(info.value)  # lists the known methods


def test_bad_hyperparameters_fail_before_any_work(monkeypatch):
    study = _new_study()
    monkeypatch.setattr(Study, "finetuned", _forbid)
    monkeypatch.setattr(Study, "run", _forbid)
    with pytest.raises(ValueError, match="rmu layer must be in"):
        study.sweep(["ga", "rmu"], {"rmu": {"layer": 2}})  # tiny-random has 2 layers
    with pytest.raises(KeyError, match="lr"):
        study.sweep(["npo"], {"npo": {"lr": 1.0}})
    with pytest.raises(KeyError, match="not run"):
        study.sweep(["ga"], {"npo": {"beta": 1.0}})


@pytest.mark.parametrize(
    ("method", "hparams"),
    [
        ("npo", {"nll_reduction": "median"}),
        ("ga_kl", {"kl_mask": "all"}),
        ("icul", {"n_demonstrations": -1}),
    ],
)
def test_every_bad_option_fails_before_any_work(monkeypatch, method, hparams):
    study = _new_study()
    monkeypatch.setattr(Study, "finetuned", _forbid)
    monkeypatch.setattr(Study, "run", _forbid)
    with pytest.raises(ValueError):
        study.sweep([method], {method: hparams})


def test_bad_forget_split():
    with pytest.raises(ValueError, match="forget_split"):
        _new_study(forget_split="forget20")
    with pytest.raises(ValueError, match="forget_split"):
        _new_study(forget_split="retain10")


def _probe_study(max_new_tokens: int, dtype: str = "auto") -> Study:
    # device="cpu" gives a model spec (and probe cache file) of its own, apart from `study`.
    return Study(
        ModelSpec("tiny-random", dtype=dtype, device="cpu"),
        DataSpec(n_authors=6, qa_per_author=4),
        TrainSpec(),
        TrainSpec(),
        EvalSpec(n_retain=6, n_probes=6, max_new_tokens=max_new_tokens),
    )


def test_probe_answers_are_cached(monkeypatch, tiny_tokenizer):
    budgets: list[int] = []

    def fake_generate(model, tokenizer, questions, context="", max_new_tokens=32, **_kw):
        budgets.append(max_new_tokens)
        return [""] * len(questions)

    monkeypatch.setattr(runner, "generate", fake_generate)
    first = _probe_study(4).probes()
    assert budgets == [4]
    assert len(first) == 6  # nothing known: all probes kept unfiltered, then cut to n_probes
    monkeypatch.setattr(Study, "load_base", _forbid)
    assert _probe_study(4).probes() == first  # same spec: read from the cache
    assert budgets == [4]


def test_probe_cache_depends_on_the_generation_budget(monkeypatch, tiny_tokenizer):
    budgets: list[int] = []

    def fake_generate(model, tokenizer, questions, context="", max_new_tokens=32, **_kw):
        budgets.append(max_new_tokens)
        return [""] * len(questions)

    monkeypatch.setattr(runner, "generate", fake_generate)
    _probe_study(5, dtype="float32").probes()
    _probe_study(40, dtype="float32").probes()
    assert budgets == [5, 40]


# --------------------------------------------------------------------------- spec keys


def _finetune_spec() -> FinetuneSpec:
    return FinetuneSpec(ModelSpec("tiny-random"), DataSpec(), "full", TrainSpec())


def _variants(value):
    """One modified copy per field of a (nested) spec dataclass."""
    for f in dataclasses.fields(value):
        current = getattr(value, f.name)
        if dataclasses.is_dataclass(current):
            for inner in _variants(current):
                yield f"{f.name}.{inner[0]}", dataclasses.replace(value, **{f.name: inner[1]})
            continue
        if current is None:
            changed = LoraSpec()
        elif isinstance(current, bool):
            changed = not current
        elif isinstance(current, (int, float)):
            changed = current + 1
        elif isinstance(current, str):
            changed = current + "x"
        elif isinstance(current, tuple):
            changed = (*current, ("extra", 1))
        else:
            raise AssertionError(f"no variant for {f.name}={current!r}")
        yield f.name, dataclasses.replace(value, **{f.name: changed})


def test_spec_keys_are_stable():
    a, b = _finetune_spec(), _finetune_spec()
    assert a is not b and a.key() == b.key() == a.key()
    assert len(a.key()) == 16 and int(a.key(), 16) >= 0
    assert spec_key({"a": 1, "b": [1, 2]}) == spec_key({"b": [1, 2], "a": 1})
    assert canonical_json({"b": 1, "a": {"d": 2, "c": 3}}) == '{"a":{"c":3,"d":2},"b":1}'


def test_finetune_spec_key_changes_with_every_field():
    base = _finetune_spec()
    keys = {"base": base.key()}
    for name, variant in _variants(base):
        assert variant.key() != base.key(), f"changing {name} kept the key"
        keys[name] = variant.key()
    assert len(set(keys.values())) == len(keys)
    assert len(keys) > 15  # every nested field was visited


def test_unlearn_spec_key_changes_with_every_field():
    base = UnlearnSpec(_finetune_spec(), "npo", (("beta", 0.1),), TrainSpec())
    for name, variant in _variants(base):
        assert variant.key() != base.key(), f"changing {name} kept the key"
    assert base.key() != _finetune_spec().key()
    assert base.hparams_dict == {"beta": 0.1}


def test_cache_version_is_part_of_the_key(monkeypatch):
    before = _finetune_spec().key()
    monkeypatch.setattr(specs, "CACHE_VERSION", specs.CACHE_VERSION + 1)
    assert _finetune_spec().key() != before


def test_study_unlearn_spec_keys():
    study = _new_study()
    a = study.unlearn_spec_for("npo", {"beta": 0.5, "alpha": 2.0})
    b = study.unlearn_spec_for("npo", {"alpha": 2.0, "beta": 0.5})
    assert a == b and a.key() == b.key()  # hyperparameter order does not matter
    assert a.key() != study.unlearn_spec_for("npo", {"beta": 0.6, "alpha": 2.0}).key()
    assert a.key() != study.unlearn_spec_for("simnpo", {"beta": 0.5, "alpha": 2.0}).key()
    assert study.unlearn_spec_for("ga").key() == _new_study().unlearn_spec_for("ga").key()
    assert study.target_spec.key() != study.oracle_spec.key()
    assert study.oracle_spec.split == "retain10"
    other = _new_study(seed=1)
    assert other.target_spec.key() != study.target_spec.key()


# --------------------------------------------------------------------------- atomic io


def test_atomic_writes_leave_no_temp_files(tmp_path):
    target = tmp_path / "sub" / "value.json"
    write_json(target, {"a": 1.5, "b": [1, 2]})
    assert json.loads(target.read_text()) == {"a": 1.5, "b": [1, 2]}
    write_json(target, {"a": 2})  # overwrite
    assert json.loads(target.read_text()) == {"a": 2}
    pickled = tmp_path / "value.pkl"
    write_pickle(pickled, {"x": (1, 2)})
    assert read_pickle(pickled) == {"x": (1, 2)}
    atomic_write_bytes(tmp_path / "raw.bin", b"\x00\x01")
    assert (tmp_path / "raw.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "raw.bin",
        "sub",
        "value.json",
        "value.pkl",
    ]


def test_failed_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "value.json"
    write_json(target, {"old": True})

    def broken_replace(_src, _dst):
        raise OSError("disk full")

    monkeypatch.setattr(runner.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_json(target, {"new": True})
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["value.json"]
