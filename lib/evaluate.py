"""Model -> per-example statistics (teacher-forced token log-probs, greedy generations).

Nothing here aggregates: `lib.metrics` turns these arrays into numbers. All functions run under
`torch.no_grad()`, batch examples of similar length together, and count the tokens they push
through the model so evaluation FLOPs can be reported (2 * N * tokens).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib.prompting import encode_pairs, encode_prompts_left, format_prompt

logger = logging.getLogger(__name__)


@dataclass
class TokenCounter:
    """Tokens pushed through forward passes (prompt + answer, or prompt + generated)."""

    tokens: int = 0


@dataclass
class AnswerScores:
    """Teacher-forced statistics of answer tokens, one entry per example.

    `logprobs[i]`: natural-log probability of each answer token (EOS included);
    `correct[i]`: whether the argmax prediction equals the answer token;
    `mu[i]`, `sigma[i]`: mean and std of log p over the vocabulary at each position (Min-K%++).
    """

    logprobs: list[np.ndarray] = field(default_factory=list)
    correct: list[np.ndarray] = field(default_factory=list)
    mu: list[np.ndarray] = field(default_factory=list)
    sigma: list[np.ndarray] = field(default_factory=list)

    @property
    def avg_nll(self) -> np.ndarray:
        """(n,) mean answer-token NLL per example (nats/token); lower = more likely."""
        return np.array([-lp.mean() for lp in self.logprobs])


def _length_order(lengths: Sequence[int]) -> list[int]:
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


@torch.no_grad()
def score_answers(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[str],
    answers: Sequence[str],
    context: str = "",
    batch_size: int = 16,
    vocab_stats: bool = False,
    counter: TokenCounter | None = None,
    max_length: int = 512,
) -> AnswerScores:
    """Teacher-forced answer statistics of `answers` given the QA prompt of `questions`."""
    if len(questions) != len(answers):
        raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
    device = next(model.parameters()).device
    prompts = [format_prompt(tokenizer, q, context) for q in questions]
    order = _length_order([len(p) + len(a) for p, a in zip(prompts, answers, strict=True)])
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None] = [None] * len(order)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = encode_pairs(
            tokenizer, [prompts[i] for i in idx], [answers[i] for i in idx], max_length
        ).to(device)
        logits = model(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False
        ).logits.float()
        if counter is not None:
            counter.tokens += batch.n_tokens
        labels = batch.labels[:, 1:]
        mask = labels != -100
        for row, i in enumerate(idx):
            positions = mask[row].nonzero().squeeze(-1)
            # log-softmax only at answer positions: the prompt's vocabulary rows are never used
            lp_all = F.log_softmax(logits[row, positions], dim=-1)  # (n_answer, V)
            target = labels[row, positions]
            lp = lp_all.gather(-1, target[:, None]).squeeze(-1)
            correct = lp_all.argmax(-1) == target
            if vocab_stats:
                p = lp_all.exp()
                mu = (p * lp_all).sum(-1)
                sigma = ((p * lp_all.pow(2)).sum(-1) - mu.pow(2)).clamp(min=1e-6).sqrt()
            else:
                mu = sigma = torch.zeros(0)
            out[i] = (
                lp.cpu().numpy(),
                correct.cpu().numpy(),
                mu.cpu().numpy(),
                sigma.cpu().numpy(),
            )
    scores = AnswerScores()
    for item in out:
        assert item is not None
        scores.logprobs.append(item[0])
        scores.correct.append(item[1])
        scores.mu.append(item[2])
        scores.sigma.append(item[3])
    return scores


def avg_nll_many(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[str],
    answer_sets: Sequence[Sequence[str]],
    context: str = "",
    batch_size: int = 16,
    counter: TokenCounter | None = None,
) -> np.ndarray:
    """(n, k) mean answer-token NLL of k candidate answers per question (perturbed answers)."""
    k = {len(a) for a in answer_sets}
    if len(k) != 1:
        raise ValueError("every question needs the same number of candidate answers")
    width = k.pop()
    flat_q = [q for q in questions for _ in range(width)]
    flat_a = [a for answers in answer_sets for a in answers]
    scores = score_answers(model, tokenizer, flat_q, flat_a, context, batch_size, False, counter)
    return scores.avg_nll.reshape(len(questions), width)


@torch.no_grad()
def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[str],
    context: str = "",
    max_new_tokens: int = 32,
    batch_size: int = 16,
    counter: TokenCounter | None = None,
) -> list[str]:
    """Greedy answers (decoded, special tokens stripped), stopping at EOS."""
    device = next(model.parameters()).device
    prompts = [format_prompt(tokenizer, q, context) for q in questions]
    order = _length_order([len(p) for p in prompts])
    texts: list[str] = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        input_ids, attention = encode_prompts_left(tokenizer, [prompts[i] for i in idx])
        output = model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention.to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new = output[:, input_ids.shape[1] :]
        for row, i in enumerate(idx):
            tokens = new[row].tolist()
            if tokenizer.eos_token_id in tokens:
                tokens = tokens[: tokens.index(tokenizer.eos_token_id)]
            texts[i] = tokenizer.decode(tokens, skip_special_tokens=True).strip()
            if counter is not None:
                counter.tokens += int(attention[row].sum()) + len(tokens)
    return texts
