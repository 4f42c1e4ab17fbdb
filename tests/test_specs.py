"""lib.specs: stable cache keys, validation of every field, JSON round trips."""

from __future__ import annotations

import dataclasses

import pytest

from lib import specs
from lib.benchmarks import tofu
from lib.benchmarks.tofu_suite import EvalSpec
from lib.specs import LoraSpec, ModelSpec, TrainSpec, canonical_json, from_dict, spec_key, to_dict


def _finetune_spec() -> tofu.FinetuneSpec:
    return tofu.FinetuneSpec(ModelSpec("tiny-random"), tofu.DataSpec(), "full", TrainSpec())


def _unlearn_spec() -> tofu.UnlearnSpec:
    return tofu.UnlearnSpec(_finetune_spec(), "npo", TrainSpec(), hparams=(("beta", 0.1),))


_CHOICES = {
    "forget_split": "forget05",
    "schedule": "cosine",
    "dtype": "float32",
    "device": "cpu",
    "name": "tiny-randomx",
    "method": "npox",
    "split": "fullx",
    "source": "tofu",
    "path": "some/folder",
}


def _variants(value):
    """One valid modified copy per field of a (nested) spec dataclass."""
    for f in dataclasses.fields(value):
        current = getattr(value, f.name)
        if dataclasses.is_dataclass(current):
            for inner in _variants(current):
                yield f"{f.name}.{inner[0]}", dataclasses.replace(value, **{f.name: inner[1]})
            continue
        if f.name in _CHOICES:
            changed = _CHOICES[f.name]
        elif current is None:
            changed = LoraSpec()
        elif isinstance(current, bool):
            changed = not current
        elif isinstance(current, float) and current < 1:
            changed = current / 2
        elif isinstance(current, (int, float)):
            changed = current + 1
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


@pytest.mark.parametrize("make", [_finetune_spec, _unlearn_spec], ids=["finetune", "unlearn"])
def test_spec_key_changes_with_every_field(make):
    from lib import runner

    base = make()
    keys = {"base": runner.key(base)}
    for name, variant in _variants(base):
        assert runner.key(variant) != runner.key(base), f"changing {name} kept the key"
        keys[name] = runner.key(variant)
    assert len(set(keys.values())) == len(keys)
    assert len(keys) > 15  # every nested field was visited


def test_cache_version_is_part_of_the_key(monkeypatch):
    before = _finetune_spec().key()
    monkeypatch.setattr(specs, "CACHE_VERSION", specs.CACHE_VERSION + 1)
    assert _finetune_spec().key() != before


@pytest.mark.parametrize("make", [_finetune_spec, _unlearn_spec], ids=["finetune", "unlearn"])
def test_specs_round_trip_through_json(make):
    spec = make()
    back = from_dict(type(spec), to_dict(spec))
    assert back == spec and spec_key(back) == spec_key(spec)
    with_lora = dataclasses.replace(spec, train=dataclasses.replace(spec.train, lora=LoraSpec()))
    assert from_dict(type(spec), to_dict(with_lora)) == with_lora
    with pytest.raises(KeyError, match="no field"):
        from_dict(TrainSpec, {"epochs": 1, "learning_rate": 1.0})


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: TrainSpec(epochs=0), "epochs must be > 0"),
        (lambda: TrainSpec(epochs=-1.0), "epochs must be > 0"),
        (lambda: TrainSpec(lr=0), "lr must be > 0"),
        (lambda: TrainSpec(batch_size=0), "batch_size"),
        (lambda: TrainSpec(grad_accum=1.5), "grad_accum"),
        (lambda: TrainSpec(max_length=0), "max_length"),
        (lambda: TrainSpec(schedule="step"), "linear"),
        (lambda: TrainSpec(warmup_ratio=1.0), "warmup_ratio"),
        (lambda: ModelSpec(dtype="fp16"), "auto"),
        (lambda: ModelSpec(device="gpu"), "cuda:N"),
        (lambda: ModelSpec(name=""), "registry name"),
        (lambda: LoraSpec(r=0), "r must be > 0"),
        (lambda: EvalSpec(n_retain=0), "n_retain"),
        (lambda: tofu.DataSpec(forget_split="forget20"), "forget01"),
    ],
)
def test_bad_values_raise_naming_the_allowed_ones(make, match):
    with pytest.raises(ValueError, match=match):
        make()
