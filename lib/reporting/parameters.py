"""The `parameters` cell of a notebook: its names, literal defaults and help comments.

Papermill is lenient where a study must be strict (it only warns about an unknown parameter,
and without a `parameters` cell it injects values that the notebook then silently overwrites),
so `lib.reporting.execute()` checks parameter names with these functions first.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import tokenize
from pathlib import Path
from typing import Any

PARAMETERS_TAG = "parameters"


def read_notebook(path: Path) -> Any:
    """Read a notebook (nbformat v4 node)."""
    import nbformat

    return nbformat.read(str(path), as_version=4)


def parameters_cell(nb: Any, where: str) -> Any:
    """The first code cell tagged `parameters`; ValueError if there is none."""
    for cell in nb.cells:
        if cell.cell_type == "code" and PARAMETERS_TAG in cell.get("metadata", {}).get("tags", []):
            return cell
    raise ValueError(
        f"{where} has no cell tagged {PARAMETERS_TAG!r}: tag the cell of literal assignments "
        "so that papermill injects parameters after it"
    )


def has_parameters_cell(nb: Any) -> bool:
    try:
        parameters_cell(nb, "")
    except ValueError:
        return False
    return True


def parse_parameters(source: str, where: str) -> dict[str, tuple[Any, str]]:
    """Return name -> (default value, help comment) for a cell of `NAME = literal  # help` lines.

    Parsed with `ast`, not with papermill's line regex (`papermill.inspect_notebook`): the
    regex silently drops a line whose comment contains '=' (`N = None  # None = all`) and cuts
    a string default at '#'. Values come from `ast.literal_eval`, which enforces the study's
    rule that the parameters cell holds literals only.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"{where}: parameters cell is not plain Python: {exc}") from exc
    comments: dict[int, str] = {}
    with contextlib.suppress(tokenize.TokenError):
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0]] = tok.string.lstrip("#").strip()
    params: dict[str, tuple[Any, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            raise ValueError(
                f"{where}, line {node.lineno}: the parameters cell may only contain "
                f"assignments `NAME = literal`, got: {ast.get_source_segment(source, node)!r}"
            )
        if not isinstance(target, ast.Name):
            raise ValueError(f"{where}, line {node.lineno}: assign one plain NAME per line")
        try:
            default = ast.literal_eval(value)
        except ValueError as exc:
            raise ValueError(
                f"{where}: parameter {target.id} must be a literal (derive values in the next "
                f"cell, papermill does not recompute them), got "
                f"{ast.get_source_segment(source, value)!r}"
            ) from exc
        params[target.id] = (default, comments.get(node.end_lineno or node.lineno, ""))
    return params


def declared(nb: Any, where: str) -> dict[str, tuple[Any, str]]:
    """name -> (default, help) of the notebook node's parameters cell."""
    return parse_parameters(parameters_cell(nb, where).source, where)


def declared_parameters(notebook: Path) -> dict[str, object]:
    """Return the defaults of the notebook's `parameters` cell, name -> value.

    Raises:
        ValueError: the notebook has no cell tagged `parameters`, or the cell holds something
            other than `NAME = literal` assignments.
    """
    notebook = Path(notebook)
    return {k: v for k, (v, _) in declared(read_notebook(notebook), notebook.name).items()}


def parameter_help(notebook: Path) -> dict[str, str]:
    """Return each parameter's trailing comment (its help text; '' where there is none)."""
    notebook = Path(notebook)
    return {k: h for k, (_, h) in declared(read_notebook(notebook), notebook.name).items()}


def notebook_title(nb: Any, default: str) -> str:
    """Return the first Markdown H1 of the notebook, or `default`."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            match = re.match(r"^#\s+(.+?)\s*#*\s*$", line)
            if match:
                return match.group(1)
    return default
