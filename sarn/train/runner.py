"""The training stages: every seed of one (dataset, run) pair, as one folder.

Folder layout (``results/table2/<dataset>/<model>/``; Table III's sweep
``results/table3/<dataset>/<model>/len<L>/``; the protocol effects
``results/effects/<dataset>/<model>/<choice>/``):
- ``runs.csv``: one row per seed: the reported evaluation (best validation AUC; the last
  one without a validation set) with its step and metrics, and the test metrics the
  reference code's rule (``testsel_*``: best test AUC) and the last evaluation (``last_*``) give,
  and ``failed``: why the run counts as failed (:mod:`sarn.train.failure`), empty if it does not;
- ``history.csv``: one row per seed and evaluation: epoch, step, whether it ends an epoch,
  the train LogLoss of the batches since the previous evaluation, LogLoss/AUC/gAUC of validation and test;
- ``checkpoints/seed<k>.pt``: the weights at each seed's reported evaluation;
- ``run.json``: the hyperparameters, seeds, history length and device that produced them.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sarn.atomic import atomic_dir, write_json
from sarn.data.processed import SPLITS, load_meta, load_negative_pool, load_split, split_sizes
from sarn.errors import ConfigError
from sarn.models import CTRModel, model_class
from sarn.params import (
    CompileMode,
    ModelSpec,
    Params,
    RuntimeSpec,
    TrainOn,
    apply_override,
    effects_datasets,
    evaluation_problem,
)
from sarn.train.batching import DeviceSamples
from sarn.train.checkpoint import model_for, save_state
from sarn.train.failure import constant_loglosses, failure
from sarn.train.loop import EVAL_SPLITS, RunResult, compile_model, train_run
from sarn.train.metrics import METRICS
from sarn.train.negatives import NegativeSampler
from sarn.train.record import RUN_FILE
from sarn.train.schedule import trained_samples
from sarn.train.seeds import CpuUse, cpu_use, in_processes

log = logging.getLogger(__name__)


def configure_torch(runtime: RuntimeSpec) -> torch.device:
    """Pick the device and make results reproducible for a given seed on it.

    The thread count always comes from params.yaml: it changes the last bits of CPU
    results, so the drivers must not be able to change it behind the user's back.
    """
    if runtime.device == "cuda" or (runtime.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("runtime.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        device = torch.device("cuda")
        tf32 = runtime.precision != "fp32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32  # on by default in torch: fp32 must switch it off
    else:
        device = torch.device("cpu")
        if runtime.precision != "fp32":
            log.warning("runtime.precision is %s, which applies on CUDA only: the CPU computes in fp32",
                        runtime.precision)
    torch.set_num_threads(runtime.threads)
    torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
    # Deterministic mode also fills every new tensor with NaN by default, to expose reads of
    # uninitialised memory; the project writes every tensor it allocates before reading it,
    # and the fill cost 10 to 14% of a CPU training step here (benchmarks/train_speed.py).
    torch.utils.deterministic.fill_uninitialized_memory = False
    return device


def _arrays(data_dir: Path, train_on: TrainOn, names: Sequence[str] | None = None
            ) -> dict[str, dict[str, np.ndarray]]:
    """The splits a run uses (only the arrays ``names`` where given).

    ``train+valid``: the validation users join the training set (the reference code's 90/10
    split), and there is no validation split left to choose with.
    """
    arrays = {split: load_split(data_dir, split, names) for split in SPLITS}
    if train_on == "train+valid":
        valid = arrays.pop("valid")
        arrays["train"] = {key: np.concatenate([values, valid[key]]) for key, values in arrays["train"].items()}
    return arrays


def _splits(data_dir: Path, device: torch.device, max_len: int, train_on: TrainOn) -> dict[str, DeviceSamples]:
    """The splits a run uses, on the device, histories cut to the latest ``max_len`` clicks."""
    return {split: DeviceSamples(values, device, max_len) for split, values in _arrays(data_dir, train_on).items()}


def _new_model(params: Params, spec: ModelSpec, label: str, meta: dict, device: torch.device, seed: int
               ) -> tuple[CTRModel, CompileMode]:
    """The model of ``spec`` initialised under ``seed`` and the torch.compile mode it runs in
    (``runtime.compile`` where the model and the device allow it)."""
    torch.manual_seed(seed)
    net = model_for(spec.model, spec.architecture, meta).to(device)
    asked = params.runtime.compile
    mode = compile_model(net, asked, device)
    if mode != asked and seed == params.experiment.seed:  # said once per stage
        log.warning("runtime.compile is %s, but %s runs %s", asked, label,
                    "eagerly: its recurrence does not compile as one graph" if not net.compilable
                    else "in torch.compile's default mode: CUDA graphs need CUDA")
    return net, mode


def _biased_loglosses(meta: dict) -> bool:
    """Whether LogLoss and gAUC would mislead: preprocessing dropped training negatives (a log
    with labels, ``negative_drop`` > 0), so predicted click rates are shifted; the AUC is not."""
    return meta["labeled"] and meta["negative_drop"] > 0


def _run_row(seed: int, result: RunResult, run: _Run) -> dict:
    """One line of runs.csv: the reported evaluation, the test metrics the reference code's
    rule (best test AUC) and the last evaluation would give, and why the run counts as
    failed ('' if it does not; said in the log too)."""
    biased = _biased_loglosses(run.meta)
    best = result.best
    row: dict = {"seed": seed, "selection": result.reported, "best_epoch": best["epoch"], "best_step": best["step"],
                 **{f"{split}_{metric}": best.get(f"{split}_{metric}", np.nan)
                    for split in EVAL_SPLITS for metric in METRICS}}
    for rule, prefix in (("test", "testsel"), ("last", "last")):
        picked = result.history[result.selected[rule]]
        row[f"{prefix}_step"] = picked["step"]
        row |= {f"{prefix}_test_{metric}": picked[f"test_{metric}"] for metric in METRICS}
    # Negatives dropped from training: only the AUC is comparable, and the LogLoss no measure
    # of failure either.
    row["failed"] = failure(result, run.constant_logloss, biased_logloss=biased)
    if row["failed"]:
        log.warning("train[%s/%s] seed %d failed: %s", run.dataset, run.name, seed, row["failed"])
    if biased:
        row = {k: (None if k.endswith(("_logloss", "_gauc")) else v) for k, v in row.items()}
    return row


@dataclass(frozen=True)
class _Run:
    """What every seed of a run shares, known without loading its data: where it runs, its
    settings, the dataset's vocabulary and how its histories are cut and evaluated."""

    name: str
    dataset: str
    spec: ModelSpec
    device: torch.device
    meta: dict
    max_len: int
    eval_every: int | None  # optimizer steps between evaluations, from eval_every_samples
    statistics_samples: int  # training samples batch norm and Dice measure their statistics on
    data_dir: Path
    constant_logloss: dict[str, float]  # per evaluated split, predicting the training click rate


