"""DP-SGD fine-tuning of a causal LM on a parameter subset P, with Opacus, and its epsilon.

Each step (Abadi et al. 2016): per-example gradients g_i on P; clip each to L2 norm C
(`clip_norm`, computed over all of P jointly); sum; add N(0, sigma^2 C^2 I) with
sigma = `noise_multiplier`; divide by the EXPECTED batch size q * N; then an ordinary optimizer
step (SGD by default, AdamW as an option: post-processing, no privacy cost). The loss of an
example is its mean next-token NLL (nats per target token), as in `lib.algorithms.per_sample`.

Why Opacus (1.6.0) is used directly. Checked on Hugging Face's Llama under transformers 5 on CPU
(`tests/test_dp_sgd.py` re-checks it): `opacus.GradSampleModule` in its default hooks mode
computes per-example gradients for every trainable parameter of `LlamaForCausalLM`:
`nn.Embedding` and `nn.Linear` by its own grad samplers, the custom `LlamaRMSNorm` through its
per-module functorch fallback; rotary attention has no parameters; the tied embedding/head
matrix receives the sum of both uses. They equal our independent `vmap` per-example gradients
(`lib.algorithms.per_sample`) to float32 rounding. Requirements that follow from Opacus's
hooks: the model must be in training mode while stepping (`DPSGD` switches it and restores the
previous mode; Llama's dropout is 0, so outputs are unchanged); `strict=False` is not needed
(the only buffers, the rotary `inv_freq`, sit in parameter-free modules and are constants);
gradient checkpointing would re-run forward hooks and is not supported; per-example gradients
are computed in the activations' dtype, so load the model in float32 for DP fine-tuning.
Parameters outside P are frozen (`requires_grad=False`) while a `DPSGD` object is open, so Opacus
neither computes nor clips them; flags are restored on `close()`.

Accounting. Opacus's RDP (default) or PRV accountant composes `steps` subsampled Gaussian
mechanisms with sampling rate q = `sample_rate`, ASSUMING POISSON SUBSAMPLING: every example
joins each batch independently with probability q (batch sizes vary, can be empty).
`poisson_batches` draws exactly such batches (empty ones are stepped with noise only, as the
analysis requires), and the reported epsilon is then the accountant's bound. With fixed-size
shuffled batches (q = B / N, the usual training loop) the same number is only an approximation:
it is what most papers report, but it is not a proven bound for shuffling, which can be weaker
(Chua et al. 2024, "How Private are DP-SGD Implementations?"). `DPResult.sampling` records which
one the caller declared. delta is typically < 1/N.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from opacus import GradSampleModule
from opacus.accountants import create_accountant
from opacus.accountants.utils import get_noise_multiplier
from opacus.optimizers import DPOptimizer
from torch import Tensor, nn
from tqdm.auto import tqdm

from lib.algorithms.per_sample import prepare_targets, sequence_losses

logger = logging.getLogger(__name__)

__all__ = [
    "ACCOUNTANTS",
    "OPTIMIZERS",
    "SAMPLINGS",
    "DPResult",
    "DPSGD",
    "dp_finetune",
    "epsilon_for",
    "noise_multiplier_for_epsilon",
    "poisson_batches",
]

#: Privacy accountants of Opacus accepted here.
ACCOUNTANTS: tuple[str, ...] = ("rdp", "prv")
#: Optimizers applied to the privatised gradient.
OPTIMIZERS: tuple[str, ...] = ("sgd", "adamw")
#: How the caller's batches were drawn (recorded; only `poisson` matches the accountant).
SAMPLINGS: tuple[str, ...] = ("poisson", "shuffled")


def _check_rate(sample_rate: float) -> None:
    if not 0 < sample_rate <= 1:
        raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")


def _check_delta(delta: float) -> None:
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")


def epsilon_for(
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    accountant: str = "rdp",
) -> float:
    """epsilon of `steps` Poisson-subsampled Gaussian steps at (sigma, q), for `delta`."""
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {accountant!r}")
    _check_rate(sample_rate)
    _check_delta(delta)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if noise_multiplier <= 0:
        return math.inf
    acc = create_accountant(mechanism=accountant)
    acc.history = [(noise_multiplier, sample_rate, steps)]
    return float(acc.get_epsilon(delta=delta))


def noise_multiplier_for_epsilon(
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str = "rdp",
) -> float:
    """Smallest sigma (Opacus' binary search, tolerance 0.01) with epsilon <= target_epsilon."""
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {accountant!r}")
    if not target_epsilon > 0:
        raise ValueError(f"target_epsilon must be > 0, got {target_epsilon}")
    _check_rate(sample_rate)
    _check_delta(delta)
    return float(
        get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant=accountant,
        )
    )


