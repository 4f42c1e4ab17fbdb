"""The one training loop of the study, for fine-tuning and for unlearning.

`train(model, micro_batches, loss_fn, spec)` runs AdamW with warm-up + schedule, gradient
accumulation, clipping and a divergence guard, and meters its cost. Streams (what a micro-batch
holds) are built by the caller: `qa_stream` for fine-tuning, `unlearn_stream` for unlearning
(forget anchors + one random retain example per forget example, as open-unlearning's
`ForgetRetainDataset`).

Precision: when the model is held in bfloat16 (GPU, or a CPU with native bf16), the optimiser
keeps float32 master weights and copies them back after each step, because AdamW updates of
~1e-5 relative size vanish when rounded to bf16's 8-bit mantissa.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib.data.authors import QA
from lib.methods.base import UnlearnBatch
from lib.prompting import Batch, encode_pairs, format_prompt
from lib.specs import TrainSpec

logger = logging.getLogger(__name__)
SCHEDULES = ("linear", "constant", "cosine")


class DivergenceError(RuntimeError):
    """A loss became NaN or infinite."""


@dataclass
class TrainResult:
    """What a training run did and cost."""

    steps: int = 0  # optimiser steps taken
    train_tokens: int = 0  # tokens through forward+backward (all streams)
    reference_tokens: int = 0  # tokens through forward-only reference passes
    seconds: float = 0.0  # wall time of the loop
    peak_memory_mb: float = 0.0  # peak RSS above the start (CPU) or peak allocated (CUDA)
    diverged: bool = False  # stopped by the divergence guard
    message: str = ""  # why it stopped early, if it did
    log: list[dict[str, float]] = field(default_factory=list)  # per-step losses

    def as_dict(self) -> dict:
        return {
            k: getattr(self, k)
            for k in (
                "steps",
                "train_tokens",
                "reference_tokens",
                "seconds",
                "peak_memory_mb",
                "diverged",
                "message",
            )
        }


class PeakMemory:
    """Context manager measuring peak memory: CUDA allocator peak, or sampled process RSS."""

    def __init__(self, device: torch.device, interval_s: float = 0.05) -> None:
        self.device, self.interval_s, self.peak_mb = device, interval_s, 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _rss_mb(self) -> float:
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

    def __exit__(self, *exc) -> None:
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


def lr_lambda(schedule: str, total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """Multiplier of the peak learning rate at a step: linear warm-up, then the schedule."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")

    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        if schedule == "linear":
            return max(0.0, 1.0 - progress)
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return 1.0

    return factor


class _MasterWeights:
    """float32 copies of low-precision parameters that the optimiser updates."""

    def __init__(self, params: Sequence[torch.nn.Parameter]) -> None:
        self.params = list(params)
        self.active = any(p.dtype != torch.float32 for p in self.params)
        self.masters = (
            [p.detach().float().clone() for p in self.params] if self.active else self.params
        )

    def pull_grads(self) -> None:
        if self.active:
            for p, m in zip(self.params, self.masters, strict=True):
                m.grad = None if p.grad is None else p.grad.float()
                p.grad = None

    @torch.no_grad()
    def push_weights(self) -> None:
        if self.active:
            for p, m in zip(self.params, self.masters, strict=True):
                p.copy_(m)


