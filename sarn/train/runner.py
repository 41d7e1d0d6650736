"""The training stages: every seed of one (dataset, run) pair, as one folder.

Folder layout (``results/table2/<dataset>/<model>/``; Table III's sweep
``results/table3/<dataset>/<model>/len<L>/``; the protocol effects
``results/effects/<dataset>/<model>/<choice>/``):
- ``runs.csv``: one row per seed: the reported evaluation (best validation AUC; the last
  one without a validation set) with its step and metrics, and the test metrics the
  reference code's rule (``testsel_*``: best test AUC) and the last evaluation (``last_*``) give;
- ``history.csv``: one row per seed and evaluation: epoch, step, whether it ends an epoch,
  the epoch's train LogLoss so far, LogLoss/AUC/gAUC of validation and test;
- ``checkpoints/seed<k>.pt``: the weights at each seed's reported evaluation;
- ``run.json``: the hyperparameters, seeds, history length and device that produced them.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sarn.atomic import atomic_dir, write_json
from sarn.data.prepare import load_meta, load_negative_pool, load_split
from sarn.data.samples import SPLITS
from sarn.errors import ConfigError
from sarn.models import CTRModel, build_model, model_class
from sarn.params import CompileMode, ModelSpec, Params, RuntimeSpec, TrainOn, apply_override, evaluation_problem
from sarn.train.batching import DeviceSamples
from sarn.train.loop import EVAL_SPLITS, RunResult, compile_model, train_run
from sarn.train.metrics import METRICS
from sarn.train.negatives import NegativeSampler

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


def _splits(data_dir: Path, device: torch.device, max_len: int, train_on: TrainOn) -> dict[str, DeviceSamples]:
    """The splits a run uses, on the device, histories cut to the latest ``max_len`` clicks.

    ``train+valid``: the validation users join the training set (the reference code's 90/10
    split), and there is no validation split left to choose with.
    """
    arrays = {split: load_split(data_dir, split) for split in SPLITS}
    if train_on == "train+valid":
        valid = arrays.pop("valid")
        arrays["train"] = {key: np.concatenate([values, valid[key]]) for key, values in arrays["train"].items()}
    return {split: DeviceSamples(values, device, max_len) for split, values in arrays.items()}


def _new_model(params: Params, spec: ModelSpec, label: str, meta: dict, device: torch.device, seed: int
               ) -> tuple[CTRModel, CompileMode]:
    """The model of ``spec`` initialised under ``seed`` and the torch.compile mode it runs in
    (``runtime.compile`` where the model and the device allow it)."""
    torch.manual_seed(seed)
    net = build_model(spec.model, meta["n_items"], meta["n_categories"], spec.architecture,
                      meta["n_contexts"]).to(device)
    asked = params.runtime.compile
    mode = compile_model(net, asked, device)
    if mode != asked and seed == params.experiment.seed:  # said once per stage
        log.warning("runtime.compile is %s, but %s runs %s", asked, label,
                    "eagerly: its recurrence is a Python loop" if not net.compilable
                    else "in torch.compile's default mode: CUDA graphs need CUDA")
    return net, mode


def _check_steps(params: Params, dataset: str, name: str, spec: ModelSpec, train_samples: int) -> None:
    """``eval_every`` must fit in an epoch of this run (else it would never evaluate between epochs)."""
    problem = evaluation_problem(params.datasets[dataset].training, dataset, name, spec.training, train_samples)
    if problem:
        raise ConfigError(problem)


def _run_row(seed: int, result: RunResult, labeled: bool) -> dict:
    """One line of runs.csv: the reported evaluation, and the test metrics the reference code's
    rule (best test AUC) and the last evaluation would give."""
    best = result.best
    row: dict = {"seed": seed, "selection": result.reported, "best_epoch": best["epoch"], "best_step": best["step"],
                 **{f"{split}_{metric}": best.get(f"{split}_{metric}", np.nan)
                    for split in EVAL_SPLITS for metric in METRICS}}
    for rule, prefix in (("test", "testsel"), ("last", "last")):
        picked = result.history[result.selected[rule]]
        row[f"{prefix}_step"] = picked["step"]
        row |= {f"{prefix}_test_{metric}": picked[f"test_{metric}"] for metric in METRICS}
    if labeled:  # negatives were dropped from training: only the AUC is comparable
        row = {k: (None if k.endswith(("_logloss", "_gauc")) else v) for k, v in row.items()}
    return row


def _train_seeds(params: Params, dataset: str, name: str, spec: ModelSpec, data_dir: Path, folder: Path,
                 seeds: list[int], max_len: int) -> None:
    """Train run ``name`` (its settings ``spec``) once per seed and write its results into ``folder``."""
    device = configure_torch(params.runtime)
    meta = load_meta(data_dir)
    training = params.datasets[dataset].training
    data = _splits(data_dir, device, max_len, spec.training.train_on)
    _check_steps(params, dataset, name, spec, data["train"].size)
    log.info("train[%s/%s]: %d train samples on %s, %d seeds, histories up to %d clicks, evaluated %s",
             dataset, name, data["train"].size, device, len(seeds), max_len,
             f"every {training.eval_every} steps and at each epoch's end" if training.eval_every
             else "at each epoch's end")
    pool = load_negative_pool(data_dir) if spec.training.aux_negatives == "per_epoch" else None
    runs, histories = [], []
    (folder / "checkpoints").mkdir()
    for seed in seeds:
        net, compiled = _new_model(params, spec, name, meta, device, seed)
        result = train_run(net, data, spec.training, seed, params.runtime.eval_batch_size,
                           label=f"{dataset}/{name} seed {seed}", eval_every=training.eval_every,
                           precision=params.runtime.precision,
                           negatives=NegativeSampler(pool, seed) if pool is not None else None)
        torch.save(result.state_dict, folder / "checkpoints" / f"seed{seed}.pt")
        runs.append(_run_row(seed, result, meta["labeled"]))
        histories += [{"seed": seed, **row} for row in result.history]
        log.info("train[%s/%s] seed %d: %s evaluation at step %d, test AUC %.4f, LogLoss %.4f",
                 dataset, name, seed, "best validation" if result.reported == "validation" else "last",
                 result.best["step"], result.best["test_auc"], result.best["test_logloss"])
    pd.DataFrame(runs).to_csv(folder / "runs.csv", index=False, lineterminator="\n")
    pd.DataFrame(histories).to_csv(folder / "history.csv", index=False, lineterminator="\n")
    write_json(folder / "run.json", {
        "dataset": dataset,
        "model": name,
        "class": spec.model,
        "notes": inspect.getdoc(sys.modules[model_class(spec.model).__module__]) or "",
        "seeds": seeds,
        "max_len": max_len,
        "eval_every": training.eval_every,
        "architecture": spec.architecture,
        "training": spec.training.model_dump(),
        "device": device.type,
        "precision": params.runtime.precision if device.type == "cuda" else "fp32",
        "compile": compiled,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "selection": SELECTION_NOTES[runs[0]["selection"]],
        "metrics": ["auc"] if meta["labeled"] else list(METRICS),
    })


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
        run = dataset in effects.datasets
        if run:
            for choice, override in effects.choices.items():
                (tmp / choice).mkdir()
                _train_seeds(params, dataset, model, apply_override(params.models[model], override), data_dir,
                             tmp / choice, seeds_of(params, effects.n_seeds), params.datasets[dataset].training.max_len)
        write_json(tmp / EFFECTS_MANIFEST, {"dataset": dataset, "model": model, "run": run,
                                            "choices": dict(effects.choices) if run else {}})
    log.info("effects[%s/%s]: %s", dataset, model,
             f"{len(effects.choices)} choices trained" if run else "not run (protocol_effects.datasets)")


EFFECTS_MANIFEST = "effects.json"


def train_snapshots(params: Params, dataset: str, model: str, data_dir: Path, out_dir: Path) -> None:
    """Train the first seed of ``model`` once more, as Table II trains it, keeping its weights
    at the fractions of training listed in ``figures.snapshots`` (Fig. 5a) and at its
    reported evaluation."""
    spec = params.models[model]
    training = params.datasets[dataset].training
    device = configure_torch(params.runtime)
    meta = load_meta(data_dir)
    data = _splits(data_dir, device, training.max_len, spec.training.train_on)
    _check_steps(params, dataset, model, spec, data["train"].size)
    seed = params.experiment.seed
    fractions = params.figures.snapshots
    net, _ = _new_model(params, spec, model, meta, device, seed)
    pool = load_negative_pool(data_dir) if spec.training.aux_negatives == "per_epoch" else None
    result = train_run(net, data, spec.training, seed, params.runtime.eval_batch_size,
                       label=f"{dataset}/{model} snapshots", eval_every=training.eval_every,
                       snapshot_fractions=fractions, precision=params.runtime.precision,
                       negatives=NegativeSampler(pool, seed) if pool is not None else None)
    with atomic_dir(out_dir) as tmp:
        files = []
        for k, fraction in enumerate(fractions):
            step, state = result.snapshots[fraction]
            files.append({"fraction": fraction, "step": step, "file": f"snapshot{k}.pt"})
            torch.save(state, tmp / f"snapshot{k}.pt")
        torch.save(result.state_dict, tmp / "best.pt")
        write_json(tmp / "snapshots.json", {"dataset": dataset, "model": model, "seed": seed,
                                            "best_epoch": result.best["epoch"], "best_step": result.best["step"],
                                            "max_len": training.max_len, "snapshots": files})
    log.info("snapshots[%s/%s]: %d snapshots at steps %s", dataset, model, len(files),
             [f["step"] for f in files])