def poisson_batches(
    n_examples: int, sample_rate: float, steps: int, seed: int = 0
) -> Iterator[np.ndarray]:
    """Indices of `steps` Poisson batches: each example joins each batch with prob. q.

    Batches vary in size and may be empty (the DP step must still run, with noise only).
    """
    _check_rate(sample_rate)
    if n_examples < 1 or steps < 1:
        raise ValueError(f"n_examples and steps must be >= 1, got {n_examples}, {steps}")
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        yield np.flatnonzero(rng.random(n_examples) < sample_rate)


class DPSGD:
    """One DP-SGD step at a time on P (a primitive a training loop can call).

    Args:
        model: a causal LM (float32 recommended); it is wrapped by Opacus hooks until `close()`.
        params: names of the parameters in P (see `select_parameters`); None = all trainable.
        clip_norm: C, the per-example L2 clipping norm over P (gradient units).
        noise_multiplier: sigma (noise std = sigma * C on the summed gradient); 0 = no noise.
        lr: learning rate of the optimizer applied to the privatised gradient.
        sample_rate: q, the per-step sampling probability (for the accountant).
        expected_batch_size: q * N; the noisy sum is divided by it (Opacus `loss_reduction
            ="mean"`), also for Poisson batches of other sizes.
        optimizer: `sgd` or `adamw` (weight_decay applies to AdamW).
        accountant: `rdp` or `prv`.
        seed: seed of the noise generator (noise is reproducible, NOT cryptographically secure).
    """

    def __init__(
        self,
        model: nn.Module,
        params: Sequence[str] | None,
        *,
        clip_norm: float,
        noise_multiplier: float,
        lr: float,
        sample_rate: float,
        expected_batch_size: int,
        optimizer: str = "sgd",
        weight_decay: float = 0.0,
        accountant: str = "rdp",
        seed: int = 0,
    ) -> None:
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if accountant not in ACCOUNTANTS:
            raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {accountant!r}")
        if not clip_norm > 0:
            raise ValueError(f"clip_norm must be > 0, got {clip_norm}")
        if noise_multiplier < 0:
            raise ValueError(f"noise_multiplier must be >= 0, got {noise_multiplier}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if expected_batch_size < 1:
            raise ValueError(f"expected_batch_size must be >= 1, got {expected_batch_size}")
        _check_rate(sample_rate)
        named = dict(model.named_parameters())
        names = [n for n, p in named.items() if p.requires_grad] if params is None else params
        unknown = [n for n in names if n not in named]
        if unknown or not names:
            raise KeyError(f"unknown or empty parameter names {unknown[:5]} (P must be non-empty)")
        self.names = list(names)
        self.noise_multiplier = float(noise_multiplier)
        self.sample_rate = float(sample_rate)
        self.accountant_name = accountant
        self._model = model
        self._was_training = model.training
        self._requires_grad = {n: p.requires_grad for n, p in named.items()}
        keep = set(self.names)
        for n, p in named.items():
            p.requires_grad_(n in keep)
        model.train()  # Opacus' hooks only record activations in training mode
        self.module = GradSampleModule(model, batch_first=True, loss_reduction="mean")
        trainable = [named[n] for n in self.names]
        if optimizer == "sgd":
            base: torch.optim.Optimizer = torch.optim.SGD(trainable, lr=lr)
        else:
            base = torch.optim.AdamW(trainable, lr=lr, weight_decay=weight_decay)
        device = trainable[0].device
        self.optimizer = DPOptimizer(
            base,
            noise_multiplier=noise_multiplier,
            max_grad_norm=clip_norm,
            expected_batch_size=expected_batch_size,
            loss_reduction="mean",
            generator=torch.Generator(device=device).manual_seed(seed),
        )
        self.accountant = create_accountant(mechanism=accountant)
        self.steps = 0
        self._closed = False

    def step(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> float:
        """One DP-SGD step on a right-padded batch (B may be 0); returns its mean loss (nats).

        Returns NaN for an empty batch (a noise-only step).
        """
        if self._closed:
            raise RuntimeError("this DPSGD object was closed")
        self.optimizer.zero_grad(set_to_none=True)
        loss_value = math.nan
        if input_ids.shape[0] == 0:
            # Poisson batch with nobody in it: clipped sum = 0, the noise is still added.
            for p in self.optimizer.params:
                p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)
        else:
            labels = prepare_targets(input_ids, attention_mask, labels)
            device = self.optimizer.params[0].device
            ids, lab = input_ids.to(device), labels.to(device)
            out = self.module(input_ids=ids, use_cache=False)
            loss = sequence_losses(out.logits, lab).mean()
            with warnings.catch_warnings():
                # Opacus' backward hooks on the embedding (its input ids need no gradient).
                warnings.filterwarnings("ignore", message="Full backward hook is firing")
                loss.backward()
            loss_value = float(loss.detach())
        self.optimizer.step()
        self.accountant.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)
        self.steps += 1
        return loss_value

    def epsilon(self, delta: float) -> float:
        """epsilon spent so far at `delta` (inf with sigma = 0; 0 before the first step)."""
        _check_delta(delta)
        if self.steps == 0:
            return 0.0
        if self.noise_multiplier == 0:
            return math.inf
        return float(self.accountant.get_epsilon(delta=delta))

    def close(self) -> nn.Module:
        """Remove Opacus' hooks and attributes, restore requires_grad and the train/eval mode."""
        if not self._closed:
            self.optimizer.zero_grad(set_to_none=True)
            self.module.to_standard_module()
            for n, p in self._model.named_parameters():
                p.requires_grad_(self._requires_grad[n])
            self._model.train(self._was_training)
            self._closed = True
        return self._model

    def __enter__(self) -> DPSGD:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class DPResult:
    """Outcome of `dp_finetune` (the model is modified in place)."""

    epsilon: float
    delta: float
    steps: int
    noise_multiplier: float
    clip_norm: float
    sample_rate: float
    accountant: str
    sampling: str
    seconds: float
    losses: list[float] = field(default_factory=list)


