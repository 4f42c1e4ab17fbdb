"""Pretraining-style text corpora for notebook 02 (Yao et al. 2024), read from what the machine
already has, as `datasets.Dataset` objects with `lib.data.schema.CORPUS_FEATURES` (id, text,
source_id, domain, split, n_chars).

Domains (`DOMAINS`):
- "code": the Python standard library's own module sources (`sysconfig` stdlib path; tests,
  IDLE, lib2to3, turtledemo, ensurepip, tkinter, venv, the generated tables of `encodings` and
  `stringprep`, and `pydoc_data` left out). The unit of a split is a top-level module or package
  (all files of `email/` go to the same split).
- "prose": the help texts of `pydoc_data.topics` (the Python documentation's topics), one
  unit per topic.
- "bio": the biographies of generated fictitious authors (`lib.data.authors`), one unit per
  author.

Per domain the splits are `forget`, `approximate` (same domain, never trained: the paper's
"approximate retraining" non-members) and `retain` (in-distribution); the pseudo-domain
"general" holds a `retain` and an `evaluation` split mixing all domains equally (the paper's
general retain / evaluation sets). All are disjoint at the unit level: units are shuffled with a
seeded generator and dealt out in the order forget, approximate, retain, general retain, general
evaluation, taking at most `max_docs_per_unit` documents of each unit (a random subset, in
reading order) until a split is full; a unit never straddles two splits (its remaining documents
are dropped). A unit's text is cut into documents of at most `max_chars` characters at
paragraph (prose), sentence (bio) or blank-line (code) boundaries; pieces shorter than
`min_chars` are dropped so that forget and approximate documents have similar lengths (length
confounds membership inference). Tokenisation and chunking into token windows happen later,
in the core.

Native membership: standard-library code and the Python documentation are public and almost
certainly in the base model's own pretraining data (SmolLM2 trained on public GitHub code and
web text), so the code and prose splits, approximate ones included, are "native" members of the
base model before any training here; only the continued-pretraining phase (and the retrained
model that skips the forget documents) makes forget and approximate differ. The biographies are
not native. A native-mode non-member set (code the base model never saw) is not available
offline and is not built here.

Determinism: the same arguments and the same Python installation give the same rows. The
stdlib sources and pydoc topics differ between Python versions, so `metadata()` records the
Python version and `split_hashes()` / `fingerprint()` change with it: compare hashes only
between machines with the same Python. The paper's own data (`llmunlearn/unlearn_dataset`) is
loaded into the same `PretrainCorpora` interface by `lib.data.unlearn_hub`.
"""

from __future__ import annotations

import logging
import platform
import sysconfig
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset

from lib.data.schema import CORPUS_FEATURES, canonical_hash, rows_to_dataset

logger = logging.getLogger(__name__)

__all__ = [
    "CORPUS_SPLITS",
    "DOMAINS",
    "GENERAL",
    "GENERAL_SPLITS",
    "PretrainCorpora",
    "build_corpora",
    "chunk_text",
]

DOMAINS: tuple[str, ...] = ("code", "prose", "bio")
CORPUS_SPLITS: tuple[str, ...] = ("forget", "approximate", "retain")
GENERAL = "general"
GENERAL_SPLITS: tuple[str, ...] = ("retain", "evaluation")

#: Top-level stdlib entries that are not ordinary library code (tests, GUIs, bundled wheels,
#: generated tables) or belong to the prose domain.
_STDLIB_EXCLUDED = frozenset(
    {
        "site-packages", "test", "idlelib", "lib2to3", "turtledemo", "ensurepip", "pydoc_data",
        "__pycache__", "tkinter", "venv", "encodings", "__phello__", "stringprep",
    }
)  # fmt: skip


class PretrainCorpora:
    """Forget / approximate / retain documents per domain plus a general retain / evaluation
    mix, for local corpora (`build_corpora`) and the paper's hub data (`load_unlearn_dataset`)
    alike."""

    def __init__(
        self, rows: Mapping[tuple[str, str], Sequence[dict[str, Any]]], metadata: Mapping[str, Any]
    ) -> None:
        self._rows = {key: list(value) for key, value in rows.items()}
        self._metadata = dict(metadata)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{d}/{s}={len(r)}" for (d, s), r in self._rows.items())
        return f"PretrainCorpora({sizes})"

    @property
    def domains(self) -> tuple[str, ...]:
        """The domains with forget / approximate / retain splits (not "general")."""
        return tuple(dict.fromkeys(d for d, _ in self._rows if d != GENERAL))

    @property
    def split_names(self) -> tuple[tuple[str, str], ...]:
        """Every (domain, split) pair, e.g. ("code", "forget"), ("general", "evaluation")."""
        return tuple(self._rows)

    def split(self, domain: str, split: str) -> Dataset:
        """Documents of one split (`CORPUS_FEATURES`).

        Raises:
            KeyError: unknown (domain, split); the message lists the available pairs.
        """
        if (domain, split) not in self._rows:
            allowed = ", ".join(f"{d}/{s}" for d, s in self._rows)
            raise KeyError(f"unknown corpus split {domain!r}/{split!r}; allowed: {allowed}")
        return rows_to_dataset(self._rows[(domain, split)], CORPUS_FEATURES)

    def metadata(self) -> dict[str, Any]:
        """Source, arguments, Python version (local corpora) and per-split sizes."""
        sizes = {
            f"{d}/{s}": {"documents": len(r), "chars": sum(x["n_chars"] for x in r)}
            for (d, s), r in self._rows.items()
        }
        return {**self._metadata, "sizes": sizes}

    def split_hashes(self) -> dict[str, str]:
        """ "<domain>/<split>" -> 16-hex-char content hash of its rows."""
        return {f"{d}/{s}": canonical_hash(r) for (d, s), r in self._rows.items()}

    def fingerprint(self) -> str:
        """One hash of the metadata (incl. the Python version) and every split hash."""
        return canonical_hash({"metadata": self._metadata, "splits": self.split_hashes()})


