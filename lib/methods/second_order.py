"""Second-order unlearning (Gu et al. 2024, "Second-Order Information Matters", arXiv
2403.10557): Fisher Removal and Fisher Forgetting, Newton-style updates with the inverse
empirical Fisher of the retain data; and fine-tuning on the retain data only, the first-order
baseline the paper compares with.

Both Fisher methods build, on a parameter subset P, the empirical Fisher of the retain data

    F = lambda * I + (1/m) sum_i g_i g_i^T,   g_i = grad_P loss(x_i), x_i in D+ (m examples)

from `m` per-example gradients (`lib.algorithms.per_sample`, `vmap(grad)`), and apply its
powers exactly through the m x m Gram matrix (`lib.algorithms.fisher.EmpiricalFisher`), or F^-1
through the streaming WoodFisher recursion (`inverse="woodfisher"`, the same numbers).

- Fisher Removal: theta' = theta + gamma * F^-1 * grad_P L(D-), with L(D-) the SUM over forget
  examples of their mean token NLL; the step ascends the forget loss, least along directions the
  retain data constrain (large Fisher). gamma = `gamma_scale` / |D+| (the influence-function
  scaling, seed_papers.md 1.3 [R]).
- Fisher Forgetting: theta' = theta + (mu sigma^2)^(1/4) * F^(-1/4) * n, n ~ N(0, I) seeded
  (Golatkar et al. 2020's noise term): noise large along directions the retain data leave
  free, small along constrained ones. It reads no forget data (`newton=True` adds the Removal
  step too: Golatkar's full "noisy Newton"; whether the paper does is [U]).

What the paper leaves unknown ([U] in seed_papers.md 1.3/1.5) and the choices made here:
- P ("which layers"): the last `k` decoder blocks + the final norm by default (`scope="last_k"`;
  the tied embedding/head matrix is 28M of SmolLM2's 135M parameters and out unless
  `include_head`); `scope="all"` on a GPU. A full d x d inverse is impossible at this size.
- m: 32 here for the CPU (WoodFisher/oBERT use ~1024); sweep it on a GPU.
- lambda (damping): relative by default, lambda = `damping` x mean_i ||g_i||^2 (= `damping` x the
  trace of (1/m) G^T G), so it does not depend on the scale of the loss; `damping_relative=False`
  takes `damping` as lambda itself. WoodFisher/oBERT use 1e-4..1e-7 in absolute units of their
  own gradients. Along the |P| - m directions no retain gradient spans, F = lambda: Fisher
  Removal moves there by gamma / lambda times the forget gradient, so lambda and gamma together
  set the step; sweep gamma (the notebook does) and lambda.
- mu * sigma^2: given through `noise`, the standard deviation (parameter units) of the added
  noise along the directions where F = lambda: mu sigma^2 = noise^4 * lambda, i.e. the paper's
  scale expressed where it can be read; `mu_sigma2` > 0 sets it directly instead.

Cost (`Unlearned.flops`, an estimate): every gradient (per-example retain gradients for F, and
the forget gradient) is one forward pass of the whole model (2 N FLOPs per token) plus a
backward pass through P and the output head (4 (|P| + |head|) per token); building F adds the
Gram matrix and its eigendecomposition (`EmpiricalFisher.factorization_flops`), each product
`EmpiricalFisher.product_flops`. Seconds and peak memory are measured.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel

from lib.algorithms.fisher import (
    INVERSE_METHODS,
    EmpiricalFisher,
    fisher_forgetting,
    fisher_removal,
    influence_gamma,
)
from lib.algorithms.per_sample import (
    SCOPES,
    ParamLayout,
    loss_gradient,
    per_sample_gradients,
    select_parameters,
)
from lib.batches import Batch, encode_rows
from lib.methods import register
from lib.methods.base import GradientMethod, Method, UnlearnContext, UnlearnData, Unlearned
from lib.methods.losses import ce_mean, forward_logits
from lib.train import PeakMemory, TrainResult

logger = logging.getLogger(__name__)

__all__ = ["FAMILY", "FisherForgetting", "FisherRemoval", "RetainFinetune"]

FAMILY = "influence functions / second order"
_CITATION = (
    "Gu et al. 2024 (Second-Order Information Matters); Guo et al. 2020; Golatkar et al. 2020; "
    "Singh & Alistarh 2020 (WoodFisher)"
)


def _head_size(model: PreTrainedModel) -> int:
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return int(head.weight.numel()) if head is not None else 0


def _gradient_flops(n_params: int, n_p: int, n_head: int, tokens: int) -> float:
    """Forward of the whole model + backward through P and the head (module docstring)."""
    return 2.0 * n_params * tokens + 4.0 * (n_p + n_head) * tokens


@dataclass(frozen=True)
class _FisherMethod(Method):
    """What both Fisher methods share: P, the retain sample and F (module docstring)."""

    scope: str = "last_k"  # P: last_k (last k blocks + final norm) | all  [U]
    k: int = 2  # decoder blocks in P for last_k
    include_head: bool = False  # add the (tied) output head to P
    m: int = 32  # per-example retain gradients in F [U]
    damping: float = 1e-2  # lambda, relative to mean ||g_i||^2 unless damping_relative=False [U]
    damping_relative: bool = True  # lambda = damping * mean ||g_i||^2 (scale-free)
    chunk_size: int = 8  # examples per vmap call (memory)

    family = FAMILY
    citation = _CITATION

    def check(self, n_layers: int) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {self.scope!r}")
        if self.scope == "last_k" and not 1 <= self.k <= n_layers:
            raise ValueError(f"k must be in 1..{n_layers} for this model, got {self.k}")
        if self.m < 1 or self.chunk_size < 1:
            raise ValueError(f"m and chunk_size must be >= 1, got {self.m}, {self.chunk_size}")
        if not (math.isfinite(self.damping) and self.damping > 0):
            raise ValueError(f"damping must be a finite number > 0, got {self.damping!r}")

    # ------------------------------------------------------------------ building F
    def _layout(self, model: PreTrainedModel) -> ParamLayout:
        names = select_parameters(model, self.scope, self.k, self.include_head)
        return ParamLayout.from_model(model, names)

    def _encode(self, ctx: UnlearnContext, rows) -> Batch:
        return encode_rows(ctx.tokenizer, list(rows), ctx.train.max_length)

    def fisher(
        self, model: PreTrainedModel, data: UnlearnData, ctx: UnlearnContext
    ) -> tuple[EmpiricalFisher, ParamLayout, dict[str, Any]]:
        """F on P from `m` retain examples drawn without replacement (seed `ctx.train.seed`)."""
        layout = self._layout(model)
        retain = data["retain"]
        m = min(self.m, len(retain))
        if m < self.m:
            logger.warning("only %d retain examples: F uses m = %d (asked %d)", m, m, self.m)
        picks = np.random.default_rng(ctx.train.seed).choice(len(retain), size=m, replace=False)
        batch = self._encode(ctx, [retain[int(i)] for i in sorted(picks)])
        G, _ = per_sample_gradients(
            model,
            batch.input_ids,
            batch.attention_mask,
            batch.labels,
            params=layout,
            chunk_size=self.chunk_size,
        )
        mean_sq = float((G.double() ** 2).sum(dim=1).mean())
        damping = self.damping * mean_sq if self.damping_relative else self.damping
        if not damping > 0:
            raise ValueError("every retain gradient is zero: the relative damping is 0")
        fisher = EmpiricalFisher(G, damping)
        info = {
            "m": m,
            "p_size": layout.numel,
            "lambda": damping,
            "mean_grad_sq": mean_sq,
            "retain_tokens": batch.n_tokens,
        }
        return fisher, layout, info

    def _forget_gradient(self, model, data: UnlearnData, ctx, layout) -> tuple[torch.Tensor, int]:
        """grad_P of the SUM over forget examples of their mean token NLL, and its tokens."""
        batch = self._encode(ctx, data["forget"])
        grad = loss_gradient(
            model,
            batch.input_ids,
            batch.attention_mask,
            batch.labels,
            params=layout,
            reduction="sum",
            batch_size=self.chunk_size,
        )
        return grad, batch.n_tokens

    def _flops(
        self, model, layout: ParamLayout, fisher: EmpiricalFisher, tokens: int, products: int
    ) -> float:
        n_params = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
        grads = _gradient_flops(n_params, layout.numel, _head_size(model), tokens)
        return grads + fisher.factorization_flops + products * fisher.product_flops


@register
@dataclass(frozen=True)
class FisherRemoval(_FisherMethod):
    """theta' = theta + gamma * F^-1 * grad L(D-) on P (module docstring; Gu et al. 2024).

    gamma = `gamma_scale` / |D+| ([R] influence-function scaling; the paper's value is [U]).
    Diagnostics: m, p_size, lambda, rank of F's low-rank part, gamma, step_norm (L2 of the
    update, parameter units), forget_grad_norm.
    """

    gamma_scale: float = 1.0  # gamma as a multiple of 1 / |D+| [R]; sweep {0.1, 1, 10}
    inverse: str = "gram"  # gram (exact eigendecomposition) | woodfisher (streaming)

    name = "fisher_removal"
    streams = ("forget", "retain")

    def check(self, n_layers: int) -> None:
        super().check(n_layers)
        if not (math.isfinite(self.gamma_scale) and self.gamma_scale > 0):
            raise ValueError(f"gamma_scale must be a finite number > 0, got {self.gamma_scale!r}")
        if self.inverse not in INVERSE_METHODS:
            raise ValueError(f"inverse must be one of {INVERSE_METHODS}, got {self.inverse!r}")

    def unlearn(self, model: PreTrainedModel, data: UnlearnData, ctx: UnlearnContext) -> Unlearned:
        device = next(model.parameters()).device
        model.eval()
        start = time.perf_counter()
        with PeakMemory(device) as memory:
            fisher, layout, info = self.fisher(model, data, ctx)
            grad, forget_tokens = self._forget_gradient(model, data, ctx, layout)
            gamma = self.gamma_scale * influence_gamma(len(data["retain"]))
            theta = layout.get(model)
            new = fisher_removal(theta, grad, fisher, gamma, method=self.inverse)
            layout.set_(model, new)
        seconds = time.perf_counter() - start
        tokens = info["retain_tokens"] + forget_tokens
        diagnostics = {
            **info,
            "rank": fisher.rank if self.inverse == "gram" else info["m"],
            "gamma": gamma,
            "step_norm": float((new - theta).norm()),
            "forget_grad_norm": float(grad.norm()),
        }
        logger.info("fisher_removal: %s", diagnostics)
        return Unlearned(
            model=model,
            train=TrainResult(
                steps=1, train_tokens=tokens, seconds=seconds, peak_memory_mb=memory.peak_mb
            ),
            flops=self._flops(model, layout, fisher, tokens, products=1),
            diagnostics=diagnostics,
        )


@register
@dataclass(frozen=True)
class FisherForgetting(_FisherMethod):
    """theta' = theta + (mu sigma^2)^(1/4) * F^(-1/4) * n on P (module docstring; Golatkar et
    al. 2020's noise term as Gu et al. 2024 use it).

    mu sigma^2 = `noise`^4 * lambda ([U] in the paper): `noise` is the standard deviation of the
    added noise along the directions the retain data leave free; `mu_sigma2` > 0 sets it
    directly. `newton=True` also applies Fisher Removal's step (gamma = `gamma_scale` / |D+|).
    The noise is seeded by the unlearning seed. Diagnostics: m, p_size, lambda, rank, mu_sigma2,
    step_norm.
    """

    noise: float = 1e-3  # noise std (parameter units) where F = lambda [U]; sweep it
    mu_sigma2: float = 0.0  # > 0: mu * sigma^2 itself (overrides `noise`)
    newton: bool = False  # also add gamma * F^-1 * grad L(D-) (noisy Newton) [U]
    gamma_scale: float = 1.0  # Newton step scale (x 1/|D+|), used only with newton=True

    name = "fisher_forgetting"
    streams = ("retain",)

    def check(self, n_layers: int) -> None:
        super().check(n_layers)
        if not (math.isfinite(self.noise) and self.noise > 0):
            raise ValueError(f"noise must be a finite number > 0, got {self.noise!r}")
        if not (math.isfinite(self.mu_sigma2) and self.mu_sigma2 >= 0):
            raise ValueError(f"mu_sigma2 must be >= 0 (0 = from noise), got {self.mu_sigma2!r}")
        if not (math.isfinite(self.gamma_scale) and self.gamma_scale > 0):
            raise ValueError(f"gamma_scale must be a finite number > 0, got {self.gamma_scale!r}")

    def unlearn(self, model: PreTrainedModel, data: UnlearnData, ctx: UnlearnContext) -> Unlearned:
        device = next(model.parameters()).device
        model.eval()
        start = time.perf_counter()
        products = 1
        with PeakMemory(device) as memory:
            fisher, layout, info = self.fisher(model, data, ctx)
            mu_sigma2 = self.mu_sigma2 or self.noise**4 * info["lambda"]
            theta = layout.get(model)
            base = theta
            tokens = info["retain_tokens"]
            if self.newton:
                grad, forget_tokens = self._forget_gradient(model, data, ctx, layout)
                tokens += forget_tokens
                gamma = self.gamma_scale * influence_gamma(len(data["retain"]))
                base = fisher_removal(theta, grad, fisher, gamma)
                products += 1
            new = fisher_forgetting(base, fisher, mu_sigma2, seed=ctx.train.seed)
            layout.set_(model, new)
        seconds = time.perf_counter() - start
        diagnostics = {
            **info,
            "rank": fisher.rank,
            "mu_sigma2": mu_sigma2,
            "step_norm": float((new - theta).norm()),
        }
        logger.info("fisher_forgetting: %s", diagnostics)
        return Unlearned(
            model=model,
            train=TrainResult(
                steps=1, train_tokens=tokens, seconds=seconds, peak_memory_mb=memory.peak_mb
            ),
            flops=self._flops(model, layout, fisher, tokens, products=products),
            diagnostics=diagnostics,
        )


@register
@dataclass(frozen=True)
class RetainFinetune(GradientMethod):
    """Fine-tune on the retain data only: loss = CE_mean(retain) (the paper's "fine-tuning on
    D+" baseline; forgetting only by interference). `TrainSpec.epochs` counts passes over the
    RETAIN data (its anchor), so give it its own budget."""

    name = "finetune_retain"
    family = "retain fine-tuning"
    citation = "Gu et al. 2024 (baseline); Golatkar et al. 2020 (fine-tuning baseline)"
    anchor = "retain"
    grad_streams = ("retain",)

    def loss(self, model, batch, reference):
        retain = ce_mean(forward_logits(model, batch["retain"]), batch["retain"].labels)
        return retain, {"retain_nll": float(retain.detach())}
