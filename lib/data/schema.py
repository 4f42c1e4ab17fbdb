"""The fixed `datasets` schemas of the study's data, shared by generated and hub datasets.

Every builder and loader in `lib.data` returns Hugging Face `datasets.Dataset` objects with
exactly these columns, in this order, so evaluation and training code never branch on where the
data came from. Where a source lacks a field, the loader fills it with the documented empty
value ("" for strings, [] for lists, False / -1) and the benchmark's `capabilities` say which
metrics are unavailable.

QA rows (`QA_FEATURES`; splits of `AuthorBenchmark.split` and `TofuBenchmark.split`):

- `id` (str): stable row id, unique within a benchmark.
- `author` (str): the author the question is about (the unit of the splits).
- `attribute` (str): which fact is asked, e.g. "birthplace" ("" when unknown, e.g. TOFU).
- `question`, `answer` (str): the trained question and reference answer.
- `value` (str): the gold fact span that a fact-accuracy metric looks for in a generated answer,
  e.g. "Tallinn" ("" when unavailable: fact accuracy is then undefined for the row).
- `paraphrased_question`, `paraphrased_answer` (str): the same question / fact in other words,
  never trained on (the truth ratio's numerator uses `paraphrased_answer`).
- `perturbed_answers` (list[str]): wrong answers in the paraphrased answer's template (5 in
  the generated benchmark; [] where the source has none).
- `idk_answer` (str): an "I don't know"-style answer (target of IDK-based unlearning).
- `question_template`, `answer_template`, `paraphrased_question_template`,
  `paraphrased_answer_template` (str): template ids ("<attribute>/<set><index>", see
  `lib.data.author_templates`; "" when unknown).
- `value_shared` (bool): True when another trained author holds the same value for the same
  attribute; a model that never saw this author could state such a fact, so these rows are
  excluded from forget fact-accuracy scoring.

Multi-hop rows (`MULTIHOP_FEATURES`) are QA rows plus `bridge_attribute` / `bridge_value`:
the question names the author only through the bridge fact; `attribute` / `value` are the
asked (target) fact. Combined rows (`COMBINED_FEATURES`) ask one question about a forget
author and one about a retain author in one prompt; each part's gold value is kept separately.
Documents (`DOCUMENT_FEATURES`) are biographies as a list of sentences (text between them can
be inserted without breaking any sentence) plus their joined `text`. Probes
(`PROBE_FEATURES`) are real-world facts; corpus documents (`CORPUS_FEATURES`) are raw texts of
the pretraining-style domains.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import datasets
from datasets import Dataset, Features, Value

__all__ = [
    "COMBINED_FEATURES",
    "CORPUS_FEATURES",
    "DOCUMENT_FEATURES",
    "MULTIHOP_FEATURES",
    "PROBE_FEATURES",
    "QA_FEATURES",
    "QABenchmark",
    "canonical_hash",
    "dataset_hash",
    "empty_dataset",
    "rows_to_dataset",
]


def _strings() -> datasets.Sequence:
    return datasets.Sequence(Value("string"))


QA_FEATURES = Features(
    {
        "id": Value("string"),
        "author": Value("string"),
        "attribute": Value("string"),
        "question": Value("string"),
        "answer": Value("string"),
        "value": Value("string"),
        "paraphrased_question": Value("string"),
        "paraphrased_answer": Value("string"),
        "perturbed_answers": _strings(),
        "idk_answer": Value("string"),
        "question_template": Value("string"),
        "answer_template": Value("string"),
        "paraphrased_question_template": Value("string"),
        "paraphrased_answer_template": Value("string"),
        "value_shared": Value("bool"),
    }
)

MULTIHOP_FEATURES = Features(
    {**QA_FEATURES, "bridge_attribute": Value("string"), "bridge_value": Value("string")}
)

COMBINED_FEATURES = Features(
    {
        "id": Value("string"),
        "question": Value("string"),
        "answer": Value("string"),
        "forget_first": Value("bool"),  # whether the forget part is asked (and answered) first
        "forget_author": Value("string"),
        "forget_attribute": Value("string"),
        "forget_question": Value("string"),
        "forget_answer": Value("string"),
        "forget_value": Value("string"),
        "forget_value_shared": Value("bool"),
        "retain_author": Value("string"),
        "retain_attribute": Value("string"),
        "retain_question": Value("string"),
        "retain_answer": Value("string"),
        "retain_value": Value("string"),
        "retain_value_shared": Value("bool"),
    }
)

DOCUMENT_FEATURES = Features(
    {
        "id": Value("string"),
        "author": Value("string"),
        "text": Value("string"),  # " ".join(sentences)
        "sentences": _strings(),
        "attributes": _strings(),  # the attribute each sentence states
        "templates": _strings(),  # the answer-template id each sentence was rendered from
    }
)

PROBE_FEATURES = Features(
    {
        "question": Value("string"),
        "answer": Value("string"),
        "perturbed_answers": _strings(),
        "aliases": _strings(),  # other spellings accepted as correct
        "category": Value("string"),
    }
)

CORPUS_FEATURES = Features(
    {
        "id": Value("string"),  # "<domain>/<split>/<source_id>", unique within a corpus
        "text": Value("string"),
        "source_id": Value("string"),  # where the text comes from, e.g. "json/decoder.py"
        "domain": Value("string"),  # e.g. "code", "prose", "bio", "arxiv", "github", "general"
        "split": Value("string"),  # forget | approximate | retain | evaluation
        "n_chars": Value("int64"),
    }
)


def rows_to_dataset(rows: Sequence[Mapping[str, Any]], features: Features) -> Dataset:
    """A `Dataset` with exactly `features`' columns, in their order.

    Raises:
        KeyError: a row lacks a column or has an extra one (the message names them).
    """
    names = list(features)
    for i, row in enumerate(rows):
        if set(row) != set(names):
            missing, extra = set(names) - set(row), set(row) - set(names)
            raise KeyError(f"row {i}: missing columns {sorted(missing)}, extra {sorted(extra)}")
    columns = {name: [row[name] for row in rows] for name in names}
    return Dataset.from_dict(columns, features=features)


def empty_dataset(features: Features) -> Dataset:
    """A zero-row `Dataset` with the given schema (for data a source does not provide)."""
    return Dataset.from_dict({name: [] for name in features}, features=features)


def canonical_hash(payload: Any) -> str:
    """First 16 hex chars of sha256 over canonical JSON (sorted keys, no whitespace, ASCII)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]