# ----------------------------------------------------------------------------------------------
# Sources.
# ----------------------------------------------------------------------------------------------


def chunk_text(text: str, max_chars: int, min_chars: int, separator: str = "\n\n") -> list[str]:
    """Cut `text` into pieces of at most `max_chars` characters at `separator` boundaries
    (falling back to line boundaries, then to hard cuts, for blocks longer than `max_chars`);
    pieces are stripped, and those shorter than `min_chars` dropped."""
    blocks: list[str] = []
    for block in text.split(separator):
        while len(block) > max_chars:
            cut = block.rfind("\n", 1, max_chars)
            cut = cut if cut > 0 else max_chars
            blocks.append(block[:cut])
            block = block[cut:]
        blocks.append(block)
    pieces: list[str] = []
    current = ""
    for block in blocks:
        candidate = f"{current}{separator}{block}" if current else block
        if len(candidate) <= max_chars:
            current = candidate
        else:
            pieces.append(current)
            current = block
    pieces.append(current)
    return [p.strip() for p in pieces if len(p.strip()) >= min_chars]


def _code_units(max_chars: int, min_chars: int) -> dict[str, list[tuple[str, str]]]:
    """Top-level stdlib module / package -> [(source id, document text)]."""
    root = Path(sysconfig.get_paths()["stdlib"])
    units: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        top = rel.parts[0].removesuffix(".py")
        if (
            top in _STDLIB_EXCLUDED
            or top.startswith("config-")
            or {"test", "tests"} & set(rel.parts)
        ):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        # Code is cut at blank lines so that a document ends between statements.
        for k, piece in enumerate(chunk_text(text, max_chars, min_chars, "\n\n")):
            units.setdefault(top, []).append((f"{rel.as_posix()}#{k}", piece))
    return units


def _prose_units(max_chars: int, min_chars: int) -> dict[str, list[tuple[str, str]]]:
    """pydoc topic -> [(source id, document text)]."""
    from pydoc_data.topics import topics

    units: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(topics):
        # The help texts separate paragraphs by blank lines and indent code blocks.
        for k, piece in enumerate(chunk_text(topics[name], max_chars, min_chars, "\n\n")):
            units.setdefault(name, []).append((f"pydoc:{name}#{k}", piece))
    return units


def _bio_units(
    n_authors: int, seed: int, max_chars: int, min_chars: int
) -> dict[str, list[tuple[str, str]]]:
    """Author -> [(source id, biography text)] from a generated author benchmark."""
    from lib.data.authors import build_benchmark

    bench = build_benchmark(
        n_authors=n_authors, qa_per_author=2, n_holdout_authors=0, seed=seed, multihop_per_author=0
    )
    units: dict[str, list[tuple[str, str]]] = {}
    for doc in bench.documents("full").to_list():
        # A biography's sentences are its paragraphs: cut only between sentences.
        text = "\n".join(doc["sentences"])
        pieces = chunk_text(text, max_chars, min_chars, "\n")
        units[doc["author"]] = [
            (f"{doc['id']}#{k}", piece.replace("\n", " ")) for k, piece in enumerate(pieces)
        ]
    return units


# ----------------------------------------------------------------------------------------------
# Assembly.
# ----------------------------------------------------------------------------------------------


