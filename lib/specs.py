"""Frozen specifications of work and their cache keys.

A spec fully describes one unit of work (a fine-tuning run, an unlearning run, an evaluation).
`spec_key(spec)` hashes its canonical JSON together with `CACHE_VERSION`, so the on-disk cache
(`lib.cache`) is addressed by *what* was computed, never by when or by which commit. Bump
`CACHE_VERSION` whenever the meaning of a method, metric or data builder changes.

This module holds the specs every experiment shares (model, optimisation, LoRA); benchmarks and
papers define their own spec dataclasses on top and get `to_dict`/`from_dict` for free.

Keys keep the distinction between 1 and 1.0 (JSON writes them differently): a spec built with
`epochs=1` and one with `epochs=1.0` get different keys and merely duplicate a cache entry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

#: Bump when cached results would no longer be reproduced by the current code.
CACHE_VERSION = 2

T = TypeVar("T")


def _canonical(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """Deterministic JSON of a spec (sorted keys, no whitespace)."""
    return json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"))


def spec_key(value: Any, length: int = 16) -> str:
    """Hex digest of the canonical JSON plus `CACHE_VERSION` (the cache address of a spec)."""
    payload = f"v{CACHE_VERSION}:{canonical_json(value)}"
    return hashlib.sha256(payload.encode()).hexdigest()[:length]


def to_dict(spec: Any) -> dict[str, Any]:
    """A spec as plain JSON-ready data (nested dataclasses become dicts)."""
    return json.loads(canonical_json(spec))


def _convert(hint: Any, value: Any) -> Any:
    """Rebuild `value` (plain JSON data) as the type `hint` describes."""
    origin = typing.get_origin(hint)
    if hint is Any or hint is object:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value)
            except (TypeError, ValueError, KeyError) as exc:
                errors.append(str(exc))
        raise TypeError(f"{value!r} matches none of {hint}: {errors}")
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise TypeError(f"expected a mapping for {hint.__name__}, got {value!r}")
        return from_dict(hint, value)
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v) for v in value)
        return tuple(_convert(a, v) for a, v in zip(args, value, strict=True))
    if origin is list:
        (arg,) = typing.get_args(hint) or (Any,)
        return [_convert(arg, v) for v in value]
    if origin is dict:
        args = typing.get_args(hint) or (Any, Any)
        return {k: _convert(args[1], v) for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return value  # keep 1 vs 1.0 as written (see the module docstring)
    return value


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a (nested) spec dataclass from `to_dict`'s output; unknown keys are an error."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = set(data) - names
    if unknown:
        raise KeyError(f"{cls.__name__} has no field(s) {sorted(unknown)}; known: {sorted(names)}")
    return cls(**{k: _convert(hints[k], v) for k, v in data.items()})


# --------------------------------------------------------------------------- shared specs
SCHEDULES = ("linear", "constant", "cosine")
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")


def _positive(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{owner}.{name} must be > 0, got {value!r}")


@dataclass(frozen=True)
class LoraSpec:
    """LoRA adapters through peft (None in a TrainSpec = full-parameter training)."""

    r: int = 16  # adapter rank
    alpha: int = 32  # scaling numerator (scale = alpha / r)
    dropout: float = 0.0  # adapter dropout
    target_modules: tuple[str, ...] = (
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    )

    def __post_init__(self) -> None:
        _positive("LoraSpec", r=self.r, alpha=self.alpha)
        if not 0 <= self.dropout < 1:
            raise ValueError(f"LoraSpec.dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class TrainSpec:
    """Optimisation settings shared by fine-tuning and unlearning.

    One optimiser step consumes `grad_accum` micro-batches of `batch_size` examples, whatever
    the number of processes: under `accelerate launch` the micro-batches of a step are split
    over the processes, so 1 and N processes follow the same trajectory.
    """

    epochs: float = 5.0  # passes over the anchor stream (forget set when unlearning)
    lr: float = 1e-5  # peak learning rate of AdamW
    batch_size: int = 8  # examples per micro-batch (per stream)
    grad_accum: int = 1  # micro-batches per optimiser step (over all processes)
    weight_decay: float = 0.01  # AdamW weight decay (TOFU: 0.01)
    warmup_ratio: float = 0.1  # fraction of steps with linear warm-up (transformers schedule)
    schedule: str = "linear"  # linear | constant | cosine (after warm-up)
    max_grad_norm: float = 1.0  # gradient clipping (0 = off)
    max_length: int = 128  # tokens per sequence (prompt + answer), longer ones are cut
    seed: int = 0  # seed of shuffling, retain sampling and initialisation noise
    lora: LoraSpec | None = None  # None = full-parameter training

    def __post_init__(self) -> None:
        _positive("TrainSpec", epochs=self.epochs, lr=self.lr)
        for name in ("batch_size", "grad_accum", "max_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainSpec.{name} must be an integer >= 1, got {value!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"TrainSpec.schedule must be one of {SCHEDULES}, got {self.schedule!r}"
            )
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"TrainSpec.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.weight_decay < 0 or self.max_grad_norm < 0:
            raise ValueError("TrainSpec.weight_decay and max_grad_norm must be >= 0")


@dataclass(frozen=True)
class ModelSpec:
    """A model by registry name, hub id or local path, and the compute policy."""

    name: str = "smollm2-135m"  # registry name, hub id or local checkpoint path
    dtype: str = "auto"  # compute dtype: auto | float32 | bfloat16 | float16
    device: str = "auto"  # auto | cpu | cuda | cuda:N

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("ModelSpec.name must be a registry name, hub id or local path")
        if self.dtype not in DTYPE_CHOICES:
            raise ValueError(f"ModelSpec.dtype must be one of {DTYPE_CHOICES}, got {self.dtype!r}")
        if self.device not in ("auto", "cpu") and not re.fullmatch(r"cuda(:\d+)?", self.device):
            raise ValueError(
                f"ModelSpec.device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}"
            )
