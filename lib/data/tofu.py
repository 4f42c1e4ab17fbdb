"""Real TOFU (`locuslab/TOFU`, Maini et al. 2024) through `datasets`, in the generated
benchmark's interface and schema (`lib.data.schema.QABenchmark`, `QA_FEATURES`).

What it loads. TOFU's hub card has one config per file, each with a single split "train":
`full` (4000 QA = 200 authors x 20, in author order), `forget01/05/10` (the last 2/10/20
authors), `retain99/95/90` (the rest), `forgetXX_perturbed` and `retain_perturbed` (400 retain
rows) with `paraphrased_answer`, `perturbed_answer` (a list of 5) and, where present,
`paraphrased_question`; `holdout01/05/10` (new authors, never in `full`, for MIA); and
`real_authors` / `world_facts` (question, option1-4, answer) with their `*_perturbed` variants
(columns as TOFU's evaluation reads them: question, answer, paraphrased_answer,
perturbed_answer). Each config is loaded once, on first use, with
`datasets.load_dataset(path, config, split="train")`; `path` may be the hub id or a local
folder laid out like the hub repository (a README with the `configs:` list, JSON files), which
is how the tests run offline.

Mapping onto our columns (what TOFU lacks and how it is filled):
- `author`: TOFU has no author column; rows are in author order, so the author is
  "tofu_author_NNN" = (index of the question in `full`) // 20, and "tofu_holdout_NNN" for the
  holdout configs (index // 20 within `holdout10`, else within the config).
- `value`: "" (TOFU has no gold fact span): fact accuracy is UNAVAILABLE on TOFU; use ROUGE and
  the truth ratio. `attribute` and the four template ids are "" and `value_shared` False.
- `paraphrased_question` / `paraphrased_answer` / `perturbed_answers`: from the matching
  `*_perturbed` config, joined on the question; "" / "" / [] for rows it does not cover (TOFU's
  `retain_perturbed` covers 400 retain rows only: use split "retain_perturbed" for truth ratios
  on retain data). A missing `paraphrased_question` is "" (TOFU's own evaluation asks the
  original question with the paraphrased answer).
- `idk_answer`: TOFU's IDK answers (`data/idontknow.jsonl`) are not part of the hub dataset;
  one of our `IDK_ANSWERS` is chosen per row from a hash of the question (deterministic).
- multi-hop, combined questions and documents do not exist for TOFU: those methods return
  empty datasets with the right schema (`capabilities` says so).

Splits: `full`, `forgetXX`, `retainXX` (= TOFU's retain(100-XX)), `retain_perturbed`,
`holdout` (= `holdout10`) and `holdoutXX`, plus validation splits `forgetXX_val` /
`retainXX_val` built here (TOFU has none): `len(forgetXX)` retain authors whose rows are all in
`retain_perturbed` (so they carry paraphrases and perturbed answers), chosen by a seeded
permutation; `retainXX_val` = `full` minus them. They exist only when enough authors are fully
covered. Probes: `real_authors` and `world_facts` as `PROBE_FEATURES` rows.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

import datasets
import numpy as np
from datasets import Dataset

from lib.data.author_words import IDK_ANSWERS
from lib.data.schema import (
    COMBINED_FEATURES,
    DOCUMENT_FEATURES,
    MULTIHOP_FEATURES,
    PROBE_FEATURES,
    QA_FEATURES,
    canonical_hash,
    empty_dataset,
    rows_to_dataset,
)

logger = logging.getLogger(__name__)

__all__ = ["TOFU_HUB_ID", "TOFU_SPLIT_NAMES", "TofuBenchmark", "load_tofu"]

TOFU_HUB_ID = "locuslab/TOFU"

_SUFFIXES = ("01", "05", "10")
_FORGET = tuple(f"forget{s}" for s in _SUFFIXES)
_VAL = tuple(f"{f}_val" for f in _FORGET)

#: Our split name -> (TOFU config of the rows, TOFU config with paraphrases / perturbations).
_CONFIGS: dict[str, tuple[str, str | None]] = {
    "full": ("full", None),
    **{f"forget{s}": (f"forget{s}", f"forget{s}_perturbed") for s in _SUFFIXES},
    **{f"retain{s}": (f"retain{100 - int(s)}", "retain_perturbed") for s in _SUFFIXES},
    "retain_perturbed": ("retain_perturbed", "retain_perturbed"),
    "holdout": ("holdout10", None),
    **{f"holdout{s}": (f"holdout{s}", None) for s in _SUFFIXES},
}

#: Every split name a `TofuBenchmark` may have (validation splits only with enough coverage).
TOFU_SPLIT_NAMES: tuple[str, ...] = (
    *_CONFIGS,
    *_VAL,
    *(f"retain{s}_val" for s in _SUFFIXES),
)

#: Configs whose absence is tolerated (older revisions of the card lack the holdout sets).
_OPTIONAL = frozenset({"holdout01", "holdout05", "holdout10"})


def _idk(question: str) -> str:
    digest = hashlib.sha256(question.encode("utf-8")).digest()
    return IDK_ANSWERS[digest[0] % len(IDK_ANSWERS)]


class TofuBenchmark:
    """Real TOFU in the interface of `lib.data.schema.QABenchmark` (build with `load_tofu`)."""

    def __init__(
        self,
        load: Callable[[str], Dataset | None],
        *,
        forget_split: str,
        qa_per_author: int,
        seed: int,
        source: str,
    ) -> None:
        self._load_config = load
        self._cache: dict[str, Dataset | None] = {}
        #: The forget split the study uses by default.
        self.forget_split = forget_split
        self.qa_per_author = qa_per_author
        self.seed = seed
        #: Hub id or local folder the data came from.
        self.source = source
        self._author_of: dict[str, str] | None = None
        self._val: dict[str, tuple[str, ...]] | None = None
        self._row_cache: dict[str, list[dict[str, Any]]] = {}

    def __repr__(self) -> str:
        return f"TofuBenchmark(source={self.source!r}, forget_split={self.forget_split!r})"

    # -- loading ----------------------------------------------------------------------------

    def _config(self, name: str) -> Dataset | None:
        if name not in self._cache:
            self._cache[name] = self._load_config(name)
        return self._cache[name]

    def _required(self, name: str) -> Dataset:
        ds = self._config(name)
        if ds is None:
            raise KeyError(f"TOFU config {name!r} is not available in {self.source!r}")
        return ds

    def _authors_by_question(self) -> dict[str, str]:
        """Question -> author id, from the order of `full` (and `holdout10`)."""
        if self._author_of is None:
            mapping: dict[str, str] = {}
            for i, q in enumerate(self._required("full")["question"]):
                mapping.setdefault(q, f"tofu_author_{i // self.qa_per_author:03d}")
            holdout = self._config("holdout10")
            for i, q in enumerate(holdout["question"] if holdout is not None else []):
                mapping.setdefault(q, f"tofu_holdout_{i // self.qa_per_author:03d}")
            self._author_of = mapping
        return self._author_of

    def _rows(self, name: str) -> list[dict[str, Any]]:
        self._check(name)
        if name not in self._row_cache:
            self._row_cache[name] = self._build_rows(name)
        return self._row_cache[name]

    def _build_rows(self, name: str) -> list[dict[str, Any]]:
        if name.endswith("_val"):
            members = set(self._validation()[name.replace("retain", "forget")])
            keep = name.startswith("forget")
            return [r for r in self._rows("full") if (r["author"] in members) == keep]
        config, perturbed_config = _CONFIGS[name]
        ds = self._config(config)
        if ds is None:  # an optional holdout config is missing
            return []
        extra: dict[str, dict[str, Any]] = {}
        sources = [perturbed_config] if perturbed_config else []
        if name == "full":
            sources = [*(f"{f}_perturbed" for f in _FORGET), "retain_perturbed"]
        for source in sources:
            pds = self._config(source)
            for row in pds.to_list() if pds is not None else []:
                extra.setdefault(row["question"], row)
        author_of = self._authors_by_question()
        out = []
        for i, row in enumerate(ds.to_list()):
            question = row["question"]
            more = extra.get(question, {})
            author = author_of.get(question)
            if author is None:
                author = f"tofu_{config}_{i // self.qa_per_author:03d}"
            out.append(
                {
                    "id": f"tofu/{config}/{i:04d}",
                    "author": author,
                    "attribute": "",
                    "question": question,
                    "answer": row["answer"],
                    "value": "",
                    "paraphrased_question": more.get("paraphrased_question") or "",
                    "paraphrased_answer": more.get("paraphrased_answer") or "",
                    "perturbed_answers": list(more.get("perturbed_answer") or []),
                    "idk_answer": _idk(question),
                    "question_template": "",
                    "answer_template": "",
                    "paraphrased_question_template": "",
                    "paraphrased_answer_template": "",
                    "value_shared": False,
                }
            )
        return out

    def _validation(self) -> dict[str, tuple[str, ...]]:
        """Validation forget split ("forget10_val", ...) -> authors (empty dict when too few
        authors are fully covered by `retain_perturbed`)."""
        if self._val is None:
            forget10 = {r["author"] for r in self._rows("forget10")}
            per_author: dict[str, int] = {}
            for row in self._rows("retain_perturbed"):
                per_author[row["author"]] = per_author.get(row["author"], 0) + 1
            covered = sorted(
                a for a, n in per_author.items() if n >= self.qa_per_author and a not in forget10
            )
            perm = np.random.default_rng([self.seed, 7]).permutation(len(covered))
            order = [covered[int(i)] for i in perm]
            self._val = {}
            counts = {f: len({r["author"] for r in self._rows(f)}) for f in _FORGET}
            n_authors = len(set(self._authors_by_question().values()))
            if len(order) >= counts["forget10"] and n_authors > 2 * counts["forget10"]:
                for forget in _FORGET:
                    self._val[f"{forget}_val"] = tuple(order[: counts[forget]])
            else:
                logger.warning(
                    "TOFU: only %d retain authors are fully covered by retain_perturbed; "
                    "no validation splits",
                    len(order),
                )
        return self._val

    # -- the QABenchmark interface ----------------------------------------------------------

    @property
    def capabilities(self) -> frozenset[str]:
        """{"validation"} when validation splits exist; TOFU has no values, templates,
        multi-hop, combined questions or documents."""
        return frozenset({"validation"}) if self._validation() else frozenset()

    @property
    def split_names(self) -> tuple[str, ...]:
        """Available split names (see `TOFU_SPLIT_NAMES`)."""
        has_val = bool(self._validation())
        return tuple(n for n in TOFU_SPLIT_NAMES if n in _CONFIGS or has_val)

    def _check(self, name: str) -> None:
        if name not in TOFU_SPLIT_NAMES:
            raise KeyError(f"unknown split {name!r}; allowed: {', '.join(TOFU_SPLIT_NAMES)}")
        if name not in _CONFIGS and not self._validation():
            raise KeyError(f"split {name!r} is unavailable: too few authors in retain_perturbed")

    def split(self, name: str) -> Dataset:
        """QA rows of split `name` (`QA_FEATURES`; see the module docstring for the mapping)."""
        return rows_to_dataset(self._rows(name), QA_FEATURES)

    def authors(self, name: str) -> list[str]:
        """Author ids of split `name`, in order of first appearance."""
        return list(dict.fromkeys(r["author"] for r in self._rows(name)))

    def retain_name(self, forget_split: str) -> str:
        """ "forget10" -> "retain10" (TOFU's retain90), "forget10_val" -> "retain10_val"."""
        if forget_split not in _FORGET and forget_split not in _VAL:
            raise KeyError(
                f"unknown forget split {forget_split!r}; allowed: {', '.join(_FORGET + _VAL)}"
            )
        return forget_split.replace("forget", "retain")

    def retain_for(self, forget_split: str) -> Dataset:
        """The retain split matching a forget split."""
        return self.split(self.retain_name(forget_split))

    def multihop(self, name: str) -> Dataset:
        """TOFU has no multi-hop questions: an empty dataset with `MULTIHOP_FEATURES`."""
        self._check(name)
        return empty_dataset(MULTIHOP_FEATURES)

    def combined(self, forget_split: str) -> Dataset:
        """TOFU has no combined questions: an empty dataset with `COMBINED_FEATURES`."""
        self.retain_name(forget_split)
        return empty_dataset(COMBINED_FEATURES)

    def documents(self, name: str) -> Dataset:
        """TOFU has no biography documents: an empty dataset with `DOCUMENT_FEATURES`."""
        self._check(name)
        return empty_dataset(DOCUMENT_FEATURES)

    def probes(self) -> Dataset:
        """TOFU's real-author and world-fact questions as `PROBE_FEATURES` rows (wrong answers
        from the `*_perturbed` configs where present, else the multiple-choice options)."""
        rows = []
        for category in ("real_authors", "world_facts"):
            base = self._config(category)
            if base is None:
                continue
            perturbed = self._config(f"{category}_perturbed")
            wrong = {r["question"]: r.get("perturbed_answer") for r in (perturbed or [])}
            for row in base.to_list():
                options = [row.get(f"option{i}") for i in range(1, 5)]
                fallback = [o for o in options if o and o != row["answer"]]
                rows.append(
                    {
                        "question": row["question"],
                        "answer": row["answer"],
                        "perturbed_answers": list(wrong.get(row["question"]) or fallback),
                        "aliases": [],
                        "category": category,
                    }
                )
        return rows_to_dataset(rows, PROBE_FEATURES)

    def split_hashes(self) -> dict[str, str]:
        """Split name -> 16-hex-char content hash of its rows (loads every config)."""
        return {name: canonical_hash(self._rows(name)) for name in self.split_names}


def load_tofu(
    forget_split: str = "forget10",
    path: str = TOFU_HUB_ID,
    *,
    qa_per_author: int = 20,
    seed: int = 0,
    revision: str | None = None,
    **load_kwargs: Any,
) -> TofuBenchmark:
    """Real TOFU as a `QABenchmark` (configs are downloaded / read on first use).

    Args:
        forget_split: the study's forget split, one of forget01, forget05, forget10.
        path: the hub id (default "locuslab/TOFU") or a local folder with the same layout.
        qa_per_author: rows per author in TOFU's files (20), used to derive author ids.
        seed: seed of the validation-author permutation.
        revision: hub revision (commit, tag or branch) to pin, recorded in the data's cache key.
        **load_kwargs: passed to `datasets.load_dataset` (e.g. `cache_dir`).

    Raises:
        KeyError: unknown forget split (the message lists the allowed ones).
        ValueError: `qa_per_author` or `seed` out of range.
    """
    if forget_split not in _FORGET:
        raise KeyError(f"unknown forget split {forget_split!r}; allowed: {', '.join(_FORGET)}")
    if isinstance(qa_per_author, bool) or not isinstance(qa_per_author, int) or qa_per_author < 1:
        raise ValueError(f"qa_per_author must be an integer >= 1, got {qa_per_author!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")

    def load(config: str) -> Dataset | None:
        try:
            return datasets.load_dataset(
                path, config, split="train", revision=revision, **load_kwargs
            )
        except ValueError as error:  # unknown config name
            if (
                config in _OPTIONAL
                or config.endswith("_perturbed")
                or config
                in (
                    "real_authors",
                    "world_facts",
                )
            ):
                logger.warning("TOFU config %r not available (%s)", config, error)
                return None
            raise

    return TofuBenchmark(
        load, forget_split=forget_split, qa_per_author=qa_per_author, seed=seed, source=path
    )