@dataclass
class _Loaded:
    """A run with its dataset as it trains on it, in the process that trains its seeds."""

    run: _Run
    data: dict[str, DeviceSamples]
    pool: dict[str, np.ndarray] | None  # the negatives' distribution, where drawn every epoch


def _describe(params: Params, dataset: str, name: str, spec: ModelSpec, data_dir: Path, max_len: int) -> _Run:
    """Torch set up for the run (:func:`configure_torch`), and the run checked against its dataset's
    size: ``eval_every_samples`` must fit in an epoch (else it would never evaluate between epochs)."""
    device = configure_torch(params.runtime)
    samples = trained_samples(split_sizes(data_dir), spec.training.train_on)
    training = params.datasets[dataset].training
    problem = evaluation_problem(training, dataset, name, spec.training, samples)
    if problem:
        raise ConfigError(problem)
    labels = {split: arrays["label"] for split, arrays in _arrays(data_dir, spec.training.train_on, ["label"]).items()}
    return _Run(name, dataset, spec, device, load_meta(data_dir), max_len,
                training.eval_every(spec.training.batch_size), training.statistics_samples, data_dir,
                constant_loglosses(labels))


def _load(run: _Run) -> _Loaded:
    """The run's splits on its device, and the negatives' distribution where they are drawn every epoch."""
    data = _splits(run.data_dir, run.device, run.max_len, run.spec.training.train_on)
    pool = load_negative_pool(run.data_dir) if run.spec.training.aux_negatives == "per_epoch" else None
    return _Loaded(run, data, pool)


