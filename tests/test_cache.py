"""lib.cache: atomic writes, result trees (no pickle), checksums, rebuild of corrupt entries."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lib import cache
from lib.evaluate import TokenScores

# --------------------------------------------------------------------------- atomic io


def test_atomic_writes_leave_no_temp_files(tmp_path):
    target = tmp_path / "sub" / "value.json"
    cache.atomic_write_json(target, {"a": 1.5, "b": [1, 2], "c": float("nan")})
    assert json.loads(target.read_text()) == {"a": 1.5, "b": [1, 2], "c": None}  # strict JSON
    cache.atomic_write_json(target, {"a": 2})  # overwrite
    assert json.loads(target.read_text()) == {"a": 2}
    cache.atomic_write_bytes(tmp_path / "raw.bin", b"\x00\x01")
    assert (tmp_path / "raw.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["raw.bin", "sub", "value.json"]


def test_failed_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "value.json"
    cache.atomic_write_json(target, {"old": True})

    def broken_replace(_src, _dst):
        raise OSError("disk full")

    monkeypatch.setattr(cache.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        cache.atomic_write_json(target, {"new": True})
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["value.json"]


def test_atomic_dir_replaces_the_folder_in_one_step(tmp_path):
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    with cache.atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
        assert not (target / "new.txt").exists()  # invisible until done
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    with pytest.raises(RuntimeError), cache.atomic_dir(target) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temporary left


def test_concurrent_builder_keeps_the_entry_another_process_sealed(tmp_path, monkeypatch):
    """Two processes building the same entry: the one finishing second must not delete the
    sealed folder the first one's readers already use (it failed this way on a GPU box)."""
    monkeypatch.setenv("STUDY_CACHE_DIR", str(tmp_path))
    folder = cache.entry_dir("models", "same-key")

    def build_while_another_finishes(tmp):
        (tmp / "weights.bin").write_text("mine")
        with cache.atomic_dir(folder) as other:  # the concurrent process completes first
            (other / "weights.bin").write_text("theirs")
            cache.seal(other)

    result = cache.cached_folder("models", "same-key", build_while_another_finishes)
    assert (result / "weights.bin").read_text() == "theirs"  # the first sealed entry stays in place
    assert cache.is_sealed(result)
    assert sorted(p.name for p in folder.parent.iterdir()) == ["same-key"]  # ours discarded


# --------------------------------------------------------------------------- trees


def test_tree_round_trip_without_pickle(tmp_path):
    value = {
        "stats": TokenScores(
            logprobs=[np.array([-1.0, -2.0]), np.array([-3.0]), np.array([])],
            correct=[np.array([True, False]), np.array([True]), np.array([], dtype=bool)],
        ),
        "matrix": np.arange(6, dtype=np.float32).reshape(2, 3),
        "nested": [np.int64(3), float("nan"), float("inf"), None, True],
        "rows": [{"q": "x", "score": 0.5}],
        "empty": [],
    }
    cache.save_tree(tmp_path, value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arrays.npz", "state.json"]
    with np.load(tmp_path / "arrays.npz", allow_pickle=False) as npz:  # no object arrays
        assert all(npz[k].dtype != object for k in npz.files)
    back = cache.load_tree(tmp_path)
    stats = back["stats"]
    assert isinstance(stats, TokenScores)
    assert [r.tolist() for r in stats.logprobs] == [[-1.0, -2.0], [-3.0], []]
    assert [r.tolist() for r in stats.correct] == [[True, False], [True], []]
    assert stats.mu == [] and stats.sigma == []
    assert np.array_equal(back["matrix"], value["matrix"])
    assert back["matrix"].dtype == np.float32
    nested = back["nested"]
    assert nested[0] == 3 and math.isnan(nested[1]) and nested[2] == math.inf
    assert nested[3:] == [None, True]
    assert back["rows"] == value["rows"] and back["empty"] == []


def test_only_lib_dataclasses_are_rebuilt(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({"__type__": "os:system"}))
    with pytest.raises(ValueError, match="only dataclasses of `lib`"):
        cache.load_tree(tmp_path)
    with pytest.raises(TypeError, match="no pickle"):
        cache.save_tree(tmp_path, {"x": object()})


# --------------------------------------------------------------------------- cached entries


def test_cached_computes_once_and_seals(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDY_CACHE_DIR", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"value": np.array([1, 2, 3])}

    first = cache.cached("runs", "k1", compute, spec={"what": "test"})
    second = cache.cached("runs", "k1", compute)
    assert len(calls) == 1
    assert np.array_equal(first["value"], second["value"])
    folder = cache.entry_dir("runs", "k1")
    assert sorted(p.name for p in folder.iterdir()) == [
        "arrays.npz",
        "checksums.json",
        "spec.json",
        "state.json",
    ]
    assert json.loads((folder / "spec.json").read_text()) == {"what": "test"}


@pytest.mark.parametrize("damage", ["truncate", "edit", "delete_checksums", "delete_file"])
def test_a_corrupt_entry_is_detected_and_rebuilt(monkeypatch, tmp_path, damage, caplog):
    monkeypatch.setenv("STUDY_CACHE_DIR", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"value": np.arange(100.0)}

    cache.cached("runs", "k", compute)
    folder = cache.entry_dir("runs", "k")
    cache._VERIFIED.clear()
    arrays = folder / "arrays.npz"
    if damage == "truncate":
        arrays.write_bytes(arrays.read_bytes()[:50])
    elif damage == "edit":
        state = folder / "state.json"
        state.write_text(state.read_text().replace("a0", "a1"))
    elif damage == "delete_checksums":
        (folder / "checksums.json").unlink()
    else:
        arrays.unlink()
    again = cache.cached("runs", "k", compute)
    assert len(calls) == 2, "a damaged entry was used instead of rebuilt"
    assert np.array_equal(again["value"], np.arange(100.0))
    assert cache.is_sealed(folder)
    if damage in ("truncate", "edit", "delete_file"):
        assert "corrupt cache entry" in caplog.text


def test_cached_folder_builds_atomically(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDY_CACHE_DIR", str(tmp_path))

    def build(folder):
        (folder / "weights.bin").write_bytes(b"w" * 10)

    path = cache.cached_folder("checkpoints", "c", build)
    assert (path / "weights.bin").exists() and cache.is_sealed(path)

    def fail(folder):
        (folder / "weights.bin").write_bytes(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cache.cached_folder("checkpoints", "d", fail)
    assert not cache.entry_dir("checkpoints", "d").exists()
    assert cache.cached_folder("checkpoints", "c", fail) == path  # sealed: not rebuilt
