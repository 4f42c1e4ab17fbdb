"""Fair budgets: choose each method's learning rate, epochs (and loss coefficient) on a
*validation* request, then run the choice on the test request.

The validation request unlearns other forget authors (`forget10_val`: disjoint from the test
forget split, but trained by the target) with their own retain set. No retrained oracle exists
for them, so each checkpoint is scored cheaply, without generation, against a reference that
costs nothing: the *holdout* authors, which no model ever trained on.

- `val_forget_quality`: KS p-value between the truth ratios of the validation forget questions
  and of holdout questions, under the same unlearned model (higher = the forgotten authors look
  like never-seen authors; the target scores near 0);
- `val_utility`: harmonic mean of the retain answers' probability and retain truth score (two
  of TOFU's model-utility components that need no generation; higher = utility kept).

Selection rule (documented choice; the issue leaves it open): among the checkpoints whose
`val_utility` keeps at least `utility_floor` (default 90%) of the target's, the one with the
highest `val_forget_quality` (ties: fewer epochs, then smaller learning rate). When no checkpoint
keeps the floor, the one with the highest utility, flagged `floor_met = False`.

Iterative methods are scored after every epoch of one run per learning rate (the epochs axis of
the grid costs no extra training); other methods are run once per grid point.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats
from transformers import PreTrainedModel

from lib import methods as method_registry
from lib import metrics, progress, runner
from lib.benchmarks import tofu
from lib.benchmarks.tofu_suite import EvalSpec, retain_subset
from lib.evaluate import score_and_generate
from lib.methods import GradientMethod, UnlearnContext
from lib.prompting import format_prompt
from lib.specs import TrainSpec
from lib.train import seed_everything

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TuneSpec:
    """Choose the hyperparameters of one method on the validation request."""

    target: tofu.FinetuneSpec
    method: str
    train: TrainSpec  # the unlearning recipe; `epochs` = the largest number of epochs tried
    evaluation: EvalSpec
    lrs: tuple[float, ...]  # learning rates tried
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # method hyperparameter -> values tried
    hparams: tuple[tuple[str, Any], ...] = ()  # fixed overrides of the method's defaults
    validation_split: str = ""  # "" = the test forget split's `_val` twin
    utility_floor: float = 0.9  # fraction of the target's validation utility to keep

    def __post_init__(self) -> None:
        if not self.lrs or any(lr <= 0 for lr in self.lrs):
            raise ValueError(f"lrs must be positive learning rates, got {self.lrs!r}")
        if not 0 < self.utility_floor <= 1:
            raise ValueError(f"utility_floor must be in (0, 1], got {self.utility_floor}")

    @property
    def data(self) -> tofu.DataSpec:
        split = self.validation_split or self.target.data.validation.forget_split
        return replace(self.target.data, forget_split=split)


@dataclass
class TuneResult:
    """The validation trajectory (one row per checkpoint) and the chosen setting."""

    method: str
    trajectory: list[dict[str, Any]]
    selected: dict[str, Any]  # lr, epochs and the chosen method hyperparameters
    target_utility: float
    floor_met: bool
    seconds: float = 0.0
    train_tokens: int = 0
    notes: list[str] = field(default_factory=list)

    def summary_line(self) -> str:
        chosen = ", ".join(f"{k}={v}" for k, v in self.selected.items())
        flag = "" if self.floor_met else " (utility floor not met)"
        return f"tuned {self.method}: {chosen}{flag}"


def _truth_ratios(scores_para, scores_pert, k: int) -> np.ndarray:
    return metrics.truth_ratio(scores_para.avg_nll, scores_pert.avg_nll.reshape(-1, k))


def validation_scores(model: PreTrainedModel, spec: TuneSpec) -> dict[str, float]:
    """The cheap checkpoint scores of the module docstring (no generation)."""
    tokenizer = tofu.tokenizer_of(spec.target.model.name)
    data = tofu.benchmark_data(spec.data)
    retain = retain_subset(data.retain, spec.evaluation.n_retain)
    out: dict[str, np.ndarray] = {}
    for name, rows in (("forget", data.forget), ("holdout", data.holdout), ("retain", retain)):
        k = len(rows[0]["perturbed_answers"])
        result = score_and_generate(
            model,
            tokenizer,
            [format_prompt(tokenizer, r["question"]) for r in rows],
            {
                "answer": [[r["answer"]] for r in rows],
                "paraphrased": [[r["paraphrased_answer"]] for r in rows],
                "perturbed": [list(r["perturbed_answers"]) for r in rows],
            },
            batch_size=spec.evaluation.batch_size,
        )
        out[f"{name}_tr"] = _truth_ratios(
            result.scores["paraphrased"], result.scores["perturbed"], k
        )
        out[f"{name}_prob"] = metrics.probability(result.scores["answer"].avg_nll)
    retain_prob = float(out["retain_prob"].mean())
    retain_truth = metrics.retain_truth_score(out["retain_tr"])
    utility = (
        float(scipy_stats.hmean([retain_prob, retain_truth]))
        if min(retain_prob, retain_truth) > 0
        else 0.0
    )
    return {
        "val_forget_quality": metrics.forget_quality(out["forget_tr"], out["holdout_tr"]),
        "val_forget_prob": float(out["forget_prob"].mean()),
        "val_utility": utility,
        "val_retain_prob": retain_prob,
    }


def _grid_points(spec: TuneSpec) -> list[dict[str, Any]]:
    names = [name for name, _ in spec.grid]
    values = [vals for _, vals in spec.grid]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)] or [{}]


def select(trajectory: pd.DataFrame, target_utility: float, floor: float) -> tuple[dict, bool]:
    """Apply the module docstring's rule to a trajectory table; returns (row, floor met)."""
    ok = trajectory[trajectory["val_utility"] >= floor * target_utility]
    if ok.empty:
        best = trajectory.sort_values(["val_utility", "epochs"], ascending=[False, True]).iloc[0]
        return best.to_dict(), False
    best = ok.sort_values(
        ["val_forget_quality", "epochs", "lr"], ascending=[False, True, True]
    ).iloc[0]
    return best.to_dict(), True