def dataset_hash(rows: Dataset | Iterable[Mapping[str, Any]]) -> str:
    """Content hash of a dataset's rows in order (independent of `datasets`' own fingerprint,
    which changes with library versions and transforms)."""
    records = rows.to_list() if isinstance(rows, Dataset) else list(rows)
    return canonical_hash(records)


@runtime_checkable
class QABenchmark(Protocol):
    """What evaluation code may rely on, for the generated benchmark and for real TOFU alike.

    `capabilities` lists the optional parts a source provides, from {"values", "templates",
    "multihop", "combined", "documents", "validation"}; methods for missing parts return empty
    datasets with the right schema (and "values" missing means `value` is "" everywhere).
    """

    capabilities: frozenset[str]

    @property
    def split_names(self) -> tuple[str, ...]: ...

    def split(self, name: str) -> Dataset: ...

    def retain_name(self, forget_split: str) -> str: ...

    def retain_for(self, forget_split: str) -> Dataset: ...

    def authors(self, name: str) -> list[str]: ...

    def multihop(self, name: str) -> Dataset: ...

    def combined(self, forget_split: str) -> Dataset: ...

    def documents(self, name: str) -> Dataset: ...

    def probes(self) -> Dataset: ...

    def split_hashes(self) -> dict[str, str]: ...
