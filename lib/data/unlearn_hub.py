"""The data of Yao et al. 2024 (`llmunlearn/unlearn_dataset`, Apache-2.0) through `datasets`,
in the `PretrainCorpora` interface of `lib.data.corpora` (rows with `CORPUS_FEATURES`).

Layout of the hub card (parquet files, one folder per config):

| config  | splits                           | text column | documents (card)          |
|---------|----------------------------------|-------------|---------------------------|
| arxiv   | forget, approximate, retain      | `text`      | 500 / 6,155 / 2,000       |
| github  | forget, approximate, retain      | `text`*     | 2,000 / 15,815 / 4,000    |
| general | retain, evaluation               | `content`   | 5,000 / 1,000             |

(*) an earlier revision of the card named the github column `content`; either name is accepted.
Domain configs map to `split(domain, "forget" | "approximate" | "retain")`, the general config
to `split("general", "retain" | "evaluation")`; `source_id` is "<config>/<split>/<row index>".
Documents are kept whole (the paper cuts them into 4096-token chunks; the core does the
chunking); `max_chars`, if given, truncates each document to its first `max_chars` characters
(for quick runs). `n_*` take the FIRST n rows of a split, as the official code's MIA takes the
first N approximate chunks; the slice is part of the `datasets` call, so large splits are not
materialised beyond it.

Caveat (seed_papers.md 2.8): the forget documents are known members only for Yi-6B; for any
other model the forget / approximate membership contrast is unknown.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import datasets

from lib.data.corpora import GENERAL, PretrainCorpora

logger = logging.getLogger(__name__)

__all__ = ["HUB_DOMAINS", "UNLEARN_HUB_ID", "load_unlearn_dataset"]

UNLEARN_HUB_ID = "llmunlearn/unlearn_dataset"
HUB_DOMAINS: tuple[str, ...] = ("arxiv", "github")
_DOMAIN_SPLITS = ("forget", "approximate", "retain")
_GENERAL_SPLITS = ("retain", "evaluation")
_TEXT_COLUMNS = ("text", "content")


def _check_size(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be None (all rows) or an integer >= 0, got {value!r}")
    return value


def load_unlearn_dataset(
    domains: Sequence[str] = HUB_DOMAINS,
    path: str = UNLEARN_HUB_ID,
    *,
    n_forget: int | None = None,
    n_approximate: int | None = None,
    n_retain: int | None = None,
    n_general_retain: int | None = None,
    n_general_eval: int | None = None,
    max_chars: int | None = None,
    revision: str | None = None,
    **load_kwargs: Any,
) -> PretrainCorpora:
    """The paper's forget / approximate / retain sets per domain and its general sets.

    Args:
        domains: a non-empty subset of ("arxiv", "github").
        path: the hub id (default "llmunlearn/unlearn_dataset") or a local folder with the same
            layout (README with the `configs:` list and the parquet files).
        n_forget, n_approximate, n_retain, n_general_retain, n_general_eval: first rows taken
            from each split (None = all).
        max_chars: truncate each document to this many characters (None = keep whole).
        revision: hub revision to pin.
        **load_kwargs: passed to `datasets.load_dataset` (e.g. `cache_dir`).

    Raises:
        ValueError: unknown domains or bad sizes (before anything is loaded), or a split
            without a `text` / `content` column.
    """
    domains = tuple(domains)
    if not domains or len(set(domains)) != len(domains) or not set(domains) <= set(HUB_DOMAINS):
        raise ValueError(f"domains must be distinct names from {HUB_DOMAINS}, got {domains!r}")
    sizes = {
        "forget": _check_size("n_forget", n_forget),
        "approximate": _check_size("n_approximate", n_approximate),
        "retain": _check_size("n_retain", n_retain),
    }
    general_sizes = {
        "retain": _check_size("n_general_retain", n_general_retain),
        "evaluation": _check_size("n_general_eval", n_general_eval),
    }
    max_chars = _check_size("max_chars", max_chars)

    def load(config: str, split: str, n: int | None) -> list[dict[str, Any]]:
        selector = split if n is None else f"{split}[:{n}]"
        ds = datasets.load_dataset(path, config, split=selector, revision=revision, **load_kwargs)
        column = next((c for c in _TEXT_COLUMNS if c in ds.column_names), None)
        if column is None:
            raise ValueError(
                f"{path} {config}/{split} has no text column (one of {_TEXT_COLUMNS}); "
                f"columns: {ds.column_names}"
            )
        domain = GENERAL if config == "general" else config
        rows = []
        for i, text in enumerate(ds[column]):
            text = text if max_chars is None else text[:max_chars]
            source_id = f"{config}/{split}/{i}"
            rows.append(
                {
                    "id": f"{domain}/{split}/{source_id}",
                    "text": text,
                    "source_id": source_id,
                    "domain": domain,
                    "split": split,
                    "n_chars": len(text),
                }
            )
        logger.info("loaded %s %s/%s: %d documents", path, config, split, len(rows))
        return rows

    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for domain in domains:
        for split in _DOMAIN_SPLITS:
            rows[(domain, split)] = load(domain, split, sizes[split])
    for split in _GENERAL_SPLITS:
        rows[(GENERAL, split)] = load("general", split, general_sizes[split])
    metadata = {
        "source": path,
        "revision": revision,
        "arguments": {
            "domains": list(domains),
            **{f"n_{k}": v for k, v in sizes.items()},
            "n_general_retain": general_sizes["retain"],
            "n_general_eval": general_sizes["evaluation"],
            "max_chars": max_chars,
        },
    }
    return PretrainCorpora(rows, metadata)
