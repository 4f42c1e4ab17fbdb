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
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from lib import distributed, models
from lib.batches import IGNORE, encode_pairs, encode_prompts_left, pad_id, pad_sequences
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


@dataclass
class SharedPromptResult:
    """What `score_and_generate` returns: per candidate set, `TokenScores` with one entry per
    (prompt, candidate) in prompt-major order; and one greedy generation per prompt."""

    scores: dict[str, TokenScores]
    generations: list[str]


def _prompt_cache_copy(cache: DynamicCache, repeats: int, rows: torch.Tensor) -> DynamicCache:
    """A fresh cache holding `rows` of `cache`, each repeated `repeats` times."""
    data = [
        (
            layer.keys[rows].repeat_interleave(repeats, 0),
            layer.values[rows].repeat_interleave(repeats, 0),
        )
        for layer in cache.layers
    ]
    return DynamicCache(ddp_cache_data=data)


@torch.no_grad()
def _score_continuations(
    model: PreTrainedModel,
    cache: DynamicCache,
    last_logits: torch.Tensor,
    prompt_mask: torch.Tensor,
    continuations: list[list[list[int]]],
    vocab_stats: bool,
) -> tuple[list[tuple[np.ndarray, ...]], int]:
    """Score k token continuations per prompt on top of the prompts' KV cache.

    The first continuation token is predicted by the prompt's last logits, token j > 0 by the
    output at continuation position j - 1: the same numbers as scoring prompt + continuation
    from scratch, without recomputing the prompt for every candidate.
    """
    device = last_logits.device
    k = len(continuations[0])
    flat = [ids for per_prompt in continuations for ids in per_prompt]
    width = max(len(ids) for ids in flat)
    n = len(flat)
    rows = torch.arange(prompt_mask.shape[0], device=device)
    tokens = torch.zeros((n, width), dtype=torch.long, device=device)
    cont_mask = torch.zeros((n, width), dtype=torch.long, device=device)
    for i, ids in enumerate(flat):
        tokens[i, : len(ids)] = torch.tensor(ids, device=device)
        cont_mask[i, : len(ids)] = 1
    prompt_mask_k = prompt_mask.repeat_interleave(k, 0)
    start = prompt_mask_k.sum(-1, keepdim=True)  # real prompt length = first position
    positions = start + torch.arange(width, device=device)[None, :]
    logits = model(
        input_ids=tokens,
        attention_mask=torch.cat([prompt_mask_k, cont_mask], dim=1),
        position_ids=positions,
        past_key_values=_prompt_cache_copy(cache, k, rows),
        use_cache=True,
    ).logits.float()
    predicting = torch.cat([last_logits.repeat_interleave(k, 0)[:, None], logits[:, :-1]], dim=1)
    # One log-softmax over the real positions of the whole batch (a Python loop per example
    # costs a kernel launch and a device sync each on a GPU).
    keep = cont_mask.bool()
    lp_all = F.log_softmax(predicting[keep], dim=-1)  # (n_real, V)
    target = tokens[keep]
    lp = lp_all.gather(-1, target[:, None]).squeeze(-1).cpu().numpy()
    correct = (lp_all.argmax(-1) == target).cpu().numpy()
    if vocab_stats:
        mu_t, sigma_t = vocab_moments(lp_all)
        mu, sigma = mu_t.cpu().numpy(), sigma_t.cpu().numpy()
    bounds = np.cumsum([0] + [len(ids) for ids in flat])
    empty = np.zeros(0, dtype=np.float32)
    out = []
    for i in range(n):
        a, b = bounds[i], bounds[i + 1]
        out.append(
            (
                lp[a:b],
                correct[a:b],
                mu[a:b] if vocab_stats else empty,
                sigma[a:b] if vocab_stats else empty,
            )
        )
    return out, int(cont_mask.sum())


