"""Rank of a canary's secret among all n-digit secrets under a causal LM: an exact, pruned walk
of the digit tree over a shared prefix KV cache, with a capped fallback to the skew-normal
estimate. Exposure itself (from the rank) is `lib.metrics.exposure`.

Tokenisation (checked first, on SmolLM2's tokenizer, shared by `tiny-random`): digits are
always split ONE TOKEN PER DIGIT ('0'..'9' = ids 32..41), and a space before a digit is a token
of its own (' ' = 216): "PIN is 482913" -> ['P', 'IN', ' is', ' ', '4', '8', '2', '9', '1',
'3']. So a canary "<prefix> <n digits>" is the fixed prefix tokens (ending with the ' ' token)
followed by exactly n digit tokens, for every secret, leading zeros included. `secret_format`
derives the prefix ids from the tokenizer and verifies this structure on sample secrets; a
tokenizer that merges digit runs (GPT-2/OPT BPE) is refused with a ValueError.

The score of a secret r = d_1..d_n is log P(r | prefix) = sum_j log p(d_j | prefix, d_<j), the
model's full-vocabulary probability (nats; not renormalised over digits).

Exact walk (`secret_rank`). rank = 1 + #{candidates with a higher score than the true secret's
score T}. Every node of the digit tree (a digit prefix d_1..d_j) carries its partial score,
which can only decrease going deeper (log-probabilities are <= 0). A node whose partial score
is already <= T therefore cannot contain a candidate more likely than the secret, and its
subtree is pruned. The prefix is run once; its keys/values are reused (never recomputed) by every
node; each expanded node runs ONE token (its last digit) over the prefix cache plus the cached
keys/values of its own earlier digits, which its parent's expansion produced. Nodes of equal
depth are batched (`batch_size` per forward pass), deepest first, so the frontier (and the
cached digit keys/values it holds) stays small. Leaves (depth n) need no forward pass: their
score comes from their parent's logits. A memorised secret (high T) prunes almost everything;
an unmemorised one prunes little (about 10^(n-1) expansions), hence the cap `max_nodes`: past
it the walk stops and the rank is estimated from `n_samples` random candidates with the
skew-normal fit (`method="skewnorm"` in the result, with the exact count so far as a lower
bound on the rank).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from transformers import DynamicCache, PreTrainedTokenizerBase

from lib.metrics.exposure import exposure_from_rank, log_perplexity_bits, skewnorm_exposure

logger = logging.getLogger(__name__)

__all__ = [
    "METHODS",
    "RankResult",
    "SecretFormat",
    "score_secrets",
    "secret_format",
    "secret_rank",
]

#: Values of `RankResult.method`.
METHODS: tuple[str, ...] = ("exact", "skewnorm")


@dataclass(frozen=True)
class SecretFormat:
    """Token layout of a canary: `prefix_ids` then one token per digit (`digit_ids[d]`)."""

    prefix_ids: tuple[int, ...]
    digit_ids: tuple[int, ...]
    n_digits: int

    @property
    def space_size(self) -> int:
        """|R| = 10^n_digits."""
        return 10**self.n_digits

    def digits(self, secret: str | int) -> list[int]:
        """The n digits of a secret given as a string of n digits or an int in 0..|R|-1."""
        text = secret if isinstance(secret, str) else f"{int(secret):0{self.n_digits}d}"
        if len(text) != self.n_digits or not text.isdigit() or not text.isascii():
            raise ValueError(f"secret must be {self.n_digits} ASCII digits, got {secret!r}")
        return [int(c) for c in text]

    def code(self, secret: str | int) -> int:
        """The secret as an int in 0..|R|-1."""
        return int("".join(map(str, self.digits(secret))))


def secret_format(
    tokenizer: PreTrainedTokenizerBase,
    prefix: str,
    n_digits: int,
    *,
    add_special_tokens: bool = False,
    n_checks: int = 32,
    seed: int = 0,
) -> SecretFormat:
    """Derive and verify the token layout of `prefix + <n digits>`.

    `prefix` is the canary text up to the secret, including the space before it (e.g.
    "Ann Lee's account PIN is "). Verified on all-zeros, all-nines and `n_checks` random
    secrets: tokenize(prefix + secret) must equal prefix_ids + one digit token per digit.
    """
    if not 1 <= n_digits <= 9:
        raise ValueError(f"n_digits must be in 1..9, got {n_digits}")
    vocab = tokenizer.get_vocab()
    missing = [str(d) for d in range(10) if str(d) not in vocab]
    if missing:
        raise ValueError(f"the tokenizer has no single-digit tokens for {missing}")
    digit_ids = tuple(int(vocab[str(d)]) for d in range(10))

    def encode(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])

    reference = encode(prefix + "0" * n_digits)
    prefix_ids = tuple(reference[:-n_digits])
    if not prefix_ids:
        raise ValueError("the prefix must have at least one token")
    rng = np.random.default_rng(seed)
    samples = ["0" * n_digits, "9" * n_digits] + [
        f"{int(x):0{n_digits}d}" for x in rng.integers(0, 10**n_digits, size=n_checks)
    ]
    for secret in samples:
        expected = list(prefix_ids) + [digit_ids[int(c)] for c in secret]
        if encode(prefix + secret) != expected:
            raise ValueError(
                f"the tokenizer does not split {prefix + secret!r} into the prefix tokens plus "
                "one token per digit; exposure needs a fixed token sequence per secret "
                "(use a tokenizer that splits digits, or a secret format it tokenizes digit by "
                "digit)"
            )
    return SecretFormat(prefix_ids, digit_ids, n_digits)


# --------------------------------------------------------------------------- model helpers
def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _digit_log_probs(logits: Tensor, digit_ids: Tensor) -> Tensor:
    """Full-vocabulary log-probabilities of the 10 digit tokens, float64, shape (..., 10)."""
    return torch.log_softmax(logits.float(), dim=-1)[..., digit_ids].double()


def _prefix_pass(model: nn.Module, fmt: SecretFormat) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
    """Run the prefix once: first-digit log-probs (10,) and its per-layer (keys, values)."""
    ids = torch.tensor([fmt.prefix_ids], device=_device(model))
    out = model(input_ids=ids, use_cache=True)
    digit_ids = torch.tensor(fmt.digit_ids, device=ids.device)
    first = _digit_log_probs(out.logits[0, -1], digit_ids)
    kv = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
    return first, kv


def _cache(
    prefix_kv: list[tuple[Tensor, Tensor]],
    digits_kv: list[tuple[Tensor, Tensor]] | None,
    batch: int,
) -> DynamicCache:
    """Prefix cache expanded to `batch` rows (a view), followed by per-row digit keys/values."""
    data = []
    for layer, (k, v) in enumerate(prefix_kv):
        k_b, v_b = k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)
        if digits_kv is not None:
            k_b = torch.cat([k_b, digits_kv[layer][0]], dim=2)
            v_b = torch.cat([v_b, digits_kv[layer][1]], dim=2)
        data.append((k_b, v_b))
    return DynamicCache(data)


@torch.no_grad()
def score_secrets(
    model: nn.Module,
    fmt: SecretFormat,
    secrets: Sequence[str | int] | np.ndarray,
    *,
    batch_size: int = 256,
    use_cache: bool = True,
) -> np.ndarray:
    """log P(secret | prefix) in nats for each secret (brute force), float64 array.

    `use_cache=True` runs the prefix once and the digits of `batch_size` secrets per forward
    pass over the shared cache; `use_cache=False` runs every full canary from scratch (the
    naive baseline; same numbers up to float rounding).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    digits = torch.tensor([fmt.digits(s) for s in secrets], dtype=torch.long)
    if digits.numel() == 0:
        return np.zeros(0)
    device = _device(model)
    digit_ids = torch.tensor(fmt.digit_ids, device=device)
    tokens = digit_ids[digits.to(device)]  # (N, n)
    n, lp = fmt.n_digits, len(fmt.prefix_ids)
    out_scores = []
    if use_cache:
        first, prefix_kv = _prefix_pass(model, fmt)
    for start in range(0, len(digits), batch_size):
        tok = tokens[start : start + batch_size]
        if use_cache:
            score = first[digits[start : start + batch_size, 0].to(device)]
            if n > 1:
                out = model(
                    input_ids=tok[:, :-1],
                    past_key_values=_cache(prefix_kv, None, tok.shape[0]),
                    use_cache=True,
                )
                lps = _digit_log_probs(out.logits, digit_ids)  # (B, n-1, 10)
                picked = lps.gather(2, digits[start : start + batch_size, 1:, None].to(device))
                score = score + picked[..., 0].sum(1)
        else:
            prefix = torch.tensor(fmt.prefix_ids, device=device).expand(tok.shape[0], -1)
            out = model(input_ids=torch.cat([prefix, tok], dim=1), use_cache=False)
            lps = _digit_log_probs(out.logits[:, lp - 1 : lp - 1 + n], digit_ids)  # (B, n, 10)
            idx = digits[start : start + batch_size, :, None].to(device)
            score = lps.gather(2, idx)[..., 0].sum(1)
        out_scores.append(score.cpu())
    return torch.cat(out_scores).numpy()


