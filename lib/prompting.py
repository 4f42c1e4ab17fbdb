"""The one QA prompt format of the study, and tokenisation into training/scoring batches.

Format: a ChatML user turn (`<|im_start|>user\\n{question}<|im_end|>\\n<|im_start|>assistant\\n`)
when the tokenizer knows the ChatML tokens (SmolLM2, Qwen), else the plain
`Question: {question}\\nAnswer: `. The answer follows the prompt directly and ends with the
tokenizer's EOS token. No system prompt is added: it would cost ~25 tokens per example. An
optional *context* (used by input-based unlearning) becomes a system turn (ChatML) or a
paragraph before the question (plain).

Labels are -100 on prompt and padding tokens; masks come from lengths, never from pad ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

CHATML_USER = "<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
CHATML_SYSTEM = "<|im_start|>system\n{context}<|im_end|>\n"
PLAIN_USER = "Question: {question}\nAnswer: "
IGNORE = -100


def uses_chatml(tokenizer: PreTrainedTokenizerBase) -> bool:
    """True when `<|im_start|>` is a single token of the vocabulary."""
    # convert_tokens_to_ids is O(1); get_vocab() copies the whole vocabulary (~35 ms).
    token_id = tokenizer.convert_tokens_to_ids("<|im_start|>")
    return token_id is not None and token_id != tokenizer.unk_token_id


def format_prompt(tokenizer: PreTrainedTokenizerBase, question: str, context: str = "") -> str:
    """The prompt text that precedes an answer."""
    if uses_chatml(tokenizer):
        system = CHATML_SYSTEM.format(context=context) if context else ""
        return system + CHATML_USER.format(question=question)
    head = f"{context}\n\n" if context else ""
    return head + PLAIN_USER.format(question=question)


@dataclass
class Batch:
    """Right-padded token batch; `labels` = -100 outside answer tokens."""

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
        """(B, T) bool: positions whose *label* is an answer token."""
        return self.labels != IGNORE


def encode_pairs(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    answers: Sequence[str],
    max_length: int = 128,
    add_eos: bool = True,
) -> Batch:
    """Tokenise prompt/answer pairs into one right-padded batch.

    Prompt and answer are tokenised separately and concatenated so that the label span is exactly
    the answer (plus EOS); sequences longer than `max_length` lose answer tokens at the end.
    """
    if len(prompts) != len(answers):
        raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
    if not prompts:
        raise ValueError("cannot encode an empty batch")
    rows: list[tuple[list[int], list[int]]] = []
    for prompt, answer in zip(prompts, answers, strict=True):
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        a_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        if add_eos:
            a_ids = a_ids + [tokenizer.eos_token_id]
        ids = (p_ids + a_ids)[:max_length]
        labels = ([IGNORE] * len(p_ids) + a_ids)[:max_length]
        rows.append((ids, labels))
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for i, (ids, labs) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        attention[i, : len(ids)] = 1
        labels[i, : len(labs)] = torch.tensor(labs)
    return Batch(input_ids, attention, labels)


def encode_prompts_left(
    tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded prompt batch for generation: (input_ids, attention_mask)."""
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    width = max(len(ids) for ids in encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(encoded), width), pad, dtype=torch.long)
    attention = torch.zeros((len(encoded), width), dtype=torch.long)
    for i, ids in enumerate(encoded):
        input_ids[i, width - len(ids) :] = torch.tensor(ids)
        attention[i, width - len(ids) :] = 1
    return input_ids, attention
