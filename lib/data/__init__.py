"""Data of the study: the generated fictitious-author benchmark (TOFU-style QA with forget /
retain / holdout splits, paraphrases, perturbed answers, IDK answers and multi-hop questions) and
real-world probes for model utility. Pure Python + numpy; nothing here loads a model."""

from __future__ import annotations

from lib.data.authors import QA, SPLIT_NAMES, AuthorBenchmark, AuthorProfile, build_benchmark
from lib.data.probes import Probe, filter_known, real_world_probes

__all__ = [
    "QA",
    "SPLIT_NAMES",
    "AuthorBenchmark",
    "AuthorProfile",
    "Probe",
    "build_benchmark",
    "filter_known",
    "real_world_probes",
]
