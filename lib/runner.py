"""Run specs, cached and resumable: `run(spec)`, `sweep(specs)`, and a command line that
`accelerate launch` can start in several processes.

A *task* is a frozen spec dataclass with a compute function, registered by the module that
defines it (a benchmark or a paper module) with `@task(SpecClass)`. `run(spec)` returns the
cached result of the spec or computes and stores it (`lib.cache`: plain JSON + npz, written
atomically, checksummed, rebuilt when corrupt); `sweep(specs)` runs a list of specs in order
with progress, so an interrupted sweep resumes at the first spec without a result. Results
that report `status == "diverged"` are stored like any other: a diverged run stops only
itself.

Command line (a spec file is `{"task": "<module>:<SpecClass>", "spec": {...}}`)::

    python -m lib.runner run SPEC.json [--out RESULT.json]
    accelerate launch --num_processes 2 -m lib.runner run SPEC.json   # same result
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from lib import cache, distributed, progress
from lib.specs import from_dict, spec_key, to_dict

logger = logging.getLogger(__name__)
S = TypeVar("S")
TASKS: dict[type, Callable[[Any], Any]] = {}


def task(spec_cls: type[S]) -> Callable[[Callable[[S], Any]], Callable[[S], Any]]:
    """Decorator: register `compute(spec) -> result` as the task of `spec_cls`."""

    def register(compute: Callable[[S], Any]) -> Callable[[S], Any]:
        if spec_cls in TASKS:
            raise KeyError(f"a task for {spec_cls.__name__} is registered twice")
        TASKS[spec_cls] = compute
        return compute

    return register


def task_name(spec: Any) -> str:
    """`module:Class` of a spec: how spec files name their task."""
    cls = type(spec)
    return f"{cls.__module__}:{cls.__qualname__}"


def key(spec: Any) -> str:
    """Cache key of a spec (its task name is part of it)."""
    return spec_key({"task": task_name(spec), "spec": spec})


def _compute_of(spec: Any) -> Callable[[Any], Any]:
    compute = TASKS.get(type(spec))
    if compute is None:
        known = sorted(c.__name__ for c in TASKS)
        raise KeyError(f"no task registered for {type(spec).__name__}; known: {known}")
    return compute


def is_done(spec: Any) -> bool:
    """True when the spec's result is in the cache (and intact)."""
    return cache.is_sealed(cache.entry_dir("runs", key(spec)))


def run(spec: Any) -> Any:
    """The result of `spec`: read from the cache, or computed and stored."""
    compute = _compute_of(spec)
    return cache.cached("runs", key(spec), lambda: compute(spec), spec=to_dict(spec))


def sweep(specs: Sequence[Any], desc: str = "runs") -> list[Any]:
    """Run every spec in order (cached ones are read), with one progress line per run."""
    for spec in specs:  # fail on an unregistered spec before any work
        _compute_of(spec)
    results = []
    with progress.bar(len(specs), desc, unit="run") as bar:
        for spec in specs:
            done = is_done(spec)
            result = run(spec)
            results.append(result)
            line = getattr(result, "summary_line", None)
            progress.summary(
                f"{desc}: {line() if callable(line) else task_name(spec)}"
                + (" (cached)" if done else "")
            )
            bar.update(1)
    return results


# --------------------------------------------------------------------------- spec files
def write_spec(spec: Any, path: Path) -> Path:
    """A spec file the command line can run."""
    cache.atomic_write_json(Path(path), {"task": task_name(spec), "spec": to_dict(spec)})
    return Path(path)


def read_spec(path: Path) -> Any:
    """Rebuild a spec from a spec file (imports the module that defines its task)."""
    data = json.loads(Path(path).read_text())
    try:
        module_name, _, class_name = data["task"].partition(":")
        spec_data = data["spec"]
    except (KeyError, AttributeError) as exc:
        raise ValueError(f"{path}: expected {{'task': 'module:Class', 'spec': {{...}}}}") from exc
    if not (module_name == "lib" or module_name.startswith("lib.")):
        raise ValueError(f"{path}: task {data['task']!r} is not defined in lib")
    cls = getattr(importlib.import_module(module_name), class_name)
    return from_dict(cls, spec_data)


def _summary(result: Any) -> Any:
    as_row = getattr(result, "row", None)
    return as_row() if callable(as_row) else result


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m lib.runner", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="run one spec file (cached)")
    run_parser.add_argument("spec", type=Path, help="spec file: {'task': ..., 'spec': ...}")
    run_parser.add_argument("--out", type=Path, help="also write the result's summary row here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    distributed.init()
    spec = read_spec(args.spec)
    result = run(spec)
    if distributed.is_main():
        row = cache.json_ready(_summary(result))
        if args.out:
            cache.atomic_write_json(args.out, row)
        print(json.dumps(row, indent=1, default=str))
    return 0


if __name__ == "__main__":
    # Run in the namespace of `lib.runner` (not `__main__`), where tasks register themselves.
    from lib.runner import main as _main

    sys.exit(_main())