@torch.no_grad()
def _greedy(
    model: PreTrainedModel,
    cache: DynamicCache,
    last_logits: torch.Tensor,
    prompt_mask: torch.Tensor,
    eos_id: int,
    max_new_tokens: int,
) -> tuple[list[list[int]], int]:
    """Greedy decoding from the prompts' cache; a row leaves the batch at its EOS (so finished
    answers cost nothing while longer ones go on). Returns the tokens before EOS per row."""
    device = last_logits.device
    n = prompt_mask.shape[0]
    generated: list[list[int]] = [[] for _ in range(n)]
    active = torch.arange(n, device=device)
    work = _prompt_cache_copy(cache, 1, active)
    mask = prompt_mask.clone()
    position = prompt_mask.sum(-1)
    next_tokens = last_logits.argmax(-1)
    tokens_run = 0
    for step in range(max_new_tokens):
        done = next_tokens == eos_id
        for row, token in zip(active.tolist(), next_tokens.tolist(), strict=True):
            if token != eos_id:
                generated[row].append(token)
        keep = (~done).nonzero().squeeze(-1)
        if keep.numel() == 0 or step == max_new_tokens - 1:
            break
        if keep.numel() < active.numel():
            work.batch_select_indices(keep)
            active, mask, position, next_tokens = (
                active[keep],
                mask[keep],
                position[keep],
                next_tokens[keep],
            )
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        out = model(
            input_ids=next_tokens[:, None],
            attention_mask=mask,
            position_ids=position[:, None],
            past_key_values=work,
            use_cache=True,
        )
        tokens_run += int(active.numel())
        position = position + 1
        next_tokens = out.logits[:, -1].float().argmax(-1)
    return generated, tokens_run


@torch.no_grad()
def score_and_generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    candidates: Mapping[str, Sequence[Sequence[str]]],
    *,
    vocab_stats: Collection[str] = (),
    generate: bool = False,
    max_new_tokens: int = 32,
    batch_size: int = 16,
    counter: TokenCounter | None = None,
    add_eos: bool = True,
) -> SharedPromptResult:
    """Score every candidate continuation of every prompt, and greedily answer each prompt,
    computing each prompt once.

    Args:
        candidates: name -> one list of continuations per prompt (the same number for every
            prompt within a name), e.g. {"answer": [[a1], [a2]], "perturbed": [[p11, ...], ...]}.
        vocab_stats: names whose scores also get Min-K%++ moments.
        generate: also decode greedily from each prompt (stops at EOS or `max_new_tokens`).

    The numbers equal `score_pairs`/`generate_from_prompts` on prompt + continuation (up to
    float summation order); see `bench/evaluate.py` for the speed-up.
    """
    for name, per_prompt in candidates.items():
        if len(per_prompt) != len(prompts):
            raise ValueError(
                f"candidates {name!r}: {len(per_prompt)} lists for {len(prompts)} prompts"
            )
        if len({len(c) for c in per_prompt}) > 1:
            raise ValueError(f"candidates {name!r}: every prompt needs the same number")
    unknown = set(vocab_stats) - set(candidates)
    if unknown:
        raise KeyError(f"vocab_stats names unknown candidate sets {sorted(unknown)}")
    device = _device(model)
    eos = tokenizer.eos_token_id
    encoded_prompts = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    encoded = {
        name: [
            [
                tokenizer(c, add_special_tokens=False)["input_ids"] + ([eos] if add_eos else [])
                for c in cs
            ]
            for cs in per_prompt
        ]
        for name, per_prompt in candidates.items()
    }
    order = _length_order([len(p) for p in encoded_prompts])
    mine = distributed.shard(order)
    local: dict[int, tuple[dict[str, list[tuple[np.ndarray, ...]]], str]] = {}
    tokens = 0
    for start in range(0, len(mine), batch_size):
        idx = mine[start : start + batch_size]
        input_ids, prompt_mask = pad_sequences(
            [encoded_prompts[i] for i in idx], pad_id(tokenizer), side="left"
        )
        input_ids, prompt_mask = input_ids.to(device), prompt_mask.to(device)
        positions = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
        with models.autocast(model):
            out = model(
                input_ids=input_ids,
                attention_mask=prompt_mask,
                position_ids=positions,
                use_cache=True,
            )
            cache, last_logits = out.past_key_values, out.logits[:, -1].float()
            tokens += int(prompt_mask.sum())
            per_row: list[dict[str, list[tuple[np.ndarray, ...]]]] = [{} for _ in idx]
            for name, per_prompt in encoded.items():
                scored, n_tokens = _score_continuations(
                    model,
                    cache,
                    last_logits,
                    prompt_mask,
                    [per_prompt[i] for i in idx],
                    name in vocab_stats,
                )
                tokens += n_tokens
                k = len(per_prompt[idx[0]])  # same for every prompt (checked above)
                for row in range(len(idx)):
                    per_row[row][name] = scored[row * k : (row + 1) * k]
            answers: list[list[int]] = [[] for _ in idx]
            if generate:
                answers, n_tokens = _greedy(
                    model, cache, last_logits, prompt_mask, eos, max_new_tokens
                )
                tokens += n_tokens + len(idx)
        for row, i in enumerate(idx):
            text = (
                tokenizer.decode(answers[row], skip_special_tokens=True).strip() if generate else ""
            )
            local[i] = (per_row[row], text)
    _count(counter, tokens)
    merged = distributed.gather_by_index(local)
    scores = {name: TokenScores() for name in candidates}
    for i in range(len(prompts)):
        for name in candidates:
            for lp, correct, mu, sigma in merged[i][0][name]:
                scores[name].logprobs.append(lp)
                scores[name].correct.append(correct)
                scores[name].mu.append(mu)
                scores[name].sigma.append(sigma)
    return SharedPromptResult(scores, [merged[i][1] for i in range(len(prompts))])


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


