"""Does notebook 04's fine-tuning recipe meet its soundness bars? Builds the target and the
two oracles with the notebook's default parameters (or overrides) and prints the setup table,
the bars and the noise floor, with the wall time of each stage.

    python bench/soundness_check.py [--finetune-epochs 8 --finetune-lr 1e-4 ...]

The cache is shared with the notebook: a later `make report NB=04` reuses these checkpoints.
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd

from lib import reporting
from lib.papers import rethinking
from lib.paths import NOTEBOOKS_DIR

COLUMNS = [
    "forget_fact_acc",
    "paraphrase_fact_acc",
    "forget_quality",
    "model_utility",
    "probe_fact_acc",
    "retain_fact_acc",
    "mia_auc",
]


def main() -> None:
    defaults = reporting.declared_parameters(NOTEBOOKS_DIR / "04_rethinking_evaluation.ipynb")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in (
        "finetune_epochs",
        "retain_epochs",
        "finetune_lr",
        "n_authors",
        "qa_per_author",
        "retain_replay",
        "general_replay",
    ):
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(defaults[name.upper()]))
    parser.add_argument("--finetune-recipe")
    parser.add_argument(
        "--use-lora", action="store_true", default=None, help="LoRA adapters (rank 16)"
    )
    parser.add_argument("--model")
    args = parser.parse_args()
    params = {k.lower(): v for k, v in defaults.items()}
    params.update({k: v for k, v in vars(args).items() if v is not None})
    keys = rethinking.config.__kwdefaults__ or {}
    wanted = set(
        rethinking.config.__code__.co_varnames[: rethinking.config.__code__.co_kwonlyargcount]
    )
    cfg = rethinking.config(**{k: v for k, v in params.items() if k in wanted or k in keys})
    start = time.perf_counter()
    setup = rethinking.setup(cfg)
    seconds = time.perf_counter() - start
    pd.set_option("display.width", 200)
    print(setup[COLUMNS].round(3).to_string())
    checks = rethinking.soundness(setup)
    print(checks.to_string())
    print(json.dumps(rethinking.noise_floor(cfg), indent=1))
    print(rethinking.validity(cfg).to_string())
    print(f"setup (fine-tuning + 4 evaluations): {seconds:.0f} s")


if __name__ == "__main__":
    main()
