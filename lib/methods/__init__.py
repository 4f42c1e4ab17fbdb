"""Registry of unlearning methods: short name -> Method class (with taxonomy tags).

A method module registers its classes with `@register`; importing it at the bottom of this file
makes them available everywhere (and in notebook 04's taxonomy table, which is generated from
this registry).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pandas as pd

from lib.methods.base import (
    GradientMethod,
    Method,
    UnlearnContext,
    UnlearnData,
    Unlearned,
    describe,
)

METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: add a Method under its `name`."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no `name`")
    if cls.name in METHODS:
        raise KeyError(f"method {cls.name!r} registered twice")
    METHODS[cls.name] = cls
    return cls


def get(name: str, **overrides: Any) -> Method:
    """Instantiate a registered method, overriding default hyperparameters by keyword."""
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    cls = METHODS[name]
    allowed = {f.name for f in fields(cls) if not f.name.startswith("_")}
    unknown = set(overrides) - allowed
    if unknown:
        raise KeyError(
            f"{name} has no hyperparameter(s) {sorted(unknown)}; known: {sorted(allowed)}"
        )
    return cls(**overrides)


def validate(names: list[str]) -> None:
    """Raise KeyError naming the known methods if any name is unknown (before any work)."""
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise KeyError(f"unknown method(s) {unknown}; known: {sorted(METHODS)}")


def taxonomy() -> pd.DataFrame:
    """One row per registered method with its taxonomy tags and default hyperparameters."""
    rows = []
    for name, cls in METHODS.items():
        defaults = {f.name: f.default for f in fields(cls) if not f.name.startswith("_")}
        rows.append(
            {
                "method": name,
                **describe(cls),
                "defaults": ", ".join(f"{k}={v}" for k, v in defaults.items()) or "-",
                "reference": cls.citation,
            }
        )
    return pd.DataFrame(rows)


# Importing the built-in method modules registers them (they import `register` from here).
from lib.methods import (  # noqa: E402
    arithmetic,
    erase,
    exact,
    gradient,
    input_based,
    localized,
    preference,
    relabel,
    representation,
    sisa,
)

__all__ = [
    "arithmetic",
    "erase",
    "exact",
    "gradient",
    "input_based",
    "localized",
    "preference",
    "relabel",
    "representation",
    "sisa",
    "METHODS",
    "GradientMethod",
    "Method",
    "UnlearnContext",
    "UnlearnData",
    "Unlearned",
    "get",
    "register",
    "taxonomy",
    "validate",
]
# Method modules register themselves on import (notebooks 02 and 01).
from lib.methods import pretrained, second_order  # noqa: E402, F401
