"""Data of the study, as Hugging Face `datasets.Dataset` objects with fixed schemas
(`lib.data.schema`): the generated fictitious-author benchmark (`authors`: QA splits, multi-hop,
combined questions, biographies), real TOFU through the hub (`tofu`), real-world probes
(`probes`), and pretraining-style corpora (`corpora`: standard-library code, pydoc prose,
biographies; the paper's `llmunlearn/unlearn_dataset` through the hub). Nothing here loads a
model; everything is deterministic from its arguments and records content hashes."""

from __future__ import annotations

from lib.data.authors import QA, SPLIT_NAMES, AuthorBenchmark, AuthorProfile, build_benchmark
from lib.data.probes import Probe, filter_known, probes_dataset, real_world_probes
from lib.data.schema import QABenchmark

__all__ = [
    "QA",
    "SPLIT_NAMES",
    "AuthorBenchmark",
    "AuthorProfile",
    "Probe",
    "QABenchmark",
    "build_benchmark",
    "filter_known",
    "probes_dataset",
    "real_world_probes",
]
