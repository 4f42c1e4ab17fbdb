"""Fact-level forgetting metrics: does a generated answer state the gold fact?

Full-answer ROUGE measures the answer's *template* as much as its fact: when answers share
templates across subjects, an answer with the right sentence and a wrong fact scores high
against the truth. These metrics look only at the gold value (the fact span, e.g. "Tallinn,
Estonia"):

- `fact_correct`: the normalised value occurs in the normalised generation as a whole phrase
  (1) or not (0). Normalisation: Unicode folded to ASCII, lower case, every run of
  non-alphanumeric characters becomes one space. Averaged over questions it is **fact
  accuracy** (higher = more known; on forget questions, lower = more forgotten).
- `value_recall`: ROUGE-L recall of the value's words in the generation (partial credit for
  multi-word values; same direction).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from lib.metrics.text import rouge_l_recall_many

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def normalize(text: str) -> str:
    """ASCII-folded, lower-case text with every non-alphanumeric run replaced by one space."""
    if not isinstance(text, str):
        raise ValueError(f"expected str, got {type(text).__name__}")
    return _normalize(text)


@lru_cache(maxsize=65536)
def _normalize(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NON_ALNUM.sub(" ", ascii_text.lower()).strip()


def contains_phrase(text: str, span: str) -> bool:
    """Whether `span` occurs in `text` as whole words after normalisation ("Mars" is not in
    "Marshall"; "Cluj-Napoca" is in "cluj napoca"). An empty span is never contained."""
    wanted = normalize(span)
    return bool(wanted) and f" {wanted} " in f" {normalize(text)} "


def fact_correct(generations: Sequence[str], values: Sequence[str]) -> np.ndarray:
    """(n,) 1.0 where the generation states the value as a whole phrase, else 0.0.

    An empty value raises (it would match everything).
    """
    if len(generations) != len(values):
        raise ValueError(f"{len(generations)} generations but {len(values)} values")
    out = np.zeros(len(values))
    for i, (generation, value) in enumerate(zip(generations, values, strict=True)):
        if not normalize(value):
            raise ValueError(f"value {i} is empty after normalisation: {value!r}")
        out[i] = float(contains_phrase(generation, value))
    return out


def value_recall(generations: Sequence[str], values: Sequence[str]) -> np.ndarray:
    """(n,) ROUGE-L recall of each value's words in its generation, in [0, 1]."""
    return rouge_l_recall_many(generations, values)