# --------------------------------------------------------------------------- fixed choices
def _ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


@torch.no_grad()
def score_choices(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    choices: Sequence[str],
    prefix: str = "",
    batch_size: int = 32,
    counter: TokenCounter | None = None,
) -> np.ndarray:
    """(len(prompts), len(choices)) natural-log probability of each choice after prefix + prompt
    (the sum over the choice's tokens); e.g. label words of a classification task, whose argmax
    is the prediction. Higher = more likely.

    `prefix`, every prompt and every choice are tokenised separately and concatenated (no
    special tokens), so a choice has the same tokens after every prompt. The prefix (e.g. an
    instruction and in-context demonstrations shared by every query) runs once and its key/value
    cache serves every batch of prompts, so a long shared prefix costs one forward pass. When
    every choice is one token, one pass per prompt reads all choices from the next-token
    distribution (prompts left-padded behind the prefix, logits of the last position only);
    otherwise each (prompt, choice) sequence is scored (right-padded). Padding is masked and
    positions continue from the prefix, so a row's scores do not depend on its batch. Runs under
    the model's autocast; in a multi-process run, prompts are split over the processes and
    gathered. `counter` gets the prefix tokens once plus every scored sequence's.
    """
    choice_ids = [_ids(tokenizer, c) for c in choices]
    if not choice_ids or any(not ids for ids in choice_ids):
        raise ValueError(f"every choice must tokenize to at least one token: {list(choices)}")
    prefix_ids = _ids(tokenizer, prefix)
    prompt_ids = [_ids(tokenizer, p) for p in prompts]
    if any(not ids for ids in prompt_ids):
        raise ValueError("every prompt must be non-empty (its last token predicts the choice)")
    device = _device(model)
    single = all(len(ids) == 1 for ids in choice_ids)
    n_choices = len(choice_ids)
    prefix_cache, tokens = None, 0
    if prefix_ids:
        with models.autocast(model):
            out = model(input_ids=torch.tensor([prefix_ids], device=device), use_cache=True)
        prefix_cache, tokens = out.past_key_values, len(prefix_ids)
    n_prefix = len(prefix_ids)
    order = _length_order([len(ids) for ids in prompt_ids])
    mine = distributed.shard(order)
    local: dict[int, np.ndarray] = {}
    for start in range(0, len(mine), batch_size):
        idx = mine[start : start + batch_size]
        # Single-token choices: one left-padded sequence per prompt, so every row ends at the
        # last column and only that column's logits are computed. Otherwise one right-padded
        # sequence per (prompt, choice), choice token t predicted by the output before it.
        seqs = (
            [prompt_ids[i] for i in idx]
            if single
            else [prompt_ids[i] + c for i in idx for c in choice_ids]
        )
        input_ids, mask = pad_sequences(seqs, pad_id(tokenizer), side="left" if single else "right")
        input_ids, mask = input_ids.to(device), mask.to(device)
        positions = n_prefix + (mask.cumsum(-1) - 1).clamp(min=0)
        kwargs: dict = {"position_ids": positions, "use_cache": prefix_cache is not None}
        if prefix_cache is not None:
            rows = torch.zeros(1, dtype=torch.long, device=device)
            kwargs["past_key_values"] = _prompt_cache_copy(prefix_cache, len(seqs), rows)
            prefix_mask = torch.ones((len(seqs), n_prefix), dtype=torch.long, device=device)
            kwargs["attention_mask"] = torch.cat([prefix_mask, mask], 1)
        else:
            kwargs["attention_mask"] = mask
        if single:
            kwargs["logits_to_keep"] = 1
        with models.autocast(model):
            logits = model(input_ids=input_ids, **kwargs).logits.float()
        tokens += int(mask.sum())
        if single:
            logp = F.log_softmax(logits[:, -1], dim=-1)[:, [c[0] for c in choice_ids]]
            for row, i in enumerate(idx):
                local[i] = logp[row].cpu().numpy().astype(np.float64)
            continue
        for row, i in enumerate(idx):
            n_p = len(prompt_ids[i])
            scores = np.empty(n_choices)
            for j, c in enumerate(choice_ids):
                lp = F.log_softmax(logits[row * n_choices + j, n_p - 1 : n_p - 1 + len(c)], dim=-1)
                scores[j] = float(lp.gather(-1, torch.tensor(c, device=device)[:, None]).sum())
            local[i] = scores
    _count(counter, tokens)
    merged = distributed.gather_by_index(local)
    return np.stack([merged[i] for i in range(len(prompts))]) if prompts else np.empty((0, 0))