def _deal(
    units: Mapping[str, list[tuple[str, str]]],
    needs: Sequence[tuple[str, str, int]],
    rng: np.random.Generator,
    domain: str,
    per_unit: int,
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Deal shuffled units to splits in order, `n` documents each; a unit is never split, and
    gives at most `per_unit` of its documents (a random subset, kept in reading order)."""
    names = sorted(units)
    order = iter([names[int(i)] for i in rng.permutation(len(names))])
    units = {
        name: [docs[int(j)] for j in sorted(rng.permutation(len(docs))[:per_unit])]
        for name, docs in sorted(units.items())
    }
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for key_domain, split, n in needs:
        docs: list[tuple[str, str]] = []
        while len(docs) < n:
            unit = next(order, None)
            if unit is None:
                total = sum(len(v) for v in units.values())
                requested = ", ".join(f"{d}/{s}={k}" for d, s, k in needs)
                raise ValueError(
                    f"domain {domain!r} has only {total} documents in {len(units)} units at "
                    f"these max_chars/min_chars; requested {requested}. Lower the sizes or "
                    "max_chars."
                )
            docs.extend(units[unit][: n - len(docs)])
        out[(key_domain, split)] = [
            {
                "id": f"{key_domain}/{split}/{source_id}",
                "text": text,
                "source_id": source_id,
                "domain": domain,
                "split": split,
                "n_chars": len(text),
            }
            for source_id, text in docs
        ]
    return out


def _check_count(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def build_corpora(
    domains: Sequence[str] = DOMAINS,
    *,
    n_forget: int = 12,
    n_approximate: int = 12,
    n_retain: int = 36,
    n_general_retain: int = 36,
    n_general_eval: int = 18,
    max_chars: int = 3000,
    min_chars: int = 750,
    max_docs_per_unit: int = 2,
    seed: int = 0,
) -> PretrainCorpora:
    """Forget / approximate / retain documents per domain and a general retain / evaluation mix.

    Args:
        domains: a non-empty subset of `DOMAINS` ("code", "prose", "bio"), in the order wanted.
        n_forget, n_approximate, n_retain: documents per domain in each split (>= 1).
        n_general_retain, n_general_eval: documents of the general mix (>= 0), spread as evenly
            as possible over the domains (the first domains get the remainder).
        max_chars: longest document in characters (>= 200); longer units are cut.
        min_chars: shortest document kept, in [0, max_chars].
        max_docs_per_unit: documents one unit (module, topic, author) may give (>= 1): keeps a
            split from being a single long module.
        seed: seed of the unit shuffles (and of the generated authors of "bio").

    Raises:
        ValueError: bad sizes, unknown or repeated domains, or a domain with too few documents
            for the requested sizes (the message gives the counts).
    """
    domains = tuple(domains)
    if not domains or len(set(domains)) != len(domains) or not set(domains) <= set(DOMAINS):
        raise ValueError(f"domains must be distinct names from {DOMAINS}, got {domains!r}")
    n_forget = _check_count("n_forget", n_forget, 1)
    n_approximate = _check_count("n_approximate", n_approximate, 1)
    n_retain = _check_count("n_retain", n_retain, 1)
    n_general_retain = _check_count("n_general_retain", n_general_retain, 0)
    n_general_eval = _check_count("n_general_eval", n_general_eval, 0)
    max_chars = _check_count("max_chars", max_chars, 200)
    min_chars = _check_count("min_chars", min_chars, 0)
    if min_chars > max_chars:
        raise ValueError(f"min_chars must be in [0, max_chars={max_chars}], got {min_chars}")
    max_docs_per_unit = _check_count("max_docs_per_unit", max_docs_per_unit, 1)
    seed = _check_count("seed", seed, 0)

    def share(total: int, i: int) -> int:
        return total // len(domains) + (1 if i < total % len(domains) else 0)

    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    general: dict[str, list[dict[str, Any]]] = {s: [] for s in GENERAL_SPLITS}
    for i, domain in enumerate(domains):
        needs = [
            (domain, "forget", n_forget),
            (domain, "approximate", n_approximate),
            (domain, "retain", n_retain),
            (GENERAL, "retain", share(n_general_retain, i)),
            (GENERAL, "evaluation", share(n_general_eval, i)),
        ]
        if domain == "code":
            units = _code_units(max_chars, min_chars)
        elif domain == "prose":
            units = _prose_units(max_chars, min_chars)
        else:
            units = _bio_units(sum(n for _, _, n in needs), seed, max_chars, min_chars)
        rng = np.random.default_rng([seed, 3, i])
        dealt = _deal(units, needs, rng, domain, max_docs_per_unit)
        for (key_domain, split), docs in dealt.items():
            if key_domain == GENERAL:
                general[split].extend(docs)
            else:
                rows[(key_domain, split)] = docs
    for split in GENERAL_SPLITS:
        rows[(GENERAL, split)] = general[split]
    metadata = {
        "source": "local",
        "python_version": platform.python_version(),
        "stdlib": sysconfig.get_paths()["stdlib"],
        "arguments": {
            "domains": list(domains),
            "n_forget": n_forget,
            "n_approximate": n_approximate,
            "n_retain": n_retain,
            "n_general_retain": n_general_retain,
            "n_general_eval": n_general_eval,
            "max_chars": max_chars,
            "min_chars": min_chars,
            "max_docs_per_unit": max_docs_per_unit,
            "seed": seed,
        },
    }
    corpora = PretrainCorpora(rows, metadata)
    logger.debug("built %r", corpora)
    return corpora
