"""Atomic file I/O and the on-disk cache of computed results, addressed by spec key.

Every write in the study goes through this module, so readers never see half a file:

- `atomic_write_bytes/text/json`: write a temporary sibling, then `os.replace` (atomic within one
  filesystem);
- `atomic_dir(target)`: build a folder under a temporary name, then rename it into place
  (checkpoints, cache entries).

A cache *entry* is a folder holding a result as plain data (`state.json` for everything JSON can
hold, `arrays.npz` for numpy arrays; never pickle, so loading never executes code) and, written
last, `checksums.json` with the SHA-256 of every other file. An entry without a valid
`checksums.json` (interrupted, truncated, edited) is treated as absent and rebuilt, with a
warning; `cached(key, compute)` is the one function that does this.

Results are "trees": nested dicts/lists of JSON scalars, numpy arrays, and dataclass instances
defined in `lib` (stored by their import path and rebuilt field by field; no other class is ever
instantiated on load).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import io
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from lib import distributed, paths

logger = logging.getLogger(__name__)

CHECKSUMS = "checksums.json"
STATE = "state.json"
ARRAYS = "arrays.npz"
T = TypeVar("T")


# --------------------------------------------------------------------------- atomic writes
def _temp_prefix(path: Path) -> str:
    """Temporary siblings are named `.<name>.<pid>.<random>`: a process killed mid-write
    (kill -9) leaves one behind, and `remove_stale_temporaries` can tell it is dead."""
    return f".{Path(path).name}.{os.getpid()}."


#: `.<name>.<pid>.<random>` (folders) or `.<name>.<pid>.<random>.tmp` (files)
_TEMPORARY = re.compile(r"^\..+\.(\d+)\.[a-z0-9_]{6,}(\.tmp)?$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: Path) -> int:
    """Delete temporary files/folders left in `folder` by processes that no longer run.

    Returns how many were removed. Temporaries of live processes (a concurrent writer) are kept.
    """
    removed = 0
    for path in Path(folder).iterdir():
        match = _TEMPORARY.match(path.name)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    if removed:
        logger.info(
            "removed %d temporary file(s) left by interrupted runs in %s", removed, _shown(folder)
        )
    return removed


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder, then rename;
    return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; reports and caches are meant to be shared
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """UTF-8 text, atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_ready(value: Any) -> Any:
    """numpy scalars/arrays -> Python values, non-finite floats -> None (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic | np.ndarray):
        return json_ready(value.tolist())
    return value


def atomic_write_json(path: Path, value: Any, *, strict: bool = True) -> Path:
    """JSON, atomically. `strict=True` writes NaN/inf as null (valid JSON for every reader);
    `strict=False` keeps them as Python's NaN/Infinity tokens (internal files only)."""
    data = json_ready(value) if strict else value
    text = json.dumps(data, indent=1, allow_nan=not strict, ensure_ascii=False, default=float)
    return atomic_write_text(path, text + "\n")


@contextlib.contextmanager
def atomic_dir(target: Path, keep_existing: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces `target` in one rename.

    `keep_existing(target)` True at the end (e.g. a concurrent process sealed the same cache
    entry meanwhile) keeps that folder and discards ours: deleting it would pull files from
    under the processes already reading it.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(target), dir=target.parent))
    try:
        yield tmp
        if target.exists():
            if keep_existing is not None and keep_existing(target):
                logger.info("%s was completed by another process meanwhile; keeping it", target)
                return
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- checksums
def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def seal(folder: Path) -> None:
    """Write `checksums.json` for every file of `folder` (recursively): the entry is complete."""
    folder = Path(folder)
    sums = {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != CHECKSUMS
    }
    atomic_write_json(folder / CHECKSUMS, sums)


#: Folders verified by this process, with the mtime of their checksums file: a checkpoint is
#: read many times per notebook and hashing 0.5 GB each time would cost seconds.
_VERIFIED: dict[Path, float] = {}


def is_sealed(folder: Path) -> bool:
    """True when `folder` has a checksums file and every listed file matches it.

    A folder that exists but fails the check is logged as corrupt (it will be rebuilt).
    """
    folder = Path(folder).resolve()
    listing = folder / CHECKSUMS
    if not listing.is_file():
        return False
    if _VERIFIED.get(folder) == listing.stat().st_mtime:
        return True
    try:
        sums = json.loads(listing.read_text())
        for name, digest in sums.items():
            path = folder / name
            if not path.is_file() or sha256_file(path) != digest:
                raise ValueError(f"{name} does not match its checksum")
    except (OSError, ValueError) as exc:
        logger.warning("corrupt cache entry %s (%s): rebuilding it", _shown(folder), exc)
        return False
    _VERIFIED[folder] = listing.stat().st_mtime
    return True


def _shown(path: Path) -> str:
    """A path as logs show it: relative to the project when inside it."""
    try:
        return Path(path).resolve().relative_to(paths.ROOT).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- trees
_ARRAY, _RAGGED, _TYPE, _FLOAT = "__array__", "__ragged__", "__type__", "__float__"


def _is_ragged(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(isinstance(v, np.ndarray) and v.ndim == 1 for v in value)
        and len({v.dtype for v in value}) == 1
    )


