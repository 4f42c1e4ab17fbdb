"""Secret-sharer canaries (Carlini et al. 2019) as a `datasets.Dataset`, and their insertion
into owner-attributed documents. Pure Python + numpy + datasets; no model.

A canary belongs to an owner (an author): a sentence rendered from a template such as
"{name}'s account PIN is {secret}" with a secret drawn uniformly from all n-digit strings
(|R| = 10^n, zero-padded, distinct across canaries), an insertion count (repetitions, default
{1, 4, 16}, balanced within each group) and a group: `forget` (its owner's documents are to be
unlearned: exposure should fall) or `retain` (controls: exposure should stay).

Token layout (see `lib.algorithms.secret_rank`): with SmolLM2's tokenizer digits are one token
each and the space before the secret is its own token, so every secret is a fixed sequence of
n digit tokens after a fixed prefix. In documents a canary is always inserted as
" <canary>." right after a sentence-ending "." (or at the very end of the text), i.e. always
preceded by a space; the column `scoring_prefix` (" " + prefix) reproduces exactly the tokens
the model saw before the secret (" Ann" rather than "Ann" at the start of a sequence), so pass it
to `secret_format` when measuring exposure.

Insertion (`insert_canaries`), deterministic from `seed` and the canary id (sha256, no global
random state):
- `spread` (default): the c occurrences of a canary go into its owner's existing documents,
  round-robin from a hashed starting document, each at a hashed sentence boundary. The corpus
  keeps its documents and their other content; only the canary is repeated. Chosen as the
  default because repeating whole documents ("copies") would also repeat, and so strengthen
  the memorisation of, the surrounding biography text, confounding per-canary exposure with
  document duplication.
- `copies`: each occurrence goes into a NEW copy of one of the owner's documents (round-robin
  from a hashed start, at a hashed boundary), appended after the originals (column
  `is_copy`). Closer to "insert the canary sequence c times" as in Carlini et al.

Documents contract: a `datasets.Dataset` with an owner column (default `author`) and `text`,
whose sentences end with ". ". Every canary owner must own at least one document.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from string import Formatter
from typing import Any

import numpy as np
from datasets import Dataset

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_REPETITIONS",
    "DEFAULT_TEMPLATE",
    "GROUPS",
    "INSERT_MODES",
    "content_hash",
    "insert_canaries",
    "make_canaries",
]

DEFAULT_TEMPLATE = "{name}'s account PIN is {secret}"
DEFAULT_REPETITIONS: tuple[int, ...] = (1, 4, 16)
GROUPS: tuple[str, ...] = ("forget", "retain")
INSERT_MODES: tuple[str, ...] = ("spread", "copies")


def content_hash(dataset: Dataset) -> str:
    """First 16 hex chars of sha256 over the canonical JSON of the rows (for manifests)."""
    payload = json.dumps(dataset.to_list(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def _hash_int(*parts: Any) -> int:
    key = ":".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big")


def _split_template(template: str) -> tuple[str, str]:
    """Template -> (text before {secret}, text after); only {name} and {secret} are allowed."""
    fields = [f for _, f, _, _ in Formatter().parse(template) if f is not None]
    if sorted(fields) != ["name", "secret"]:
        raise ValueError(
            f"template must contain {{name}} and {{secret}} exactly once each, got fields {fields}"
        )
    before, after = template.split("{secret}")
    return before, after


def make_canaries(
    forget_owners: Sequence[str],
    retain_owners: Sequence[str],
    *,
    repetitions: Sequence[int] = DEFAULT_REPETITIONS,
    n_digits: int = 6,
    template: str = DEFAULT_TEMPLATE,
    seed: int = 0,
) -> Dataset:
    """One canary per owner, as a Dataset with columns:

    canary_id (`c0000`...), owner, group (`forget`/`retain`), template, secret (n-digit string),
    n_digits, repetitions (insertion count), text (the rendered canary, no final period),
    prefix (text before the secret, ending with its space), scoring_prefix (" " + prefix, see
    the module docstring).

    Repetitions are assigned cyclically over a seeded permutation of each group's owners, so
    every count appears equally often (+-1) in each group. Secrets are distinct, uniform over
    0..10^n - 1, seeded.
    """
    if not 1 <= n_digits <= 9:
        raise ValueError(f"n_digits must be in 1..9, got {n_digits}")
    reps = [int(r) for r in repetitions]
    if not reps or any(r < 1 for r in reps):
        raise ValueError(f"repetitions must be non-empty positive integers, got {repetitions}")
    owners = list(forget_owners) + list(retain_owners)
    if len(set(owners)) != len(owners):
        raise ValueError("an owner appears twice (in one group or in both)")
    if not owners:
        raise ValueError("need at least one owner")
    if len(owners) > 10**n_digits:
        raise ValueError(f"{len(owners)} canaries do not fit distinct {n_digits}-digit secrets")
    before, after = _split_template(template)
    rng = np.random.default_rng(seed)
    secrets = rng.choice(10**n_digits, size=len(owners), replace=False)
    rows = []
    for group, members in (("forget", list(forget_owners)), ("retain", list(retain_owners))):
        order = rng.permutation(len(members))
        count = {int(idx): reps[pos % len(reps)] for pos, idx in enumerate(order)}
        for i, owner in enumerate(members):
            secret = f"{int(secrets[len(rows)]):0{n_digits}d}"
            prefix = before.format(name=owner)
            rows.append(
                {
                    "canary_id": f"c{len(rows):04d}",
                    "owner": owner,
                    "group": group,
                    "template": template,
                    "secret": secret,
                    "n_digits": n_digits,
                    "repetitions": count[i],
                    "text": prefix + secret + after.format(name=owner),
                    "prefix": prefix,
                    "scoring_prefix": " " + prefix,
                }
            )
    return Dataset.from_list(rows)


def _boundaries(text: str) -> list[int]:
    """Insertion points: right after every sentence-ending '.' and at the end of the text."""
    points = [i + 1 for i, ch in enumerate(text) if ch == "." and text[i + 1 : i + 2] in ("", " ")]
    if not points or points[-1] != len(text):
        points.append(len(text))
    return points


def _insert(text: str, pieces: list[tuple[int, int, str]]) -> str:
    """Insert (position, order, string) pieces into text (positions refer to the original)."""
    out, last = [], 0
    for pos, _, piece in sorted(pieces):
        out.append(text[last:pos])
        out.append(piece)
        last = pos
    out.append(text[last:])
    return "".join(out)


def insert_canaries(
    documents: Dataset,
    canaries: Dataset,
    *,
    owner_column: str = "author",
    text_column: str = "text",
    mode: str = "spread",
    seed: int = 0,
) -> Dataset:
    """Insert every canary `repetitions` times into its owner's documents (module docstring).

    Returns the documents with the canaries inserted and a column `canary_ids` (ids inserted
    into each row, with multiplicity); mode `copies` appends the new rows after the originals
    and adds a boolean column `is_copy`. Each occurrence is the string " <canary text>." placed
    after a sentence-ending "." or at the end of the text.
    """
    if mode not in INSERT_MODES:
        raise ValueError(f"mode must be one of {INSERT_MODES}, got {mode!r}")
    for column in (owner_column, text_column):
        if column not in documents.column_names:
            raise KeyError(f"documents have no column {column!r}: {documents.column_names}")
    needed = {"canary_id", "owner", "text", "repetitions"}
    if not needed <= set(canaries.column_names):
        raise KeyError(f"canaries need columns {sorted(needed)}, have {canaries.column_names}")
    owners = documents[owner_column]
    texts = documents[text_column]
    by_owner: dict[str, list[int]] = defaultdict(list)
    for row, owner in enumerate(owners):
        by_owner[owner].append(row)
    missing = sorted({o for o in canaries["owner"] if o not in by_owner})
    if missing:
        raise KeyError(f"canary owners without documents: {missing[:5]}")

    pieces: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
    copies: list[tuple[int, int, str, str]] = []  # (source row, position, piece, canary id)
    for canary in canaries:
        rows = by_owner[canary["owner"]]
        piece = " " + canary["text"] + "."
        start = _hash_int(seed, canary["canary_id"], "doc") % len(rows)
        for k in range(int(canary["repetitions"])):
            row = rows[(start + k) % len(rows)]
            points = _boundaries(texts[row])
            pos = points[_hash_int(seed, canary["canary_id"], k) % len(points)]
            if mode == "spread":
                pieces[row].append((pos, len(pieces[row]), piece))
            else:
                copies.append((row, pos, piece, canary["canary_id"]))
    ids_of = {c["text"]: c["canary_id"] for c in canaries}

    def canary_ids(row: int) -> list[str]:
        return [ids_of[p[1:-1]] for _, _, p in sorted(pieces.get(row, []))]

    data = documents.to_dict()  # column order and the other columns are kept
    data[text_column] = [_insert(t, pieces.get(row, [])) for row, t in enumerate(texts)]
    data["canary_ids"] = [canary_ids(row) for row in range(len(texts))]
    if mode == "copies":
        data["is_copy"] = [False] * len(texts)
        for row, pos, piece, cid in copies:
            record = documents[row]
            for column in documents.column_names:
                data[column].append(record[column])
            data[text_column][-1] = _insert(texts[row], [(pos, 0, piece)])
            data["canary_ids"].append([cid])
            data["is_copy"].append(True)
    out = Dataset.from_dict(data)
    counts = Counter(cid for ids in out["canary_ids"] for cid in ids)
    logger.info("inserted %d canary occurrences (%s mode)", sum(counts.values()), mode)
    return out
