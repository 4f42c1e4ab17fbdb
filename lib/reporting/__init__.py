"""Execute parameterized notebooks, publish them as HTML and keep their numbers in plain files.

Modules (each one job):

- `report`: `Report`, what a notebook publishes (figures, tables, records, claims, headline);
- `logs`: the notebook's logging goes to a log file next to the report, not into cell outputs;
- `parameters`: the notebook's `parameters` cell (names, literal defaults, help comments);
- `execute`: papermill execution into a folder, HTML export, `manifest.json`;
- `console`: what the terminal shows while notebooks run;
- `index`: `reports/index.html` from the manifests (Jinja2 template in `templates/`);
- `formatting`: numbers, durations, directions and paths as reports write them;
- `cli`: `python -m lib.reporting run|index`.

Tests, the index and reviewers read the files (records.json, manifest.json), never notebook
outputs. This package knows nothing about unlearning; it works for any notebook with a
`parameters` cell.
"""

from lib.reporting.cli import (
    available_notebooks,
    load_params_file,
    main,
    resolve_notebook,
    run_notebooks,
)
from lib.reporting.execute import (
    KERNEL_NAME,
    KernelNotInstalledError,
    check_kernel,
    execute,
    export_html,
)
from lib.reporting.formatting import axis_label, column_labels, display_path, format_number
from lib.reporting.index import build_index
from lib.reporting.logs import LOG_ENV, setup_notebook_logging
from lib.reporting.parameters import declared_parameters, parameter_help
from lib.reporting.report import VERDICTS, Report, jsonable

__all__ = [
    "KERNEL_NAME",
    "LOG_ENV",
    "VERDICTS",
    "KernelNotInstalledError",
    "Report",
    "available_notebooks",
    "axis_label",
    "build_index",
    "check_kernel",
    "column_labels",
    "declared_parameters",
    "display_path",
    "execute",
    "export_html",
    "format_number",
    "jsonable",
    "load_params_file",
    "main",
    "parameter_help",
    "resolve_notebook",
    "run_notebooks",
    "setup_notebook_logging",
]
