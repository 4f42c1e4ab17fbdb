"""Per-example gradients of a causal-LM loss on a parameter subset P, with `torch.func`.

The loss of one example is the mean next-token cross-entropy (nats per target token) over its
labelled targets, exactly as Hugging Face's `labels=` loss computes it for a batch of one:
logits at position t predict `labels[t + 1]`, and targets equal to -100 are ignored. Summing the
per-example gradients therefore gives the gradient of the SUM over examples of per-example mean
losses (not of the token-weighted batch mean HF returns for a padded batch).

`per_sample_gradients` stacks the m per-example gradients into a matrix G (m x |P|, float32)
with `vmap(grad(...))` over `functional_call`, in chunks of examples to bound memory; the
returned `ParamLayout` maps a row (or any |P|-vector) back to named parameter tensors.

Padding: sequences must be RIGHT-padded (each attention-mask row is ones then zeros). Under a
causal mask a real token never attends to a later padding token, so the model is called without
an attention mask inside `vmap` (Hugging Face's mask construction uses data-dependent control
flow that `vmap` rejects) and padding only has to be excluded from the targets (label -100).
Left padding is refused with a `ValueError`.

Choosing P (`select_parameters`): decoder blocks are found by the name pattern
`...layers.N.` / `...h.N.` / `...blocks.N.` (Llama, Mistral, Qwen, OPT `model.decoder.layers.N`,
GPT-2 `transformer.h.N`, GPT-NeoX), the final norm by `norm` / `ln_f` / `final_layer_norm` /
`final_layernorm` outside the blocks. Tied embeddings (SmolLM2, the tiny test model): the output
head IS the input embedding matrix, and `named_parameters()` lists it once, under the embedding's
name (`model.embed_tokens.weight`). `scope="last_k"` leaves it out unless `include_head=True`;
then P holds that one shared matrix, its gradient is the sum of its two uses (input lookup and
output projection, `functional_call` ties them), and an update of it changes both. For SmolLM2
this matrix is 28.3M of the 134.5M parameters (49152 x 576), which is why it is out by default.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

__all__ = [
    "IGNORE_INDEX",
    "SCOPES",
    "ParamLayout",
    "loss_gradient",
    "per_sample_gradients",
    "prepare_targets",
    "select_parameters",
    "sequence_losses",
]

#: Label value of positions that are not targets (Hugging Face convention).
IGNORE_INDEX = -100
#: Names accepted by `select_parameters(scope=...)`.
SCOPES: tuple[str, ...] = ("last_k", "all")

_BLOCK = re.compile(r"(?:^|\.)(?:layers|h|blocks)\.(\d+)\.")
_FINAL_NORM = re.compile(
    r"(?:^|\.)(?:norm|ln_f|final_layer_norm|final_layernorm)\.(?:weight|bias)$"
)


# --------------------------------------------------------------------------- parameter layout
@dataclass(frozen=True)
class ParamLayout:
    """Names and shapes of the parameters in P, in the order of the flat |P|-vectors.

    A flat vector is the concatenation of `tensor.reshape(-1)` over `names`.
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def from_model(cls, model: nn.Module, names: Sequence[str]) -> ParamLayout:
        """Layout of the named parameters of `model` (KeyError naming the missing ones)."""
        named = dict(model.named_parameters())
        missing = [n for n in names if n not in named]
        if missing:
            raise KeyError(
                f"unknown parameter names {missing[:5]}; the model has e.g. {list(named)[:5]}"
            )
        if len(set(names)) != len(names):
            raise ValueError("parameter names must be unique")
        if not names:
            raise ValueError("P must contain at least one parameter")
        return cls(tuple(names), tuple(tuple(named[n].shape) for n in names))

    @property
    def sizes(self) -> tuple[int, ...]:
        """Number of scalars of each parameter."""
        return tuple(int(torch.Size(s).numel()) for s in self.shapes)

    @property
    def numel(self) -> int:
        """|P|: the length of a flat vector."""
        return sum(self.sizes)

    def flatten(self, tensors: Mapping[str, Tensor], dtype: torch.dtype = torch.float32) -> Tensor:
        """Concatenate `tensors[name]` over `names` into one |P|-vector of `dtype`."""
        return torch.cat([tensors[n].detach().reshape(-1).to(dtype) for n in self.names])

    def unflatten(self, vector: Tensor) -> dict[str, Tensor]:
        """Split a |P|-vector into named tensors of the layout's shapes (views of `vector`)."""
        if vector.ndim != 1 or vector.numel() != self.numel:
            raise ValueError(f"expected a vector of length {self.numel}, got {tuple(vector.shape)}")
        parts = torch.split(vector, list(self.sizes))
        return {n: p.view(s) for n, p, s in zip(self.names, parts, self.shapes, strict=True)}

    def get(self, model: nn.Module) -> Tensor:
        """Current values of P in `model` as a float32 |P|-vector (a copy)."""
        named = dict(model.named_parameters())
        return self.flatten({n: named[n] for n in self.names})

    @torch.no_grad()
    def set_(self, model: nn.Module, vector: Tensor) -> None:
        """Write a |P|-vector into the parameters of `model` (cast to each parameter's dtype)."""
        named = dict(model.named_parameters())
        for name, value in self.unflatten(vector).items():
            named[name].copy_(value.to(device=named[name].device, dtype=named[name].dtype))


