"""Frozen run specifications and their cache keys.

A spec fully describes one unit of work (a fine-tuning run, an unlearning run, an evaluation);
`key()` hashes its canonical JSON together with `CACHE_VERSION`, so the on-disk cache of the
runner is addressed by *what* was computed, never by when or by which commit. Bump
`CACHE_VERSION` whenever the meaning of a method, metric or data builder changes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

#: Bump when cached results would no longer be reproduced by the current code.
CACHE_VERSION = 1


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


@dataclass(frozen=True)
class DataSpec:
    """Which fictitious-author benchmark and which forget split."""

    n_authors: int = 40  # train authors (TOFU: 200)
    qa_per_author: int = 10  # QA pairs per author (TOFU: 20)
    seed: int = 0  # seed of the generated profiles and of the split permutation
    forget_split: str = "forget10"  # forget01 | forget05 | forget10


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


@dataclass(frozen=True)
class TrainSpec:
    """Optimisation settings shared by fine-tuning and unlearning."""

    epochs: float = 5.0  # passes over the anchor stream (forget set when unlearning)
    lr: float = 1e-5  # peak learning rate of AdamW
    batch_size: int = 8  # examples per micro-batch (per stream)
    grad_accum: int = 1  # micro-batches per optimiser step
    weight_decay: float = 0.01  # AdamW weight decay (TOFU: 0.01)
    warmup_ratio: float = 0.1  # fraction of steps with linear warm-up
    schedule: str = "linear"  # linear | constant | cosine (after warm-up)
    max_grad_norm: float = 1.0  # gradient clipping (0 = off)
    max_length: int = 128  # tokens per sequence (prompt + answer), longer ones are cut
    seed: int = 0  # seed of shuffling, retain sampling and initialisation noise
    lora: LoraSpec | None = None  # None = full-parameter training


@dataclass(frozen=True)
class ModelSpec:
    """A model by registry name, hub id or local path, and the compute policy."""

    name: str = "smollm2-135m"  # registry name, hub id or local checkpoint path
    dtype: str = "auto"  # auto | float32 | bfloat16
    device: str = "auto"  # auto | cpu | cuda | cuda:N


@dataclass(frozen=True)
class FinetuneSpec:
    """Fine-tune a base model on one split of the benchmark (target or retain oracle)."""

    model: ModelSpec
    data: DataSpec
    split: str  # "full" -> target; "retainXX" -> retain oracle
    train: TrainSpec

    def key(self) -> str:
        return spec_key({"kind": "finetune", "spec": self})


@dataclass(frozen=True)
class UnlearnSpec:
    """Unlearn the forget split from the target with one registered method."""

    target: FinetuneSpec
    method: str  # registry name (lib.methods.METHODS)
    hparams: tuple[tuple[str, Any], ...] = ()  # overrides of the method's defaults
    train: TrainSpec = field(default_factory=TrainSpec)

    def key(self) -> str:
        return spec_key({"kind": "unlearn", "spec": self})

    @property
    def hparams_dict(self) -> dict[str, Any]:
        return dict(self.hparams)
