"""Run the study: fine-tune target and retain oracle, unlearn with each method, evaluate, relearn.

Everything is cached on disk by spec key (`lib.specs`): checkpoints of fine-tuned models
(`runs/<key>/checkpoint`), per-example statistics (`evals/<key>.pkl`) and per-method results
(`runs/<key>/result.json`, written last, atomically). Re-running a notebook only re-reads the
cache; a sweep interrupted half-way resumes at the first method without a result.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import pickle
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib import methods as method_registry
from lib import metrics, models, paths
from lib.data import build_benchmark, filter_known, real_world_probes
from lib.data.authors import AuthorBenchmark
from lib.data.probes import Probe
from lib.evaluate import generate
from lib.methods.base import Method
from lib.methods.losses import ce_mean, forward_logits
from lib.specs import DataSpec, FinetuneSpec, ModelSpec, TrainSpec, UnlearnSpec, spec_key
from lib.suite import EvalSpec, SuiteStats, collect, retain_subset, summarize
from lib.train import qa_stream, seed_everything, train, unlearn_stream

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- atomic cache io
def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: Path, value: Any) -> None:
    atomic_write_bytes(path, json.dumps(value, indent=1, default=float).encode())


def write_pickle(path: Path, value: Any) -> None:
    atomic_write_bytes(path, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def read_pickle(path: Path) -> Any:
    with path.open("rb") as handle:
        return pickle.load(handle)


# --------------------------------------------------------------------------- results
@dataclass
class MethodResult:
    """One unlearning run: its metrics, costs and per-example statistics."""

    method: str
    metrics: dict[str, float]
    cost: dict[str, float]
    stats: SuiteStats
    relearn: dict[str, float] = field(default_factory=dict)
    log: list[dict[str, float]] = field(default_factory=list)
    message: str = ""

    def row(self) -> dict[str, Any]:
        return {
            "method": self.method,
            **self.metrics,
            **self.relearn,
            **self.cost,
            "message": self.message,
        }


@dataclass(frozen=True)
class RelearnSpec:
    """Relearning attack: fine-tune on half of the forget set, measure the other half."""

    epochs: float = 2.0  # passes over the relearn half
    lr: float = 1e-4  # learning rate of the attack
    batch_size: int = 4  # examples per step


class Study:
    """Target, oracle and unlearned models of one benchmark configuration, cached by spec."""

    def __init__(
        self,
        model: ModelSpec,
        data: DataSpec,
        finetune: TrainSpec,
        unlearn: TrainSpec,
        evaluation: EvalSpec,
        relearn: RelearnSpec | None = RelearnSpec(),
    ) -> None:
        if data.forget_split not in ("forget01", "forget05", "forget10"):
            raise ValueError(
                f"forget_split must be forget01|forget05|forget10, got {data.forget_split!r}"
            )
        self.model_spec, self.data, self.evaluation, self.relearn_spec = (
            model,
            data,
            evaluation,
            relearn,
        )
        self.finetune_spec, self.unlearn_spec = finetune, unlearn
        self.bench: AuthorBenchmark = build_benchmark(
            n_authors=data.n_authors, qa_per_author=data.qa_per_author, seed=data.seed
        )
        self.forget = self.bench.split(data.forget_split)
        self.retain = self.bench.retain_for(data.forget_split)
        self.holdout = self.bench.split("holdout")[: len(self.forget)]
        self.multihop = self.bench.multihop(data.forget_split)
        self.retain_eval = retain_subset(self.retain, evaluation.n_retain)
        self.cache = paths.cache_dir()
        self.target_spec = FinetuneSpec(model, data, "full", finetune)
        self.oracle_spec = FinetuneSpec(model, data, self.bench_retain_name, finetune)
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._probes: list[Probe] | None = None
        self.probes_filtered = False

    # ----------------------------------------------------------------- basics
    @property
    def bench_retain_name(self) -> str:
        return "retain" + self.data.forget_split.removeprefix("forget")

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        if self._tokenizer is None:
            self._tokenizer = models.load_tokenizer(self.model_spec.name)
        return self._tokenizer

    def load_base(self) -> PreTrainedModel:
        model, _ = models.load_model(
            self.model_spec.name, self.model_spec.dtype, self.model_spec.device
        )
        return model

    def load_checkpoint(self, spec: FinetuneSpec) -> PreTrainedModel:
        path = self.finetuned(spec)
        model, _ = models.load_model(str(path), self.model_spec.dtype, self.model_spec.device)
        return model

    def split_hashes(self) -> dict[str, str]:
        return self.bench.split_hashes()

    # ----------------------------------------------------------------- probes
    def probes(self) -> list[Probe]:
        """Real-world probes the *base* model answers correctly (checked once, cached)."""
        if self._probes is not None:
            return self._probes
        all_probes = real_world_probes()
        # the answers depend on the generation budget and batching, not only on the model
        probe_key = spec_key(
            {
                "model": self.model_spec,
                "max_new_tokens": self.evaluation.max_new_tokens,
                "batch_size": self.evaluation.batch_size,
            }
        )
        path = self.cache / "probes" / f"{probe_key}.json"
        if path.exists():
            answers = json.loads(path.read_text())
        else:
            logger.info("checking which real-world probes the base model knows")
            model = self.load_base()
            answers = generate(
                model,
                self.tokenizer,
                [p.question for p in all_probes],
                max_new_tokens=self.evaluation.max_new_tokens,
                batch_size=self.evaluation.batch_size,
            )
            write_json(path, answers)
        kept, self.probes_filtered = filter_known(all_probes, lambda _q: answers)
        self._probes = kept[: self.evaluation.n_probes]
        return self._probes

    # ----------------------------------------------------------------- fine-tuning
    def finetuned(self, spec: FinetuneSpec) -> Path:
        """Checkpoint folder of a fine-tuning run (trained on first use)."""
        run_dir = self.cache / "runs" / spec.key()
        checkpoint = run_dir / "checkpoint"
        if (run_dir / "train.json").exists() and checkpoint.exists():
            return checkpoint
        qas = self.bench.split(spec.split)
        logger.info("fine-tuning %s on %s (%d QA)", spec.model.name, spec.split, len(qas))
        seed_everything(spec.train.seed)
        model = self.load_base()
        model, params = _maybe_lora(model, spec.train)
        batches = qa_stream(self.tokenizer, qas, spec.train)
        device = next(model.parameters()).device

        def loss_fn(batch):
            batch = batch.to(device)
            loss = ce_mean(forward_logits(model, batch), batch.labels)
            return loss, {}, batch.n_tokens, 0

        result = train(model, batches, loss_fn, spec.train, params, desc=f"fine-tune {spec.split}")
        if result.diverged:
            raise RuntimeError(f"fine-tuning on {spec.split} diverged: {result.message}")
        models.save_checkpoint(model, self.tokenizer, checkpoint)
        n = models.n_parameters(model)
        write_json(run_dir / "spec.json", asdict(spec))
        write_json(run_dir / "train.json", {**result.as_dict(), "n_params": n, "log": result.log})
        return checkpoint

    def train_record(self, spec: FinetuneSpec) -> dict[str, Any]:
        self.finetuned(spec)
        return json.loads((self.cache / "runs" / spec.key() / "train.json").read_text())

    # ----------------------------------------------------------------- evaluation
    def stats(self, key: str, load: Callable[[], PreTrainedModel], context: str = "") -> SuiteStats:
        """Suite statistics of a model, cached under `evals/<key>`."""
        eval_key = spec_key(
            {"model": key, "eval": self.evaluation, "data": self.data, "context": context}
        )
        path = self.cache / "evals" / f"{eval_key}.pkl"
        if path.exists():
            return read_pickle(path)
        model = load()
        stats = self._collect(model, context)
        write_pickle(path, stats)
        return stats

    def _collect(self, model: PreTrainedModel, context: str) -> SuiteStats:
        """Suite statistics of a loaded model on this study's splits (uncached)."""
        return collect(
            model,
            self.tokenizer,
            self.forget,
            self.multihop,
            self.retain_eval,
            self.holdout,
            self.probes(),
            self.evaluation,
            context,
        )

    def target_stats(self) -> SuiteStats:
        return self.stats(self.target_spec.key(), lambda: self.load_checkpoint(self.target_spec))

    def oracle_stats(self) -> SuiteStats:
        return self.stats(self.oracle_spec.key(), lambda: self.load_checkpoint(self.oracle_spec))

    def base_stats(self) -> SuiteStats:
        return self.stats(spec_key(self.model_spec), self.load_base)

    def setup(self) -> pd.DataFrame:
        """Soundness of the setup: base, target and oracle on the suite (one row each)."""
        oracle = self.oracle_stats()
        rows = []
        for label, stats in (
            ("base", self.base_stats()),
            ("target", self.target_stats()),
            ("retrain", oracle),
        ):
            rows.append({"model": label, **summarize(stats, oracle)})
        return pd.DataFrame(rows).set_index("model")

    # ----------------------------------------------------------------- unlearning
    def unlearn_spec_for(
        self, method: str, hparams: dict[str, Any] | None = None, seed: int | None = None
    ) -> UnlearnSpec:
        train_spec = self.unlearn_spec if seed is None else replace(self.unlearn_spec, seed=seed)
        return UnlearnSpec(
            self.target_spec, method, tuple(sorted((hparams or {}).items())), train_spec
        )

    def context_for(self, method: Method) -> str:
        """Prompt context of input-based methods (forget authors + demonstrations)."""
        if method.updates_weights:
            return ""
        forget_authors = self.bench.authors(self.data.forget_split)
        demos: list[tuple[str, str]] = []
        for f_qa, r_qa in zip(self.forget[::7], self.retain[::37], strict=False):
            demos += [(f_qa.question, f_qa.idk_answer), (r_qa.question, r_qa.answer)]
        return method.context(forget_authors, demos)

    def run(
        self, method_name: str, hparams: dict[str, Any] | None = None, seed: int | None = None
    ) -> MethodResult:
        """Unlearn with one method (cached): metrics, cost, statistics, relearning attack."""
        method = method_registry.get(method_name, **(hparams or {}))
        spec = self.unlearn_spec_for(method_name, hparams, seed)
        run_dir = self.cache / "runs" / spec.key()
        if (run_dir / "result.json").exists():
            return read_pickle(run_dir / "result.pkl")
        oracle = self.oracle_stats()
        target_record = self.train_record(self.target_spec)
        n_params = target_record["n_params"]
        context = self.context_for(method)
        if method_name == "retrain":
            oracle_record = self.train_record(self.oracle_spec)
            stats, model, message = oracle, None, ""
            cost = {
                "seconds": oracle_record["seconds"],
                "flops": metrics.train_flops(n_params, oracle_record["train_tokens"]),
                "peak_memory_mb": oracle_record["peak_memory_mb"],
                "steps": oracle_record["steps"],
            }
            log: list[dict[str, float]] = []
            load_for_relearn = lambda: self.load_checkpoint(self.oracle_spec)  # noqa: E731
        elif not method.updates_weights:
            stats = self.stats(
                f"{self.target_spec.key()}+{spec.key()}",
                lambda: self.load_checkpoint(self.target_spec),
                context,
            )
            cost = {"seconds": 0.0, "flops": 0.0, "peak_memory_mb": 0.0, "steps": 0}
            log, message = [], ""
            load_for_relearn = lambda: self.load_checkpoint(self.target_spec)  # noqa: E731
        else:
            model, result = self._unlearn(method, spec)
            cost = {
                "seconds": result.seconds,
                "flops": metrics.train_flops(n_params, result.train_tokens)
                + metrics.eval_flops(n_params, result.reference_tokens),
                "peak_memory_mb": result.peak_memory_mb,
                "steps": result.steps,
            }
            log, message = result.log, result.message
            stats = self._collect(model, context)
            load_for_relearn = lambda: model  # noqa: E731
        target = self.target_stats()
        cost["eval_flops"] = metrics.eval_flops(n_params, stats.eval_tokens)
        cost["inference_overhead"] = stats.eval_tokens / max(1, target.eval_tokens) - 1.0
        relearn = self._relearn(load_for_relearn, stats, target, context)
        outcome = MethodResult(
            method_name, summarize(stats, oracle), cost, stats, relearn, log, message
        )
        write_json(run_dir / "spec.json", asdict(spec))
        write_pickle(run_dir / "result.pkl", outcome)
        write_json(run_dir / "result.json", outcome.row())  # written last: the "done" marker
        return outcome

    def _unlearn(self, method: Method, spec: UnlearnSpec):
        seed_everything(spec.train.seed)
        model = self.load_checkpoint(self.target_spec)
        reference = None
        if method.needs_reference:
            reference = copy.deepcopy(model).eval()
            for p in reference.parameters():
                p.requires_grad_(False)
        method.prepare(model, spec.train.seed)
        model, params = _maybe_lora(model, spec.train, method)
        batches = unlearn_stream(
            self.tokenizer,
            self.forget,
            self.retain,
            spec.train,
            with_retain=method.needs_retain,
            with_idk=method.needs_idk,
        )
        device = next(model.parameters()).device

        def loss_fn(batch):
            batch = batch.to(device)
            loss, logs = method.loss(model, batch, reference)
            n_train = sum(getattr(batch, s).n_tokens for s in method.grad_streams)
            n_ref = sum(getattr(batch, s).n_tokens for s in method.reference_streams)
            return loss, logs, n_train, n_ref

        result = train(model, batches, loss_fn, spec.train, params, desc=f"unlearn {method.name}")
        if hasattr(model, "merge_and_unload"):
            model = model.merge_and_unload()
        for p in model.parameters():
            p.requires_grad_(True)
        return model, result

    def _relearn(
        self,
        load: Callable[[], PreTrainedModel],
        stats: SuiteStats,
        target: SuiteStats,
        context: str,
    ) -> dict[str, float]:
        """Relearning attack: train on the even forget examples, measure the odd ones.

        relearn_recovery = (R_after - R_before) / (R_target - R_before) on the held-out half
        (ROUGE-L recall), in [0, 1] after clipping: 0 = nothing comes back, 1 = everything the
        target knew comes back. NaN when the model had not forgotten (denominator < 0.05).
        """
        if self.relearn_spec is None:
            return {}
        attack_half, probe_half = self.forget[0::2], self.forget[1::2]
        rouge = metrics.rouge_l_recall_many
        before = float(rouge(stats.forget_gen[1::2], stats.forget_answers[1::2]).mean())
        known = float(rouge(target.forget_gen[1::2], target.forget_answers[1::2]).mean())
        spec = replace(
            self.finetune_spec,
            epochs=self.relearn_spec.epochs,
            lr=self.relearn_spec.lr,
            batch_size=self.relearn_spec.batch_size,
            lora=None,
            warmup_ratio=0.0,
            schedule="constant",
        )
        model = copy.deepcopy(load())
        seed_everything(spec.seed)
        batches = qa_stream(self.tokenizer, attack_half, spec)
        device = next(model.parameters()).device

        def loss_fn(batch):
            batch = batch.to(device)
            return ce_mean(forward_logits(model, batch), batch.labels), {}, batch.n_tokens, 0

        train(model, batches, loss_fn, spec, desc="relearn attack")
        answers = generate(
            model,
            self.tokenizer,
            [q.question for q in probe_half],
            context,
            self.evaluation.max_new_tokens,
            self.evaluation.batch_size,
        )
        after = float(rouge(answers, [q.answer for q in probe_half]).mean())
        gap = known - before
        recovery = float(np.clip((after - before) / gap, 0.0, 1.0)) if gap >= 0.05 else np.nan
        return {
            "relearn_rouge_before": before,
            "relearn_rouge_after": after,
            "relearn_recovery": recovery,
        }

    def sweep(
        self,
        method_names: Sequence[str],
        hparams: dict[str, dict[str, Any]] | None = None,
        seeds: Sequence[int] | None = None,
    ) -> pd.DataFrame:
        """Run (or read from cache) every method for every seed of the unlearning runs.

        Returns one row per (method, seed), methods in the given order; `seeds=None` uses the
        seed of the unlearning TrainSpec. Every name and hyperparameter is validated first.
        """
        method_registry.validate(list(method_names))
        hparams = hparams or {}
        unknown = set(hparams) - set(method_names)
        if unknown:
            raise KeyError(f"hyperparameters given for methods not run: {sorted(unknown)}")
        n_layers = models.n_layers(self.model_spec.name)
        for name in method_names:  # validate every hyperparameter before any work
            method_registry.get(name, **hparams.get(name, {})).check(n_layers)
        seed_list = list(seeds) if seeds else [self.unlearn_spec.seed]
        jobs = [(name, seed) for seed in seed_list for name in method_names]
        results = {}
        for name, seed in tqdm(jobs, desc="methods", leave=False):
            results[(name, seed)] = self.run(name, hparams.get(name), seed)
        self.results = {name: results[(name, seed_list[0])] for name in method_names}
        rows = [
            {**results[(name, seed)].row(), "seed": seed}
            for name in method_names
            for seed in seed_list
        ]
        return pd.DataFrame(rows).set_index("method")


def _maybe_lora(
    model: PreTrainedModel, spec: TrainSpec, method: Method | None = None
) -> tuple[PreTrainedModel, list[torch.nn.Parameter]]:
    """Wrap the model with LoRA adapters when the spec asks for them."""
    if spec.lora is None:
        params = (
            list(method.trainable_parameters(model))
            if method
            else [p for p in model.parameters() if p.requires_grad]
        )
        return model, params
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=spec.lora.r,
        lora_alpha=spec.lora.alpha,
        lora_dropout=spec.lora.dropout,
        target_modules=list(spec.lora.target_modules),
        task_type="CAUSAL_LM",
    )
    wrapped = get_peft_model(model, config)
    # Adapters train in float32 even when the base is bf16 (stable small updates).
    for p in wrapped.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    return wrapped, [p for p in wrapped.parameters() if p.requires_grad]


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    return fn(), time.perf_counter() - start