@runner.task(TuneSpec)
def tune(spec: TuneSpec) -> TuneResult:
    """Run the validation grid of one method and choose its setting (see the module docstring)."""
    fixed = dict(spec.hparams)
    method_registry.get(spec.method, **fixed)  # unknown names fail before any work
    data = tofu.benchmark_data(spec.data)
    target_model = tofu.load_finetuned(spec.target)
    base_scores = validation_scores(target_model, spec)
    del target_model
    rows: list[dict[str, Any]] = []
    seconds, tokens = 0.0, 0
    points = [(lr, point) for lr in spec.lrs for point in _grid_points(spec)]
    for lr, point in progress.iterate(points, f"tune {spec.method}", unit="setting"):
        method = method_registry.get(spec.method, **{**fixed, **point})
        train_spec = replace(spec.train, lr=lr)
        iterative = isinstance(method, GradientMethod)

        def record(model: PreTrainedModel, epoch: float, lr=lr, point=point) -> None:
            rows.append({"lr": lr, "epochs": epoch, **point, **validation_scores(model, spec)})

        seed_everything(train_spec.seed)
        model = tofu.load_finetuned(spec.target)
        ctx = UnlearnContext(
            tokenizer=tofu.tokenizer_of(spec.target.model.name),
            train=train_spec,
            load_reference=lambda: tofu.load_finetuned(spec.target),
            on_epoch=record if iterative else None,
            desc=f"tune {spec.method} lr={lr:g}",
        )
        unlearned = method.unlearn(model, data.request(), ctx)
        seconds += unlearned.train.seconds
        tokens += unlearned.train.train_tokens
        if not iterative:
            record(unlearned.model, train_spec.epochs)
    trajectory = pd.DataFrame(rows)
    best, floor_met = select(trajectory, base_scores["val_utility"], spec.utility_floor)
    selected = {"lr": float(best["lr"]), "epochs": float(best["epochs"])}
    selected.update({name: best[name] for name, _ in spec.grid})
    notes = [] if floor_met else ["no checkpoint kept the utility floor: the least damaging one"]
    return TuneResult(
        method=spec.method,
        trajectory=[
            {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in rows
        ]
        + [{"lr": 0.0, "epochs": 0.0, **base_scores}],
        selected={k: (v.item() if hasattr(v, "item") else v) for k, v in selected.items()},
        target_utility=base_scores["val_utility"],
        floor_met=floor_met,
        seconds=seconds,
        train_tokens=tokens,
        notes=notes,
    )


def tuned_spec(
    spec: TuneSpec, result: TuneResult, seed: int, relearn: tofu.RelearnSpec | None
) -> tofu.UnlearnSpec:
    """The test-split unlearning run with the chosen setting."""
    chosen = dict(result.selected)
    lr, epochs = chosen.pop("lr"), chosen.pop("epochs")
    hparams = {**dict(spec.hparams), **chosen}
    return tofu.UnlearnSpec(
        target=spec.target,
        method=spec.method,
        train=replace(spec.train, lr=lr, epochs=epochs, seed=seed),
        evaluation=spec.evaluation,
        relearn=relearn,
        hparams=tuple(sorted(hparams.items())),
    )


def trajectories(results: Sequence[TuneResult]) -> pd.DataFrame:
    """All validation checkpoints of every method (epoch 0 = the target), one row each."""
    frames = [pd.DataFrame(r.trajectory).assign(method=r.method) for r in results]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
