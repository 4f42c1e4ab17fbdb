"""Data of the study, as Hugging Face `datasets.Dataset` objects with fixed schemas
(`lib.data.schema`): the generated fictitious-author benchmark (`authors`: QA splits, multi-hop,
combined questions, biographies), real TOFU through the hub (`tofu`), real-world probes
(`probes`), pretraining-style corpora (`corpora`: standard-library code, pydoc prose,
biographies) and the paper data of Yao et al. through the hub (`unlearn_hub`). Nothing here
loads a model; everything is deterministic from its arguments and records content hashes."""

from __future__ import annotations

from lib.data.authors import QA, SPLIT_NAMES, AuthorBenchmark, AuthorProfile, build_benchmark
from lib.data.corpora import PretrainCorpora, build_corpora
from lib.data.probes import Probe, filter_known, probes_dataset, real_world_probes
from lib.data.schema import QABenchmark
from lib.data.tofu import TofuBenchmark, load_tofu
from lib.data.unlearn_hub import load_unlearn_dataset

__all__ = [
    "QA",
    "SPLIT_NAMES",
    "AuthorBenchmark",
    "AuthorProfile",
    "PretrainCorpora",
    "Probe",
    "QABenchmark",
    "TofuBenchmark",
    "build_benchmark",
    "build_corpora",
    "filter_known",
    "load_tofu",
    "load_unlearn_dataset",
    "probes_dataset",
    "real_world_probes",
]
