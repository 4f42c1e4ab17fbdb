"""Several processes, one result: the few collective operations the study needs.

A run started with `accelerate launch --num_processes N ...` (or `torchrun`) has N processes,
each with a rank. Training splits every optimiser step's micro-batches over the ranks
(`lib.train`); evaluation splits the examples and gathers the per-example results, so each
example is counted once (`lib.evaluate`); only the main process writes files (`lib.cache`).
In a single process (notebooks, tests) every function here is a cheap no-op.

The process group is created by Hugging Face Accelerate (`PartialState`) when the launcher's
environment variables are present; nothing is initialised otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@cache
def _launched() -> bool:
    """True when a launcher (accelerate launch, torchrun) started several processes."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init() -> None:
    """Create the process group through Accelerate if launched in several processes."""
    if _launched() and not dist.is_initialized():
        from accelerate import PartialState

        PartialState(cpu=not torch.cuda.is_available())


def active() -> bool:
    """True inside an initialised multi-process group."""
    if _launched():
        init()
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """True in the process that writes files (rank 0, or the only process)."""
    return rank() == 0


def barrier() -> None:
    if active():
        dist.barrier()


def broadcast(value: T) -> T:
    """The main process's `value`, on every process (any picklable object)."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard(indices: list[int]) -> list[int]:
    """This process's share of `indices` (round-robin, so lengths differ by at most one)."""
    return indices[rank() :: world_size()]


def gather_by_index(local: Mapping[int, Any]) -> dict[int, Any]:
    """Merge per-example results computed on different processes (keys = example indices).

    Every process gets the full mapping; an index computed twice would be a bug and raises.
    """
    if not active():
        return dict(local)
    parts: list[Any] = [None] * world_size()
    dist.all_gather_object(parts, dict(local))
    merged: dict[int, Any] = {}
    for part in parts:
        overlap = merged.keys() & part.keys()
        if overlap:
            raise RuntimeError(f"examples {sorted(overlap)[:5]} were computed by two processes")
        merged.update(part)
    return merged


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over processes (in place, returned for convenience)."""
    if active():
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values
