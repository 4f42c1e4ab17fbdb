"""The one training loop of the study, for fine-tuning and for unlearning.

`train(model, micro_batches, n_micro, loss_fn, spec)` runs AdamW with a `transformers`
schedule (linear/cosine/constant after linear warm-up, as the Hugging Face Trainer), gradient
accumulation, clipping and a divergence guard, and meters its cost (tokens, seconds, peak
memory). `micro_batches` is any iterable (a generator is fine); `loss_fn(model, micro)` returns
the loss to minimise, floats to log, and the tokens that went through forward+backward and
through frozen reference forwards (for the FLOP count).

Precision: weights and optimiser state stay float32; forward passes run under `torch.autocast`
in the model's compute dtype (`lib.models.autocast`). This is the standard mixed-precision
recipe, and the one FSDP/DeepSpeed expect to own.

Several processes: launched with `accelerate launch --num_processes N` (see `lib.runner`), the
model and optimiser are prepared by Accelerate (DDP, or FSDP/DeepSpeed from `accelerate
config`), and the `grad_accum` micro-batches of every optimiser step are dealt round-robin to
the processes. Each micro-batch loss is scaled by N / (micro-batches in the step) and the
gradients are averaged over processes, so every step's gradient is the mean over the step's
micro-batches *whatever N is*: 1 and N processes follow the same trajectory (up to float
summation order). A process with no micro-batch left in a short final step runs a zero-weighted
one, so that every process makes the same collective calls.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

import numpy as np
import torch
from transformers import PreTrainedModel, get_scheduler

from lib import distributed, models, progress
from lib.specs import LoraSpec, TrainSpec

logger = logging.getLogger(__name__)
M = TypeVar("M")
LossFn = Callable[[PreTrainedModel, Any], tuple[torch.Tensor, dict[str, float], int, int]]
#: TrainSpec.schedule -> transformers.get_scheduler name
SCHEDULER_NAMES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


class DivergenceError(RuntimeError):
    """A loss or gradient norm became NaN or infinite."""


@dataclass
class TrainResult:
    """What a training run did and cost."""

    steps: int = 0  # optimiser steps taken
    train_tokens: int = 0  # tokens through forward+backward (all streams, all processes)
    reference_tokens: int = 0  # tokens through forward-only reference passes
    seconds: float = 0.0  # wall time of the loop
    peak_memory_mb: float = 0.0  # peak RSS above the start (CPU) or peak allocated (CUDA)
    diverged: bool = False  # stopped by the divergence guard
    message: str = ""  # why it stopped early, if it did
    log: list[dict[str, float]] = field(default_factory=list)  # per-step losses

    def as_dict(self) -> dict[str, Any]:
        """Everything but the per-step log."""
        return {k: v for k, v in self.__dict__.items() if k != "log"}


class PeakMemory:
    """Context manager measuring peak memory: CUDA allocator peak, or sampled process RSS."""

    def __init__(self, device: torch.device, interval_s: float = 0.05) -> None:
        self.device, self.interval_s, self.peak_mb = device, interval_s, 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _rss_mb() -> float:
        import psutil

        return psutil.Process().memory_info().rss / 2**20

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        self._base = self._rss_mb()

        def sample() -> None:
            while not self._stop.is_set():
                self.peak_mb = max(self.peak_mb, self._rss_mb() - self._base)
                self._stop.wait(self.interval_s)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) and numpy's legacy global state."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


@cache
def _accelerator():
    """The process's Accelerator (created once: Accelerate keeps global state)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    # Methods that read an intermediate layer (RMU) leave upper layers without gradients.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    return Accelerator(cpu=not torch.cuda.is_available(), kwargs_handlers=[ddp])


def attach_lora(
    model: PreTrainedModel, spec: LoraSpec, layers: Sequence[int] | None = None
) -> PreTrainedModel:
    """Wrap the model with LoRA adapters (peft); only the adapters require gradients.

    `layers`: indices of the decoder layers that get adapters (peft's `layers_to_transform`);
    None = every layer. Adapting only the top layers also shortens the backward pass, which
    stops below the lowest adapted layer.
    """
    from peft import LoraConfig, get_peft_model

    n_layers = getattr(model.config, "num_hidden_layers", None)
    if layers is not None:
        layers = sorted(set(int(i) for i in layers))
        if not layers or (n_layers is not None and not 0 <= layers[0] <= layers[-1] < n_layers):
            raise ValueError(f"layers must be non-empty indices in [0, {n_layers}), got {layers}")
    config = LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(spec.target_modules),
        layers_to_transform=layers,
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():
        # peft reads transformers' deprecated `is_gradient_checkpointing` alias (FutureWarning
        # in transformers 5); nothing of ours to change, and the warning would fail the CI log
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        wrapped = get_peft_model(model, config)
    wrapped.compute_dtype = getattr(model, "compute_dtype", torch.float32)
    return wrapped


def merge_lora(model: PreTrainedModel) -> PreTrainedModel:
    """Merge adapters into plain weights (a no-op for a model without adapters)."""
    if not hasattr(model, "merge_and_unload"):
        return model
    dtype = getattr(model, "compute_dtype", torch.float32)
    merged = model.merge_and_unload()
    merged.compute_dtype = dtype
    for p in merged.parameters():
        p.requires_grad_(True)
    return merged