def dp_finetune(
    model: nn.Module,
    batches: Iterable[Mapping[str, Tensor]],
    params: Sequence[str] | None,
    *,
    clip_norm: float,
    noise_multiplier: float,
    lr: float,
    steps: int,
    sample_rate: float,
    delta: float,
    expected_batch_size: int,
    sampling: str = "poisson",
    optimizer: str = "sgd",
    weight_decay: float = 0.0,
    accountant: str = "rdp",
    seed: int = 0,
    progress: bool = False,
) -> DPResult:
    """DP-SGD fine-tuning for `steps` steps over `batches` (dicts with `input_ids`, optional
    `attention_mask` and `labels`), then the accountant's epsilon at `delta`.

    `sampling` declares how `batches` were drawn (`poisson`, e.g. from `poisson_batches`, which
    the accountant assumes; or `shuffled` fixed-size batches, for which epsilon is an
    approximation; see the module docstring). Stops with ValueError if `batches` runs out early.
    """
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    _check_delta(delta)
    start = time.perf_counter()
    losses: list[float] = []
    with DPSGD(
        model,
        params,
        clip_norm=clip_norm,
        noise_multiplier=noise_multiplier,
        lr=lr,
        sample_rate=sample_rate,
        expected_batch_size=expected_batch_size,
        optimizer=optimizer,
        weight_decay=weight_decay,
        accountant=accountant,
        seed=seed,
    ) as dp:
        iterator = iter(batches)
        for _ in tqdm(range(steps), desc="DP-SGD", disable=not progress):
            try:
                batch = next(iterator)
            except StopIteration:
                raise ValueError(f"batches ran out after {dp.steps} of {steps} steps") from None
            losses.append(
                dp.step(batch["input_ids"], batch.get("attention_mask"), batch.get("labels"))
            )
        epsilon = dp.epsilon(delta)
    logger.info(
        "DP-SGD: %d steps, sigma=%.3g, C=%.3g, q=%.3g -> epsilon=%.3g at delta=%.1e (%s)",
        steps,
        noise_multiplier,
        clip_norm,
        sample_rate,
        epsilon,
        delta,
        sampling,
    )
    return DPResult(
        epsilon=epsilon,
        delta=delta,
        steps=steps,
        noise_multiplier=noise_multiplier,
        clip_norm=clip_norm,
        sample_rate=sample_rate,
        accountant=accountant,
        sampling=sampling,
        seconds=time.perf_counter() - start,
        losses=losses,
    )