def train(
    model: PreTrainedModel,
    micro_batches: Sequence[object],
    loss_fn: Callable[[object], tuple[torch.Tensor, dict[str, float], int, int]],
    spec: TrainSpec,
    params: Sequence[torch.nn.Parameter] | None = None,
    desc: str = "train",
) -> TrainResult:
    """Run the loop over pre-built micro-batches.

    Args:
        micro_batches: the whole run's micro-batches in order (epochs already unrolled).
        loss_fn: micro-batch -> (loss to minimise, floats to log, train tokens, reference
            tokens).
        params: parameters to update (default: all that require gradients).

    The divergence guard checks every loss before its backward pass: a NaN/inf loss stops the
    run with `diverged=True`, and the model keeps the weights of the last finished step.
    """
    if spec.grad_accum < 1 or spec.batch_size < 1:
        raise ValueError("batch_size and grad_accum must be >= 1")
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters")
    device = next(model.parameters()).device
    total_steps = max(1, math.ceil(len(micro_batches) / spec.grad_accum))
    warmup = int(spec.warmup_ratio * total_steps)
    master = _MasterWeights(params)
    optimizer = torch.optim.AdamW(master.masters, lr=spec.lr, weight_decay=spec.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(spec.schedule, total_steps, warmup)
    )
    result = TrainResult()
    model.train()
    start = time.perf_counter()
    with PeakMemory(device) as memory:
        bar = tqdm(total=total_steps, desc=desc, leave=False, mininterval=2.0)
        accumulated: dict[str, float] = {}
        try:
            for index, micro in enumerate(micro_batches):
                loss, logs, n_train, n_ref = loss_fn(micro)
                if not torch.isfinite(loss):
                    raise DivergenceError(
                        f"loss became {float(loss)} at step {result.steps} "
                        f"(micro-batch {index}); stopped, keeping the last finished step"
                    )
                # the last group may be shorter than grad_accum: average over its real size
                group_start = index - index % spec.grad_accum
                group = min(spec.grad_accum, len(micro_batches) - group_start)
                (loss / group).backward()
                result.train_tokens += n_train
                result.reference_tokens += n_ref
                for k, v in {"loss": float(loss.detach()), **logs}.items():
                    accumulated[k] = accumulated.get(k, 0.0) + v / group
                last = index == len(micro_batches) - 1
                if (index + 1) % spec.grad_accum and not last:
                    continue
                master.pull_grads()
                if spec.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(master.masters, spec.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                master.push_weights()
                result.steps += 1
                result.log.append({"step": result.steps, **accumulated})
                bar.set_postfix(loss=f"{accumulated['loss']:.3f}")
                bar.update()
                accumulated = {}
        except DivergenceError as err:
            logger.warning("%s: %s", desc, err)
            result.diverged, result.message = True, str(err)
            optimizer.zero_grad(set_to_none=True)
            for p in params:
                p.grad = None
        finally:
            bar.close()
    result.seconds = time.perf_counter() - start
    result.peak_memory_mb = memory.peak_mb
    model.eval()
    return result


# --------------------------------------------------------------------------- streams
def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def epoch_orders(n: int, epochs: float, seed: int) -> list[int]:
    """Shuffled example indices for `epochs` passes (a fractional last pass is cut)."""
    rng = np.random.default_rng(seed)
    order: list[int] = []
    for _ in range(math.ceil(epochs)):
        order.extend(rng.permutation(n).tolist())
    return order[: max(1, int(round(epochs * n)))]


def qa_stream(
    tokenizer: PreTrainedTokenizerBase,
    qas: Sequence[QA],
    spec: TrainSpec,
    answers: str = "answer",
) -> list[Batch]:
    """Fine-tuning micro-batches over `qas` for `spec.epochs` passes (`answers`: answer|idk)."""
    if not qas:
        raise ValueError("cannot train on an empty split")
    order = epoch_orders(len(qas), spec.epochs, spec.seed)
    batches = []
    for idx in _chunks(order, spec.batch_size):
        chosen = [qas[i] for i in idx]
        batches.append(_encode(tokenizer, chosen, answers, spec.max_length))
    return batches


def _encode(tokenizer, qas: Sequence[QA], answers: str, max_length: int) -> Batch:
    prompts = [format_prompt(tokenizer, q.question) for q in qas]
    texts = [q.answer if answers == "answer" else q.idk_answer for q in qas]
    return encode_pairs(tokenizer, prompts, texts, max_length)


def unlearn_stream(
    tokenizer: PreTrainedTokenizerBase,
    forget: Sequence[QA],
    retain: Sequence[QA],
    spec: TrainSpec,
    with_retain: bool,
    with_idk: bool,
) -> list[UnlearnBatch]:
    """Unlearning micro-batches: forget anchors for `spec.epochs` passes, each paired with an
    equally sized random retain draw (seeded) and, if asked, the forget questions with IDK
    answers."""
    if not forget:
        raise ValueError("the forget set is empty")
    if with_retain and not retain:
        raise ValueError("this method needs retain data but the retain set is empty")
    rng = np.random.default_rng(spec.seed + 1)
    order = epoch_orders(len(forget), spec.epochs, spec.seed)
    batches = []
    for idx in _chunks(order, spec.batch_size):
        chosen = [forget[i] for i in idx]
        retain_batch = None
        if with_retain:
            draw = rng.integers(0, len(retain), size=len(chosen))
            retain_batch = _encode(tokenizer, [retain[i] for i in draw], "answer", spec.max_length)
        batches.append(
            UnlearnBatch(
                forget=_encode(tokenizer, chosen, "answer", spec.max_length),
                retain=retain_batch,
                forget_idk=_encode(tokenizer, chosen, "idk", spec.max_length) if with_idk else None,
            )
        )
    return batches