# --------------------------------------------------------------------------- choosing P
def select_parameters(
    model: nn.Module, scope: str = "last_k", k: int = 2, include_head: bool = False
) -> list[str]:
    """Names of the parameters in P, in the model's order.

    Args:
        model: a Hugging Face causal LM (or any module with numbered blocks, see module doc).
        scope: `last_k` = the last `k` decoder blocks + the final norm; `all` = every parameter
            (tied embedding/head once).
        k: number of trailing decoder blocks (1..n_blocks) for `last_k`.
        include_head: with `last_k`, add the output head's weight; for tied embeddings this is
            the shared embedding matrix (see the module docstring).
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    names = [n for n, _ in model.named_parameters()]
    if scope == "all":
        return names
    blocks = {n: int(m.group(1)) for n in names if (m := _BLOCK.search(n))}
    if not blocks:
        raise ValueError(
            "no decoder blocks found (expected names like 'model.layers.N.' or 'transformer.h.N.')"
        )
    n_blocks = max(blocks.values()) + 1
    if not 1 <= k <= n_blocks:
        raise ValueError(f"k must be in 1..{n_blocks} for this model, got {k}")
    keep = {n for n, idx in blocks.items() if idx >= n_blocks - k}
    keep |= {n for n in names if n not in blocks and _FINAL_NORM.search(n)}
    if include_head:
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        if head is None:
            raise ValueError("include_head=True but the model has no output embeddings")
        keep |= {n for n, p in model.named_parameters() if p is head.weight}
    return [n for n in names if n in keep]


# --------------------------------------------------------------------------- inputs and losses
def prepare_targets(
    input_ids: Tensor, attention_mask: Tensor | None = None, labels: Tensor | None = None
) -> Tensor:
    """Validate a right-padded batch and return its labels (-100 on padding and non-targets).

    Raises ValueError for non-2-D input, left padding, labels on padding positions, or an
    example without any target (its mean loss would be undefined).
    """
    if input_ids.ndim != 2 or input_ids.shape[0] == 0 or input_ids.shape[1] < 2:
        raise ValueError(
            f"input_ids must have shape (m >= 1, L >= 2), got {tuple(input_ids.shape)}"
        )
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    if attention_mask.shape != input_ids.shape:
        raise ValueError("attention_mask must have the shape of input_ids")
    mask = attention_mask.to(torch.bool)
    # Right padding <=> the mask never switches from 0 back to 1 along a row.
    if bool((mask[:, 1:] & ~mask[:, :-1]).any()):
        raise ValueError("sequences must be right-padded (attention-mask rows: ones then zeros)")
    if labels is None:
        labels = input_ids.masked_fill(~mask, IGNORE_INDEX)
    elif labels.shape != input_ids.shape:
        raise ValueError("labels must have the shape of input_ids")
    elif bool(((labels != IGNORE_INDEX) & ~mask).any()):
        raise ValueError("labels on padding positions must be -100")
    n_targets = (labels[:, 1:] != IGNORE_INDEX).sum(dim=1)
    if bool((n_targets == 0).any()):
        bad = torch.nonzero(n_targets == 0).flatten().tolist()[:5]
        raise ValueError(f"examples {bad} have no target token (need labels != -100 after pos 0)")
    return labels


def sequence_losses(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean next-token cross-entropy per example (nats per target token), shape (B,).

    `logits` (B, L, V) at position t predict `labels[:, t + 1]`; targets -100 are ignored.
    """
    logits = logits[:, :-1].float()
    targets = labels[:, 1:]
    nll = nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view(targets.shape)
    count = (targets != IGNORE_INDEX).sum(dim=1).clamp(min=1)
    return nll.sum(dim=1) / count


def _as_layout(model: nn.Module, params: Sequence[str] | ParamLayout) -> ParamLayout:
    return params if isinstance(params, ParamLayout) else ParamLayout.from_model(model, params)


def _chunks(m: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, m, size):
        yield start, min(m, start + size)


