"""Shared fixtures: a session-wide temporary cache and the `tiny-random` model.

`STUDY_CACHE_DIR` points at one temporary folder for the whole session, so nothing is read from
or written to the real cache; it is shared because the SmolLM2 tokenizer (and, for the slow
test, the dequantised embedded model) is built from the GGUF file on first use.

Torch runs single-threaded in tests (override with `STUDY_TEST_TORCH_THREADS`): the models here
are tiny, and on a small machine whose cores are busy with another job, two OpenMP threads made
the tiny model's forward+backward 5-10x slower than one.
"""

from __future__ import annotations

import copy
import os

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def study_cache_dir(tmp_path_factory):
    """Point the study cache at a temporary folder for the whole test session."""
    path = tmp_path_factory.mktemp("study-cache")
    previous = os.environ.get("STUDY_CACHE_DIR")
    os.environ["STUDY_CACHE_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("STUDY_CACHE_DIR", None)
    else:
        os.environ["STUDY_CACHE_DIR"] = previous


@pytest.fixture(scope="session", autouse=True)
def torch_threads():
    """Single-threaded torch for the session (see the module docstring)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("STUDY_TEST_TORCH_THREADS", "1")))
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_tokenizer(study_cache_dir):
    """The SmolLM2 tokenizer as `tiny-random` uses it (pad distinct from EOS)."""
    from lib import models

    return models.load_tokenizer(models.TINY)


@pytest.fixture(scope="session")
def _tiny_pristine(tiny_tokenizer):
    from lib import models

    model, _ = models.load_model(models.TINY, dtype="float32", device="cpu")
    return model


@pytest.fixture
def tiny_model(_tiny_pristine):
    """A fresh copy of `tiny-random` (float32, CPU, eval mode): tests may modify it freely."""
    return copy.deepcopy(_tiny_pristine)


@pytest.fixture(scope="session")
def smoke_reports(tmp_path_factory, study_cache_dir):
    """Every notebook executed ONCE with params/smoke.yaml into one reports folder, with the
    index built: shared by the notebook, report-quality and browser tests (a smoke run takes
    about a minute). Returns the folder; `<folder>/<stem>/manifest.json` says how each went.

    The kernel gets a fresh cache (it inherits STUDY_CACHE_DIR), seeded with the tokenizer only:
    building it from the GGUF is the same few seconds in every notebook and not under test.
    """
    import shutil
    from pathlib import Path

    import yaml

    from lib import models, paths, reporting

    tokenizer_dir = models.load_tokenizer(models.TINY).name_or_path
    cache = tmp_path_factory.mktemp("smoke-cache")
    shutil.copytree(tokenizer_dir, cache / "models" / Path(tokenizer_dir).name)
    root = tmp_path_factory.mktemp("smoke-reports")
    params = yaml.safe_load((paths.PARAMS_DIR / "smoke.yaml").read_text())
    previous = os.environ.get("STUDY_CACHE_DIR")
    os.environ["STUDY_CACHE_DIR"] = str(cache)
    try:
        reporting.run_notebooks(reporting.available_notebooks(), params, root, profile="smoke")
    finally:
        os.environ["STUDY_CACHE_DIR"] = previous if previous is not None else str(study_cache_dir)
    reporting.build_index(root)
    return root