@torch.no_grad()
def embed_texts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    layer: int = -1,
    batch_size: int = 32,
    counter: TokenCounter | None = None,
) -> np.ndarray:
    """(len(texts), hidden size) float32 mean over each text's tokens of the hidden states of
    decoder output `layer` (-1 = the last, after the final norm; 0 = the token embeddings), a
    sentence embedding from a causal LM. Texts are tokenised without special tokens; padding is
    excluded from the mean (masks from lengths). Runs under the model's autocast and is split
    over processes like the scoring functions.
    """
    ids = [_ids(tokenizer, t) for t in texts]
    if any(not i for i in ids):
        raise ValueError("cannot embed an empty text")
    device = _device(model)
    # the decoder stack alone: the vocabulary projection is not needed for hidden states
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    order = _length_order([len(i) for i in ids])
    mine = distributed.shard(order)
    local: dict[int, np.ndarray] = {}
    tokens = 0
    for start in range(0, len(mine), batch_size):
        idx = mine[start : start + batch_size]
        input_ids, mask = pad_sequences([ids[i] for i in idx], pad_id(tokenizer))
        with models.autocast(model):
            out = decoder(
                input_ids=input_ids.to(device),
                attention_mask=mask.to(device),
                output_hidden_states=True,
                use_cache=False,
            )
        hidden = out.hidden_states[layer].float()
        m = mask.to(device)[:, :, None].float()
        pooled = (hidden * m).sum(1) / m.sum(1)
        tokens += int(mask.sum())
        for r, i in enumerate(idx):
            local[i] = pooled[r].cpu().numpy()
    _count(counter, tokens)
    merged = distributed.gather_by_index(local)
    return np.stack([merged[i] for i in range(len(texts))]).astype(np.float32)