def _encode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, np.ndarray):
        name = f"a{len(arrays)}"
        arrays[name] = value
        return {_ARRAY: name}
    if _is_ragged(value):
        name = f"a{len(arrays)}"
        arrays[name] = np.concatenate(value)
        arrays[name + ".offsets"] = np.cumsum([0] + [len(v) for v in value])
        return {_RAGGED: name}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        fields = {f.name: _encode(getattr(value, f.name), arrays) for f in dataclasses.fields(cls)}
        return {_TYPE: f"{cls.__module__}:{cls.__qualname__}", **fields}
    if isinstance(value, Mapping):
        return {str(k): _encode(v, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {_FLOAT: repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in the cache (no pickle)")


def _lib_dataclass(path: str) -> type:
    module_name, _, qualname = path.partition(":")
    if not (module_name == "lib" or module_name.startswith("lib.")):
        raise ValueError(f"refusing to rebuild {path!r}: only dataclasses of `lib` are stored")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
        raise ValueError(f"{path!r} is not a dataclass")
    return obj


def _decode(value: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if isinstance(value, dict):
        if _ARRAY in value:
            return arrays[value[_ARRAY]]
        if _RAGGED in value:
            data, offsets = arrays[value[_RAGGED]], arrays[value[_RAGGED] + ".offsets"]
            return [data[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
        if _FLOAT in value:
            return float(value[_FLOAT])
        if _TYPE in value:
            cls = _lib_dataclass(value[_TYPE])
            kwargs = {k: _decode(v, arrays) for k, v in value.items() if k != _TYPE}
            names = {f.name for f in dataclasses.fields(cls) if f.init}
            return cls(**{k: v for k, v in kwargs.items() if k in names})
        return {k: _decode(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    return value


def save_tree(folder: Path, tree: Any) -> None:
    """Write `tree` as `state.json` + `arrays.npz` into an existing folder (not sealed)."""
    arrays: dict[str, np.ndarray] = {}
    state = _encode(tree, arrays)
    atomic_write_json(Path(folder) / STATE, state, strict=False)
    if arrays:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(Path(folder) / ARRAYS, buffer.getvalue())


def load_tree(folder: Path) -> Any:
    """Read what `save_tree` wrote (numpy arrays loaded with allow_pickle=False)."""
    folder = Path(folder)
    state = json.loads((folder / STATE).read_text())
    arrays: Mapping[str, np.ndarray] = {}
    if (folder / ARRAYS).exists():
        with np.load(folder / ARRAYS, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    return _decode(state, arrays)


# --------------------------------------------------------------------------- cached results
def entry_dir(kind: str, key: str) -> Path:
    """Folder of the cache entry `key` of kind `kind` (e.g. "runs", "evals")."""
    return paths.cache_dir() / kind / key


def cached(
    kind: str,
    key: str,
    compute: Callable[[], T],
    *,
    spec: Any = None,
    save: Callable[[Path, T], None] | None = None,
    load: Callable[[Path], T] | None = None,
) -> T:
    """Return the cached value of `key`, computing and storing it when absent or corrupt.

    By default the value is stored as a tree (`save_tree`/`load_tree`); `save(folder, value)`
    and `load(folder)` replace that (e.g. model checkpoints). `spec`, when given, is written as
    `spec.json` beside the value for humans. In a multi-process run every process computes
    (the computation may be collective), the main process writes, and all read the same entry.
    """
    folder = entry_dir(kind, key)
    present = distributed.broadcast(is_sealed(folder) if distributed.is_main() else None)
    if present:
        return (load or load_tree)(folder)
    if distributed.is_main() and folder.parent.exists():
        remove_stale_temporaries(folder.parent)
    value = compute()
    if distributed.is_main():
        with atomic_dir(folder, keep_existing=is_sealed) as tmp:
            (save or save_tree)(tmp, value)
            if spec is not None:
                from lib.specs import canonical_json

                atomic_write_text(tmp / "spec.json", canonical_json(spec) + "\n")
            seal(tmp)
    distributed.barrier()
    return value


def cached_folder(kind: str, key: str, build: Callable[[Path], None], *, spec: Any = None) -> Path:
    """Return the folder of entry `key`, building it with `build(tmp_folder)` when absent or
    corrupt (checkpoints: the folder *is* the value). Same multi-process rules as `cached`."""
    folder = entry_dir(kind, key)
    present = distributed.broadcast(is_sealed(folder) if distributed.is_main() else None)
    if present:
        return folder
    if distributed.is_main() and folder.parent.exists():
        remove_stale_temporaries(folder.parent)
    with contextlib.ExitStack() as stack:
        tmp = (
            stack.enter_context(atomic_dir(folder, keep_existing=is_sealed))
            if distributed.is_main()
            else None
        )
        build_dir = tmp if tmp is not None else Path(tempfile.mkdtemp(prefix=".scratch."))
        build(build_dir)
        if tmp is not None:
            if spec is not None:
                from lib.specs import canonical_json

                atomic_write_text(tmp / "spec.json", canonical_json(spec) + "\n")
            seal(tmp)
        else:
            shutil.rmtree(build_dir, ignore_errors=True)
    distributed.barrier()
    return folder
