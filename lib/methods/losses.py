"""Loss building blocks shared by the methods (token log-probs, NLL reductions, KL).

Conventions: `sequence_nll` is the per-sequence *sum* of answer-token NLLs (nats), as in the NPO
paper code and open-unlearning; `mean_nll` divides by the number of answer tokens; `ce_mean` is
the token mean over the whole batch (Hugging Face's `outputs.loss`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from lib.batches import IGNORE, Batch


def forward_logits(model: PreTrainedModel, batch: Batch) -> torch.Tensor:
    """Logits (B, T, V) in float32."""
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False)
    return out.logits.float()


def shifted(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Align logits at t with labels at t+1: returns (logits[:, :-1], labels[:, 1:])."""
    return logits[:, :-1, :], labels[:, 1:]


def token_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token NLL (B, T-1), zero outside answers, and the answer mask (B, T-1)."""
    logits, labels = shifted(logits, labels)
    mask = labels != IGNORE
    safe = labels.clamp(min=0)
    # One row per position: cross-entropy over a class dimension in the middle ((B, V, T), the
    # transposed layout) is several times slower on CPU, forward and backward
    # (bench/cross_entropy_layout.py).
    flat = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), safe.reshape(-1), reduction="none")
    nll = flat.view(safe.shape)
    return nll * mask, mask


def sequence_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B,) sum of answer-token NLL per sequence (nats)."""
    nll, _ = token_nll(logits, labels)
    return nll.sum(dim=1)


def mean_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B,) mean answer-token NLL per sequence (nats per token)."""
    nll, mask = token_nll(logits, labels)
    return nll.sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def ce_mean(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Token-mean NLL over the whole batch (= Hugging Face `outputs.loss`)."""
    nll, mask = token_nll(logits, labels)
    return nll.sum() / mask.sum().clamp(min=1)


def reduce_nll(logits: torch.Tensor, labels: torch.Tensor, reduction: str) -> torch.Tensor:
    """(B,) per-sequence NLL: `sum` (NPO paper, open-unlearning) or `mean` (SOUL variant)."""
    if reduction == "sum":
        return sequence_nll(logits, labels)
    if reduction == "mean":
        return mean_nll(logits, labels)
    raise ValueError(f"nll reduction must be 'sum' or 'mean', got {reduction!r}")


def kl_to_reference(
    logits: torch.Tensor, ref_logits: torch.Tensor, labels: torch.Tensor, mask: str = "answer"
) -> torch.Tensor:
    """KL(p_ref || p_theta) summed over the vocabulary and averaged over positions.

    `mask="answer"` averages over answer-token positions only (our default: prompt and padding
    positions carry no information about the retained answers). `mask="none"` reproduces
    open-unlearning's `kl_div(..., reduction='batchmean')` over all B*T positions, padding
    included.
    """
    logp = F.log_softmax(logits, dim=-1)
    logq = F.log_softmax(ref_logits, dim=-1)
    per_position = (logq.exp() * (logq - logp)).sum(dim=-1)  # (B, T)
    if mask == "none":
        return per_position.sum() / (per_position.shape[0] * per_position.shape[1])
    if mask == "answer":
        _, shifted_labels = shifted(logits, labels)
        keep = F.pad(shifted_labels != IGNORE, (0, 1), value=False)  # position t predicts t+1
        return (per_position * keep).sum() / keep.sum().clamp(min=1)
    raise ValueError(f"KL mask must be 'answer' or 'none', got {mask!r}")
