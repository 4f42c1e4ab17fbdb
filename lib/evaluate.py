"""Model -> per-example statistics (teacher-forced token log-probs, greedy generations).

Nothing here aggregates: `lib.metrics` turns these arrays into numbers. The core functions are
`score_pairs` (log-probs of a continuation given a prompt; an empty prompt scores raw text) and
`generate`; `score_texts`, `score_answers` and `avg_nll_many` are thin wrappers for raw text and
for the study's QA prompt format. All run under `torch.no_grad()` and the model's autocast,
batch examples of similar length together, count the tokens they push through the model
(evaluation FLOPs = 2 * N * tokens), and, in a multi-process run, split the examples over the
processes and gather the results, so every process returns every example exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib import distributed, models
from lib.batches import IGNORE, encode_pairs, encode_prompts_left
from lib.prompting import format_prompt

logger = logging.getLogger(__name__)


@dataclass
class TokenCounter:
    """Tokens pushed through forward passes (prompt + scored text, or prompt + generated)."""

    tokens: int = 0


@dataclass
class TokenScores:
    """Teacher-forced statistics of the scored tokens, one entry per example.

    `logprobs[i]`: natural-log probability of each scored token (an answer's closing EOS
    included when it was scored); `correct[i]`: whether the argmax prediction equals the token;
    `mu[i]`, `sigma[i]`: mean and std of log p over the vocabulary at each position (Min-K%++;
    empty unless asked for).
    """

    logprobs: list[np.ndarray] = field(default_factory=list)
    correct: list[np.ndarray] = field(default_factory=list)
    mu: list[np.ndarray] = field(default_factory=list)
    sigma: list[np.ndarray] = field(default_factory=list)

    @property
    def avg_nll(self) -> np.ndarray:
        """(n,) mean scored-token NLL per example (nats/token); lower = more likely."""
        return np.array([-lp.mean() for lp in self.logprobs])


#: Former name, kept for readers of older notebooks.
AnswerScores = TokenScores


def vocab_moments(logprobs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Min-K%++'s moments of each next-token distribution, from full-vocabulary log-probs.

    Args:
        logprobs: (n_positions, vocab) natural-log probabilities.

    Returns:
        `(mu, sigma)`, each (n_positions,): `mu = sum_v p_v log p_v` and `sigma` the standard
        deviation of `log p_v` under `p` (variance clamped at 1e-6, so sigma >= 1e-3 as the
        score's own clamp). Zero-probability tokens contribute nothing.
    """
    p = logprobs.exp()
    finite = torch.where(p > 0, logprobs, torch.zeros_like(logprobs))
    mu = (p * finite).sum(-1)
    variance = (p * finite.pow(2)).sum(-1) - mu.pow(2)
    return mu, variance.clamp(min=1e-6).sqrt()


def _length_order(lengths: Sequence[int]) -> list[int]:
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


def _device(model: PreTrainedModel) -> torch.device:
    return next(model.parameters()).device


def _count(counter: TokenCounter | None, local_tokens: int) -> None:
    if counter is not None:
        total = distributed.all_reduce_sum(torch.tensor([float(local_tokens)]))
        counter.tokens += int(total.item())


@torch.no_grad()
def score_pairs(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    continuations: Sequence[str],
    batch_size: int = 16,
    vocab_stats: bool = False,
    counter: TokenCounter | None = None,
    max_length: int = 512,
    add_eos: bool = True,
) -> TokenScores:
    """Teacher-forced statistics of `continuations` given `prompts` (see `TokenScores`)."""
    if len(prompts) != len(continuations):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
    device = _device(model)
    order = _length_order([len(p) + len(a) for p, a in zip(prompts, continuations, strict=True)])
    mine = distributed.shard(order)
    local: dict[int, tuple[np.ndarray, ...]] = {}
    tokens = 0
    for start in range(0, len(mine), batch_size):
        idx = mine[start : start + batch_size]
        batch = encode_pairs(
            tokenizer,
            [prompts[i] for i in idx],
            [continuations[i] for i in idx],
            max_length,
            add_eos,
        ).to(device)
        with models.autocast(model):
            logits = model(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False
            ).logits.float()
        tokens += batch.n_tokens
        labels = batch.labels[:, 1:]
        mask = labels != IGNORE
        for row, i in enumerate(idx):
            positions = mask[row].nonzero().squeeze(-1)
            # log-softmax only at scored positions: the prompt's vocabulary rows are never used
            lp_all = F.log_softmax(logits[row, positions], dim=-1)  # (n_scored, V)
            target = labels[row, positions]
            lp = lp_all.gather(-1, target[:, None]).squeeze(-1)
            correct = lp_all.argmax(-1) == target
            if vocab_stats:
                mu, sigma = vocab_moments(lp_all)
            else:
                mu = sigma = torch.zeros(0)
            local[i] = (
                lp.cpu().numpy(),
                correct.cpu().numpy(),
                mu.cpu().numpy(),
                sigma.cpu().numpy(),
            )
    _count(counter, tokens)
    merged = distributed.gather_by_index(local)
    scores = TokenScores()
    for i in range(len(prompts)):
        lp, correct, mu, sigma = merged[i]
        scores.logprobs.append(lp)
        scores.correct.append(correct)
        scores.mu.append(mu)
        scores.sigma.append(sigma)
    return scores


def score_texts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    batch_size: int = 16,
    vocab_stats: bool = False,
    counter: TokenCounter | None = None,
    max_length: int = 512,
) -> TokenScores:
    """Raw text: log-probs of every token after the first, no prompt and no EOS added."""
    return score_pairs(
        model,
        tokenizer,
        [""] * len(texts),
        texts,
        batch_size,
        vocab_stats,
        counter,
        max_length,
        add_eos=False,
    )


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
) -> TokenScores:
    """QA: statistics of `answers` (+ EOS) given the study's prompt of `questions`."""
    if len(questions) != len(answers):
        raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
    prompts = [format_prompt(tokenizer, q, context) for q in questions]
    return score_pairs(
        model, tokenizer, prompts, answers, batch_size, vocab_stats, counter, max_length
    )


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
def generate_from_prompts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    max_new_tokens: int = 32,
    batch_size: int = 16,
    counter: TokenCounter | None = None,
) -> list[str]:
    """Greedy continuations of formatted prompts (decoded, special tokens stripped), stopping
    at EOS."""
    device = _device(model)
    order = _length_order([len(p) for p in prompts])
    mine = distributed.shard(order)
    local: dict[int, str] = {}
    tokens = 0
    for start in range(0, len(mine), batch_size):
        idx = mine[start : start + batch_size]
        input_ids, attention = encode_prompts_left(tokenizer, [prompts[i] for i in idx])
        with models.autocast(model):
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
            ids = new[row].tolist()
            if tokenizer.eos_token_id in ids:
                ids = ids[: ids.index(tokenizer.eos_token_id)]
            local[i] = tokenizer.decode(ids, skip_special_tokens=True).strip()
            tokens += int(attention[row].sum()) + len(ids)
    _count(counter, tokens)
    merged = distributed.gather_by_index(local)
    return [merged[i] for i in range(len(prompts))]


def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[str],
    context: str = "",
    max_new_tokens: int = 32,
    batch_size: int = 16,
    counter: TokenCounter | None = None,
) -> list[str]:
    """Greedy answers to `questions` in the study's QA prompt format."""
    prompts = [format_prompt(tokenizer, q, context) for q in questions]
    return generate_from_prompts(model, tokenizer, prompts, max_new_tokens, batch_size, counter)