def _trim(ids: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Drop trailing columns that are padding in every row of the chunk (saves compute)."""
    real = (labels != IGNORE_INDEX).any(dim=0).nonzero()
    length = int(real.max()) + 1
    return ids[:, :length], labels[:, :length]


# --------------------------------------------------------------------------- gradients
def per_sample_gradients(
    model: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    labels: Tensor | None = None,
    *,
    params: Sequence[str] | ParamLayout,
    chunk_size: int = 8,
    progress: bool = False,
) -> tuple[Tensor, ParamLayout]:
    """Per-example gradients G (m x |P|, float32, on the model's device) and their layout.

    Row i is d loss_i / d theta_P with loss_i the mean next-token NLL of example i (nats per
    target token). Computed with `vmap(grad(functional_call(...)))`, `chunk_size` examples at a
    time (peak memory grows with chunk_size x (activations + |P|)). The model is used as it is
    (call `model.eval()` first: `vmap` refuses random ops such as active dropout).

    Args:
        model: a causal LM returning `.logits`; parameters outside P are held fixed.
        input_ids: (m, L) token ids, right-padded.
        attention_mask: (m, L) 1 = real token, optional (all ones).
        labels: (m, L) targets, -100 = ignored; default `input_ids` with padding ignored.
        params: the names in P (see `select_parameters`) or a `ParamLayout`.
        chunk_size: examples per `vmap` call.
        progress: show a tqdm bar over chunks.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    layout = _as_layout(model, params)
    labels = prepare_targets(input_ids, attention_mask, labels)
    named = dict(model.named_parameters())
    device = named[layout.names[0]].device
    p_values = {n: named[n].detach() for n in layout.names}

    def example_loss(p: dict[str, Tensor], ids: Tensor, lab: Tensor) -> Tensor:
        out = functional_call(
            model, p, args=(), kwargs={"input_ids": ids[None], "use_cache": False}
        )
        return sequence_losses(out.logits, lab[None])[0]

    per_example = vmap(grad(example_loss), in_dims=(None, 0, 0))
    m = input_ids.shape[0]
    G = torch.empty(m, layout.numel, dtype=torch.float32, device=device)
    bounds = list(_chunks(m, chunk_size))
    # no_grad: parameters outside P must not record an autograd graph; `grad` ignores the
    # outer no_grad for its own inputs (torch.func semantics).
    with torch.no_grad(), _eager_attention(model):
        for start, stop in tqdm(bounds, desc="per-sample grads", disable=not progress):
            ids, lab = _trim(input_ids[start:stop].to(device), labels[start:stop].to(device))
            grads = per_example(p_values, ids, lab)
            G[start:stop] = torch.cat(
                [grads[n].reshape(stop - start, -1).float() for n in layout.names], dim=1
            )
    return G, layout


@contextlib.contextmanager
def _eager_attention(model: nn.Module) -> Iterator[None]:
    """Use the plain matmul+softmax attention while inside `vmap`, then restore.

    PyTorch has no `vmap` batching rule for the CPU flash kernel behind SDPA and falls back to a
    Python loop over the examples (a "performance drop" warning); eager attention is ordinary
    batched matmuls.
    """
    config = getattr(model, "config", None)
    before = getattr(config, "_attn_implementation", None)
    if config is None or before in (None, "eager"):
        yield
        return
    config._attn_implementation = "eager"
    try:
        yield
    finally:
        config._attn_implementation = before


@contextlib.contextmanager
def _only_p_trainable(model: nn.Module, names: Sequence[str]) -> Iterator[list[Tensor]]:
    """Temporarily set requires_grad on exactly P; yields P's tensors; restores the flags."""
    named = dict(model.named_parameters())
    before = {n: p.requires_grad for n, p in named.items()}
    keep = set(names)
    try:
        for n, p in named.items():
            p.requires_grad_(n in keep)
        yield [named[n] for n in names]
    finally:
        for n, p in named.items():
            p.requires_grad_(before[n])


def loss_gradient(
    model: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    labels: Tensor | None = None,
    *,
    params: Sequence[str] | ParamLayout,
    reduction: str = "sum",
    batch_size: int = 8,
) -> Tensor:
    """Gradient on P of the sum (or mean) over examples of per-example mean NLLs, a |P|-vector.

    Same loss as `per_sample_gradients` (so `reduction="sum"` equals `G.sum(0)`), computed
    with ordinary batched backward passes, `batch_size` examples at a time (cheaper than
    per-example gradients when only the total is needed, e.g. grad L(D_forget)). Float32.
    Direction: this is the ASCENT direction of the loss (adding it increases the loss).
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    layout = _as_layout(model, params)
    labels = prepare_targets(input_ids, attention_mask, labels)
    device = dict(model.named_parameters())[layout.names[0]].device
    total = torch.zeros(layout.numel, dtype=torch.float32, device=device)
    with _only_p_trainable(model, layout.names) as tensors:
        for start, stop in _chunks(input_ids.shape[0], batch_size):
            ids, lab = _trim(input_ids[start:stop].to(device), labels[start:stop].to(device))
            out = model(input_ids=ids, use_cache=False)
            loss = sequence_losses(out.logits, lab).sum()
            grads = torch.autograd.grad(loss, tensors)
            total += torch.cat([g.reshape(-1).float() for g in grads])
    if reduction == "mean":
        total /= input_ids.shape[0]
    return total