def _train_one(params: Params, loaded: _Loaded, seed: int, label: str,
               snapshot_fractions: Sequence[float] = ()) -> tuple[RunResult, CompileMode]:
    """One seed of a run, trained as every stage trains it."""
    run = loaded.run
    net, compiled = _new_model(params, run.spec, run.name, run.meta, run.device, seed)
    result = train_run(net, loaded.data, run.spec.training, seed, params.runtime.eval_batch_size, label=label,
                       statistics_samples=run.statistics_samples, eval_every=run.eval_every,
                       snapshot_fractions=snapshot_fractions, precision=params.runtime.precision,
                       negatives=NegativeSampler(loaded.pool, seed) if loaded.pool is not None else None)
    return result, compiled


def _label(run: _Run, seed: int) -> str:
    return f"{run.dataset}/{run.name} seed {seed}"


def _run_record(params: Params, run: _Run, seeds: list[int], compiled: CompileMode, selection: str,
                cpu: CpuUse) -> dict:
    """``run.json``: what produced a run folder; :func:`sarn.train.checkpoint.load_trained` rebuilds
    its models from it."""
    return {
        "dataset": run.dataset,
        "model": run.name,
        "class": run.spec.model,
        "notes": inspect.getdoc(sys.modules[model_class(run.spec.model).__module__]) or "",
        "seeds": seeds,
        "max_len": run.max_len,
        "eval_every": run.eval_every,
        "eval_every_samples": params.datasets[run.dataset].training.eval_every_samples,
        "statistics_samples": run.statistics_samples,
        "architecture": run.spec.architecture,
        "training": run.spec.training.model_dump(),
        "device": run.device.type,
        "precision": params.runtime.precision if run.device.type == "cuda" else "fp32",
        "compile": compiled,
        "threads": cpu.threads,
        "parallel_seeds": cpu.processes,
        "cores": cpu.cores,
        "oversubscribed": cpu.oversubscribed,
        "torch": torch.__version__,
        "selection": SELECTION_NOTES[selection],
        "metrics": ["auc"] if _biased_loglosses(run.meta) else list(METRICS),
    }


def _trained(params: Params, run: _Run, seeds: list[int], processes: int
             ) -> Iterator[tuple[int, RunResult, CompileMode]]:
    """Every seed of ``run`` trained, in this process one after another (``processes`` 1), or in
    ``processes`` processes at once (:mod:`sarn.train.seeds`), as each finishes."""
    if processes == 1:
        loaded = _load(run)
        for seed in seeds:
            yield seed, *_train_one(params, loaded, seed, _label(run, seed))
    else:
        for seed, (result, compiled) in in_processes(_SeedJob(params, run), seeds, processes):
            yield seed, result, compiled


@dataclass(frozen=True)
class _SeedJob:
    """A run's seeds as a seed's own process trains them (:func:`sarn.train.seeds.in_processes`): it
    sets torch up, loads the data once, then trains the seeds it is given."""

    params: Params
    run: _Run

    def label(self, seed: int) -> str:
        return _label(self.run, seed)

    def start(self) -> Callable[[int], tuple[RunResult, CompileMode]]:
        configure_torch(self.params.runtime)
        loaded = _load(self.run)
        return lambda seed: _train_one(self.params, loaded, seed, self.label(seed))


def _train_seeds(params: Params, dataset: str, name: str, spec: ModelSpec, data_dir: Path, folder: Path,
                 seeds: list[int], max_len: int) -> None:
    """Train run ``name`` (its settings ``spec``) once per seed and write its results into ``folder``."""
    run = _describe(params, dataset, name, spec, data_dir, max_len)
    cpu = cpu_use(params.runtime, len(seeds))
    log.info("train[%s/%s]: on %s, %d seeds (%d at once, %d threads each), histories up to %d clicks, "
             "evaluated %s", dataset, name, run.device, len(seeds), cpu.processes, cpu.threads, max_len,
             f"every {run.eval_every} steps and at each epoch's end" if run.eval_every else "at each epoch's end")
    rows, histories, compiled = {}, {}, "eager"
    (folder / "checkpoints").mkdir()
    for seed, result, compiled in _trained(params, run, seeds, cpu.processes):
        save_state(result.state_dict, folder / "checkpoints" / f"seed{seed}.pt")
        rows[seed] = _run_row(seed, result, run)
        histories[seed] = [{"seed": seed, **row} for row in result.history]
        log.info("train[%s/%s] seed %d: %s evaluation at step %d, test AUC %.4f, LogLoss %.4f",
                 dataset, name, seed, "best validation" if result.reported == "validation" else "last",
                 result.best["step"], result.best["test_auc"], result.best["test_logloss"])
    runs = [rows[seed] for seed in seeds]
    pd.DataFrame(runs).to_csv(folder / "runs.csv", index=False, lineterminator="\n")
    pd.DataFrame([row for seed in seeds for row in histories[seed]]).to_csv(
        folder / "history.csv", index=False, lineterminator="\n")
    write_json(folder / RUN_FILE, _run_record(params, run, seeds, compiled, runs[0]["selection"], cpu))


