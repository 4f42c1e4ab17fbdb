"""Tokenised batches of question/answer pairs or raw text, and the micro-batch streams that
training consumes.

Rows are mappings (a `datasets.Dataset` row, or any dict): a row with a `question` is a QA pair
(the prompt is formatted by `lib.prompting`, only the answer tokens + EOS are labelled); a row
with only `text` is raw text (every token after the first is labelled, as language-model
pre-training). Labels are -100 outside the scored span; masks come from lengths, never from pad
ids (so a real EOS is never hidden, open-unlearning issue #128).

Streams. A method declares the named streams it reads (`forget`, `retain`, `forget_idk`, ...).
`anchored_batches` walks the *anchor* stream for `epochs` shuffled passes in micro-batches and
pairs each micro-batch with (a) the same rows of *aligned* streams (e.g. the forget questions
with "I don't know" answers) and (b) an equally sized seeded random draw of each *sampled*
stream (e.g. retain), as open-unlearning's `ForgetRetainDataset`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from lib.prompting import format_prompt
from lib.specs import TrainSpec

IGNORE = -100
Row = Mapping[str, Any]


@dataclass
class Batch:
    """Right-padded token batch; `labels` = -100 outside the scored tokens."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device)
        )

    @property
    def n_tokens(self) -> int:
        """Real (non-padding) tokens in the batch: the unit of the FLOP count."""
        return int(self.attention_mask.sum())

    @property
    def answer_mask(self) -> torch.Tensor:
        """(B, T) bool: positions whose *label* is a scored token."""
        return self.labels != IGNORE

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


def pad_sequences(
    seqs: Sequence[Sequence[int]], pad: int, side: str = "right"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), both (len(seqs), longest) long tensors: token ids padded
    with `pad` on `side` ("right" for scoring and training, "left" for generation, so every
    row's last token sits in the last column); the mask is 1 on real tokens."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    width = max(len(ids) for ids in seqs)
    input_ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    attention = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, ids in enumerate(seqs):
        cols = slice(width - len(ids), width) if side == "left" else slice(0, len(ids))
        input_ids[i, cols] = torch.tensor(ids, dtype=torch.long)
        attention[i, cols] = 1
    return input_ids, attention


def _pad(rows: list[tuple[list[int], list[int]]], pad: int) -> Batch:
    input_ids, attention = pad_sequences([ids for ids, _ in rows], pad)
    labels, _ = pad_sequences([labs for _, labs in rows], IGNORE)
    # labels are as long as their ids; pad to the same width when every label row is shorter
    if labels.shape[1] < input_ids.shape[1]:
        extra = torch.full(
            (len(rows), input_ids.shape[1] - labels.shape[1]), IGNORE, dtype=torch.long
        )
        labels = torch.cat([labels, extra], dim=1)
    return Batch(input_ids, attention, labels)


def pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def encode_pairs(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    continuations: Sequence[str],
    max_length: int = 128,
    add_eos: bool = True,
) -> Batch:
    """Tokenise prompt/continuation pairs into one right-padded batch.

    Prompt and continuation are tokenised separately and concatenated so that the label span is
    exactly the continuation (plus EOS); sequences longer than `max_length` lose tokens at the
    end. An empty prompt gives raw-text scoring (the first token has no context and no label).
    """
    if len(prompts) != len(continuations):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
    if not prompts:
        raise ValueError("cannot encode an empty batch")
    rows: list[tuple[list[int], list[int]]] = []
    for prompt, text in zip(prompts, continuations, strict=True):
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"] if prompt else []
        a_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if add_eos:
            a_ids = a_ids + [tokenizer.eos_token_id]
        ids = (p_ids + a_ids)[:max_length]
        labels = ([IGNORE] * len(p_ids) + a_ids)[:max_length]
        if not p_ids and labels:
            labels[0] = IGNORE  # nothing predicts the first token of raw text
        rows.append((ids, labels))
    return _pad(rows, pad_id(tokenizer))


def encode_prompts_left(
    tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded prompt batch for generation: (input_ids, attention_mask)."""
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    return pad_sequences(encoded, pad_id(tokenizer), side="left")


def is_qa(row: Row) -> bool:
    """True for a question/answer row, False for a raw-text row."""
    if "question" in row:
        return True
    if "text" in row:
        return False
    raise KeyError(f"a row needs 'question' and 'answer', or 'text'; got keys {sorted(row)}")


def encode_rows(
    tokenizer: PreTrainedTokenizerBase, rows: Sequence[Row], max_length: int, context: str = ""
) -> Batch:
    """QA rows (prompt formatted, answer + EOS labelled) or text rows (all tokens labelled)."""
    if is_qa(rows[0]):
        prompts = [format_prompt(tokenizer, r["question"], context) for r in rows]
        return encode_pairs(tokenizer, prompts, [r["answer"] for r in rows], max_length)
    return encode_pairs(tokenizer, [""] * len(rows), [r["text"] for r in rows], max_length, False)


def epoch_orders(n: int, epochs: float, seed: int) -> list[int]:
    """Shuffled example indices for `epochs` passes (a fractional last pass is cut)."""
    rng = np.random.default_rng(seed)
    order: list[int] = []
    for _ in range(math.ceil(epochs)):
        order.extend(rng.permutation(n).tolist())
    return order[: max(1, int(round(epochs * n)))]


def n_micro_batches(n_rows: int, spec: TrainSpec) -> int:
    """Number of micro-batches `anchored_batches` yields for an anchor of `n_rows` rows."""
    return math.ceil(len(epoch_orders(n_rows, spec.epochs, spec.seed)) / spec.batch_size)


def anchored_batches(
    tokenizer: PreTrainedTokenizerBase,
    streams: Mapping[str, Sequence[Row]],
    spec: TrainSpec,
    anchor: str,
    aligned: Sequence[str] = (),
    sampled: Sequence[str] = (),
) -> Iterator[dict[str, Batch]]:
    """Micro-batches {stream name: Batch} over `spec.epochs` shuffled passes of the anchor.

    Seeds: the anchor order comes from `spec.seed`, the random draws of sampled streams from
    `spec.seed + 1`, so adding a sampled stream never changes the anchor order.
    """
    for name in (anchor, *aligned, *sampled):
        if name not in streams:
            raise KeyError(f"stream {name!r} is missing; given: {sorted(streams)}")
        if len(streams[name]) == 0:
            raise ValueError(f"stream {name!r} is empty")
    rows = streams[anchor]
    for name in aligned:
        if len(streams[name]) != len(rows):
            raise ValueError(f"aligned stream {name!r} must have as many rows as {anchor!r}")
    rng = np.random.default_rng(spec.seed + 1)
    order = epoch_orders(len(rows), spec.epochs, spec.seed)
    for start in range(0, len(order), spec.batch_size):
        idx = order[start : start + spec.batch_size]
        micro: dict[str, Batch] = {}
        for name in sampled:
            draw = rng.integers(0, len(streams[name]), size=len(idx))
            micro[name] = encode_rows(
                tokenizer, [streams[name][int(i)] for i in draw], spec.max_length
            )
        micro[anchor] = encode_rows(tokenizer, [rows[i] for i in idx], spec.max_length)
        for name in aligned:
            micro[name] = encode_rows(tokenizer, [streams[name][i] for i in idx], spec.max_length)
        yield micro