# --------------------------------------------------------------------------- the walk
@dataclass
class RankResult:
    """Rank and exposure of one secret.

    rank: exact rank (1 = most likely) or None when the walk hit the cap.
    exposure: bits (log2 |R| - log2 rank, or the skew-normal estimate); higher = more memorised.
    method: `exact` or `skewnorm`.
    rank_lower_bound: 1 + candidates found more likely so far (= rank when exact).
    log_prob: log P(secret | prefix) in nats.
    nodes_expanded: tree nodes run through the model (one token each); forward_passes: batches.
    """

    rank: int | None
    exposure: float
    method: str
    rank_lower_bound: int
    log_prob: float
    space_size: int
    nodes_expanded: int
    forward_passes: int
    seconds: float


@dataclass
class _Chunk:
    """Frontier nodes of one depth produced by one expansion (vectorised)."""

    codes: np.ndarray  # int64 value of the digit prefix
    scores: np.ndarray  # float64 partial log-prob (nats)
    store: list[tuple[Tensor, Tensor]] | None  # per layer (B_parent, h, j-1, hd) digit keys/values
    rows: np.ndarray  # row of each node's parent in `store`


def _pop(chunks: list[_Chunk], limit: int) -> list[_Chunk]:
    """Take up to `limit` nodes from the end of a depth's stack of chunks."""
    taken, left = [], limit
    while chunks and left > 0:
        last = chunks[-1]
        if len(last.codes) <= left:
            taken.append(chunks.pop())
            left -= len(last.codes)
        else:
            cut = len(last.codes) - left
            taken.append(_Chunk(last.codes[cut:], last.scores[cut:], last.store, last.rows[cut:]))
            chunks[-1] = _Chunk(last.codes[:cut], last.scores[:cut], last.store, last.rows[:cut])
            left = 0
    return taken