SELECTION_NOTES = {
    "validation": "the evaluation with the best validation AUC; test metrics reported there. testsel_* "
                  "columns: the evaluation with the best test AUC (the reference code's rule, not a fair "
                  "estimate); last_*: the last evaluation",
    "last": "no validation set (train_on: train+valid): the last evaluation is reported; testsel_* columns: "
            "the evaluation with the best test AUC (the reference code's rule, not a fair estimate)",
}


def seeds_of(params: Params, n_seeds: int) -> list[int]:
    """The first ``n_seeds`` seeds of the experiment (Table II runs ``experiment.n_seeds`` of them)."""
    return [params.experiment.seed + k for k in range(n_seeds)]


def train_model(params: Params, dataset: str, model: str, data_dir: Path, out_dir: Path,
                n_seeds: int, max_len: int | None = None) -> None:
    """Train run ``model`` on ``dataset`` once per seed and write the results folder.

    Histories keep the latest ``datasets.<dataset>.training.max_len`` clicks (Table II), or
    ``max_len`` where given (Table III's sweep).
    """
    length = max_len or params.datasets[dataset].training.max_len
    with atomic_dir(out_dir) as tmp:
        _train_seeds(params, dataset, model, params.models[model], data_dir, tmp, seeds_of(params, n_seeds), length)


def train_effects(params: Params, dataset: str, model: str, data_dir: Path, out_dir: Path) -> None:
    """The protocol-effects runs of ``model`` on ``dataset``: one folder per choice of
    ``protocol_effects.choices``, trained as Table II trains ``model`` with that choice applied
    (the baseline is Table II's own run). A dataset not listed in ``protocol_effects.datasets``
    gets a folder that says so, so that the aggregation always has its input."""
    effects = params.protocol_effects
    with atomic_dir(out_dir) as tmp:
        run = dataset in effects_datasets(params)
        choices = effects.choices_for(model) if run else {}
        for name, choice in choices.items():
            (tmp / name).mkdir()
            _train_seeds(params, dataset, model, apply_override(params.models[model], choice), data_dir,
                         tmp / name, seeds_of(params, effects.n_seeds), params.datasets[dataset].training.max_len)
        write_json(tmp / EFFECTS_MANIFEST, {"dataset": dataset, "model": model, "run": run,
                                            "choices": {name: choice.changes() for name, choice in choices.items()}})
    log.info("effects[%s/%s]: %s", dataset, model,
             f"{len(choices)} choices trained" if run else "not run (protocol_effects.datasets)")


EFFECTS_MANIFEST = "effects.json"


def train_snapshots(params: Params, dataset: str, model: str, data_dir: Path, out_dir: Path) -> None:
    """Train the first seed of ``model`` once more, as Table II trains it, keeping its weights
    at the fractions of training listed in ``figures.snapshots`` (Fig. 5a) and at its
    reported evaluation (``best.pt``), with the run's record beside them."""
    run = _describe(params, dataset, model, params.models[model], data_dir,
                    params.datasets[dataset].training.max_len)
    seed, fractions = params.experiment.seed, params.figures.snapshots
    cpu = cpu_use(params.runtime, 1)
    result, compiled = _train_one(params, _load(run), seed, f"{dataset}/{model} snapshots", fractions)
    with atomic_dir(out_dir) as tmp:
        files = []
        for k, fraction in enumerate(fractions):
            step, state = result.snapshots[fraction]
            files.append({"fraction": fraction, "step": step, "file": f"snapshot{k}.pt"})
            save_state(state, tmp / f"snapshot{k}.pt")
        save_state(result.state_dict, tmp / "best.pt")
        write_json(tmp / RUN_FILE, _run_record(params, run, [seed], compiled, result.reported, cpu))
        write_json(tmp / "snapshots.json", {"dataset": dataset, "model": model, "seed": seed,
                                            "best_epoch": result.best["epoch"], "best_step": result.best["step"],
                                            "max_len": run.max_len, "snapshots": files})
    log.info("snapshots[%s/%s]: %d snapshots at steps %s", dataset, model, len(files),
             [f["step"] for f in files])