def _steps(micro_batches: Iterable[M], n_micro: int, grad_accum: int) -> Iterator[list[M]]:
    """Group the micro-batches of each optimiser step (the last group may be shorter)."""
    group: list[M] = []
    seen = 0
    for micro in micro_batches:
        group.append(micro)
        seen += 1
        if len(group) == grad_accum or seen == n_micro:
            yield group
            group = []
    if group:
        yield group
    if seen != n_micro:
        raise ValueError(f"expected {n_micro} micro-batches, the stream gave {seen}")


def _oom_advice(spec: TrainSpec) -> str:
    half = max(1, spec.batch_size // 2)
    return (
        f"out of GPU memory with micro-batches of {spec.batch_size} sequences of up to "
        f"{spec.max_length} tokens; try batch_size={half} with grad_accum={spec.grad_accum * 2} "
        "(same examples per step), a shorter max_length, or LoRA"
    )


def train(
    model: PreTrainedModel,
    micro_batches: Iterable[Any],
    n_micro: int,
    loss_fn: LossFn,
    spec: TrainSpec,
    desc: str = "train",
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train the parameters of `model` that require gradients; see the module docstring.

    `on_step(step)` is called after every optimiser step (e.g. to score checkpoints at epoch
    boundaries); the model is in train mode before and after the call.

    The divergence guard checks every loss before its backward pass and every gradient norm
    before its update: a NaN/inf stops the run with `diverged=True`, and the model keeps the
    weights of the last finished step.
    """
    if n_micro < 1:
        raise ValueError(f"nothing to train on: {n_micro} micro-batches")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters")
    device = next(model.parameters()).device
    world, rank = distributed.world_size(), distributed.rank()
    total_steps = max(1, math.ceil(n_micro / spec.grad_accum))
    optimizer = torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)
    scheduler = get_scheduler(
        SCHEDULER_NAMES[spec.schedule],
        optimizer,
        num_warmup_steps=int(spec.warmup_ratio * total_steps),
        num_training_steps=total_steps,
    )
    trained = model
    if distributed.active():
        accelerator = _accelerator()
        trained, optimizer = accelerator.prepare(model, optimizer)
    result = TrainResult()
    counts = torch.zeros(2, dtype=torch.float64)
    model.train()
    start = time.perf_counter()
    with PeakMemory(device) as memory, progress.bar(total_steps, desc) as bar:
        try:
            for group in _steps(micro_batches, n_micro, spec.grad_accum):
                mine = group[rank::world]
                calls = math.ceil(len(group) / world)
                logs: dict[str, float] = {}
                for j in range(calls):
                    real = j < len(mine)
                    micro = mine[j] if real else group[0]
                    sync = j == calls - 1 or world == 1
                    no_sync = contextlib.nullcontext() if sync else trained.no_sync()
                    with no_sync:
                        with models.autocast(model):
                            loss, extra, n_train, n_ref = loss_fn(trained, micro)
                        bad = torch.tensor([0.0 if torch.isfinite(loss) else 1.0])
                        if distributed.all_reduce_sum(bad).item() > 0:
                            raise DivergenceError(
                                f"loss became non-finite at step {result.steps + 1}; stopped, "
                                "keeping the weights of the last finished step"
                            )
                        # world == 1: loss / len(group), exactly the plain accumulation
                        (loss / (len(group) / world) if real else loss * 0.0).backward()
                    for k, v in {"loss": float(loss.detach()), **extra}.items():
                        logs[k] = logs.get(k, 0.0) + (v / len(group) if real else 0.0)
                    if real:
                        counts += torch.tensor([n_train, n_ref], dtype=torch.float64)
                logs = _sum_over_processes(logs)
                if spec.max_grad_norm > 0:
                    norm = _clip(trained, params, spec.max_grad_norm)
                    if not math.isfinite(norm):
                        raise DivergenceError(
                            f"gradient norm became {norm} at step {result.steps + 1}; stopped, "
                            "keeping the weights of the last finished step"
                        )
                    logs["grad_norm"] = norm
                logs["lr"] = scheduler.get_last_lr()[0]
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                result.steps += 1
                result.log.append({"step": result.steps, **logs})
                bar.set_postfix(loss=f"{logs['loss']:.3f}")
                bar.update(1)
                if on_step is not None:
                    on_step(result.steps)
                    model.train()
        except DivergenceError as err:
            logger.warning("%s: %s", desc, err)
            result.diverged, result.message = True, str(err)
            optimizer.zero_grad(set_to_none=True)
            for p in params:
                p.grad = None
        except torch.OutOfMemoryError as err:
            raise RuntimeError(f"{desc}: {_oom_advice(spec)}") from err
    distributed.all_reduce_sum(counts)
    result.train_tokens, result.reference_tokens = int(counts[0]), int(counts[1])
    result.seconds = time.perf_counter() - start
    result.peak_memory_mb = memory.peak_mb
    model.eval()
    return result


def _sum_over_processes(logs: dict[str, float]) -> dict[str, float]:
    if not distributed.active():
        return logs
    keys = sorted(logs)
    values = distributed.all_reduce_sum(torch.tensor([logs[k] for k in keys], dtype=torch.float64))
    return dict(zip(keys, values.tolist(), strict=True))


def _clip(trained: torch.nn.Module, params: list[torch.nn.Parameter], max_norm: float) -> float:
    if distributed.active():
        return float(_accelerator().clip_grad_norm_(trained.parameters(), max_norm))
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