@torch.no_grad()
def secret_rank(
    model: nn.Module,
    fmt: SecretFormat,
    secret: str | int,
    *,
    max_nodes: int = 50_000,
    batch_size: int = 256,
    n_samples: int = 5_000,
    seed: int = 0,
) -> RankResult:
    """Exact rank of `secret` among all 10^n secrets by the pruned digit-tree walk (module
    docstring); past `max_nodes` expanded nodes, the skew-normal estimate from `n_samples`
    random candidates (seeded by `seed`)."""
    if max_nodes < 0 or batch_size < 1 or n_samples < 10:
        raise ValueError("need max_nodes >= 0, batch_size >= 1 and n_samples >= 10")
    start_time = time.perf_counter()
    n = fmt.n_digits
    true_code = fmt.code(secret)
    device = _device(model)
    digit_ids = torch.tensor(fmt.digit_ids, device=device)
    first, prefix_kv = _prefix_pass(model, fmt)
    target = float(score_secrets(model, fmt, [true_code], batch_size=1)[0])

    more_likely = 0  # candidates found with a score > target (the true secret excluded)
    frontier: list[list[_Chunk]] = [[] for _ in range(n)]  # frontier[j]: nodes of depth j

    def add_children(codes: np.ndarray, scores: np.ndarray, depth: int, store, rows) -> None:
        """Children of depth `depth` (codes/scores flat): count leaves, push survivors."""
        nonlocal more_likely
        alive = scores > target
        if depth == n:
            more_likely += int(np.count_nonzero(alive & (codes != true_code)))
        elif alive.any():
            frontier[depth].append(_Chunk(codes[alive], scores[alive], store, rows[alive]))

    add_children(np.arange(10), first.cpu().numpy(), 1, None, np.zeros(10, dtype=np.int64))
    expanded = passes = 0
    capped = False
    while True:
        depth = next((j for j in range(n - 1, 0, -1) if frontier[j]), None)
        if depth is None:
            break
        if expanded >= max_nodes:
            capped = True
            break
        chunks = _pop(frontier[depth], min(batch_size, max(1, max_nodes - expanded)))
        codes = np.concatenate([c.codes for c in chunks])
        scores = np.concatenate([c.scores for c in chunks])
        batch = len(codes)
        digits_kv = None
        if depth > 1:  # the cached keys/values of each node's first depth-1 digits
            digits_kv = []
            for layer in range(len(prefix_kv)):
                parts_k, parts_v = [], []
                for c in chunks:
                    assert c.store is not None
                    idx = torch.as_tensor(c.rows, device=device)
                    parts_k.append(c.store[layer][0].index_select(0, idx))
                    parts_v.append(c.store[layer][1].index_select(0, idx))
                digits_kv.append((torch.cat(parts_k), torch.cat(parts_v)))
        last_digit = torch.as_tensor(codes % 10, device=device)
        out = model(
            input_ids=digit_ids[last_digit][:, None],
            past_key_values=_cache(prefix_kv, digits_kv, batch),
            use_cache=True,
            logits_to_keep=1,
        )
        expanded += batch
        passes += 1
        child_scores = (
            scores[:, None] + _digit_log_probs(out.logits[:, -1], digit_ids).cpu().numpy()
        )
        child_codes = codes[:, None] * 10 + np.arange(10)[None, :]
        lp = len(fmt.prefix_ids)
        store = None
        if depth + 1 < n:  # children will be expanded: keep this node's digit keys/values
            # A copy of the digit part only, so the prefix copies of this batch can be freed.
            store = [
                (layer.keys[:, :, lp:].contiguous(), layer.values[:, :, lp:].contiguous())
                for layer in out.past_key_values.layers
            ]
        rows = np.repeat(np.arange(batch), 10)
        add_children(child_codes.reshape(-1), child_scores.reshape(-1), depth + 1, store, rows)

    lower = 1 + more_likely
    if not capped:
        rank = lower
        exposure = exposure_from_rank(rank, fmt.space_size)
        method = "exact"
    else:
        rank = None
        rng = np.random.default_rng(seed)
        candidates = rng.integers(0, fmt.space_size - 1, size=n_samples)
        candidates = candidates + (candidates >= true_code)  # uniform over R minus the secret
        px = log_perplexity_bits(score_secrets(model, fmt, candidates, batch_size=batch_size))
        exposure = skewnorm_exposure(px, float(log_perplexity_bits(target)), fmt.space_size)
        method = "skewnorm"
        logger.info(
            "secret walk capped at %d nodes (>= %d more likely found): skew-normal estimate",
            expanded,
            more_likely,
        )
    return RankResult(
        rank=rank,
        exposure=exposure,
        method=method,
        rank_lower_bound=lower,
        log_prob=target,
        space_size=fmt.space_size,
        nodes_expanded=expanded,
        forward_passes=passes,
        seconds=time.perf_counter() - start_time,
    )
