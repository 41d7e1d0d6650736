"""The train and sweep stages: every seed of one (dataset, model) pair, as one folder.

Folder layout (``results/table2/<dataset>/<model>/``, and for Table III's sweep
``results/table3/<dataset>/<model>/len<L>/``):
- ``runs.csv``: one row per seed with the best epoch (by validation AUC) and its
  validation and test metrics;
- ``history.csv``: per seed and epoch, LogLoss/AUC/gAUC of train, validation and test;
- ``checkpoints/seed<k>.pt``: the weights of each seed's best epoch;
- ``run.json``: the hyperparameters, seeds and device that produced them.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from pathlib import Path

import pandas as pd
import torch

from sarn.atomic import atomic_dir, write_json
from sarn.data.prepare import load_meta, load_split
from sarn.data.samples import SPLITS
from sarn.errors import ConfigError
from sarn.models import CTRModel, build_model, model_class
from sarn.params import CompileMode, Params, RuntimeSpec
from sarn.train.batching import DeviceSamples
from sarn.train.loop import compile_model, train_run

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


def _prepare(params: Params, data_dir: Path, max_len: int | None = None
             ) -> tuple[torch.device, dict, dict[str, DeviceSamples]]:
    """Device, vocabulary metadata and the three splits on the device."""
    device = configure_torch(params.runtime)
    meta = load_meta(data_dir)
    data = {split: DeviceSamples(load_split(data_dir, split), device, max_len) for split in SPLITS}
    return device, meta, data


def _new_model(params: Params, model: str, meta: dict, device: torch.device, seed: int
               ) -> tuple[CTRModel, CompileMode]:
    """The model of run ``model`` initialised under ``seed`` and the torch.compile mode it
    runs in (``runtime.compile`` where the model and the device allow it)."""
    torch.manual_seed(seed)
    spec = params.models[model]
    net = build_model(spec.model, meta["n_items"], meta["n_categories"], spec.architecture,
                      meta["n_contexts"]).to(device)
    asked = params.runtime.compile
    mode = compile_model(net, asked, device)
    if mode != asked and seed == params.experiment.seed:  # said once per stage
        log.warning("runtime.compile is %s, but %s runs %s", asked, model,
                    "eagerly: its recurrence does not compile as one graph" if not net.compilable
                    else "in torch.compile's default mode: CUDA graphs need CUDA")
    return net, mode


def train_model(params: Params, dataset: str, model: str, data_dir: Path, out_dir: Path,
                n_seeds: int, max_len: int | None = None) -> None:
    """Train ``model`` on ``dataset`` once per seed and write the results folder.

    ``max_len`` cuts histories shorter than the stored ones (Table III's sweep).
    """
    device, meta, data = _prepare(params, data_dir, max_len)
    spec = params.models[model]
    seeds = [params.experiment.seed + k for k in range(n_seeds)]
    log.info("train[%s/%s]: %d train samples on %s, %d seeds, histories up to %s",
             dataset, model, data["train"].size, device, n_seeds, max_len or "the stored length")
    runs, histories = [], []
    with atomic_dir(out_dir) as tmp:
        (tmp / "checkpoints").mkdir()
        for seed in seeds:
            net, compiled = _new_model(params, model, meta, device, seed)
            result = train_run(net, data, spec.training, seed, params.runtime.eval_batch_size,
                               label=f"{dataset}/{model} seed {seed}", precision=params.runtime.precision)
            torch.save(result.state_dict, tmp / "checkpoints" / f"seed{seed}.pt")
            best = result.best
            if meta["labeled"]:  # negatives were dropped from training: only the AUC is comparable
                best = {k: (v if k.endswith("_auc") else None) for k, v in best.items()}
            runs.append({"seed": seed, "best_epoch": result.best_epoch, **best})
            histories += [{"seed": seed, **row} for row in result.history]
            log.info("train[%s/%s] seed %d: best epoch %d, test AUC %.4f, LogLoss %.4f",
                     dataset, model, seed, result.best_epoch, result.best["test_auc"],
                     result.best["test_logloss"])
        pd.DataFrame(runs).to_csv(tmp / "runs.csv", index=False, lineterminator="\n")
        pd.DataFrame(histories).to_csv(tmp / "history.csv", index=False, lineterminator="\n")
        write_json(tmp / "run.json", {
            "dataset": dataset,
            "model": model,
            "class": spec.model,
            "notes": inspect.getdoc(sys.modules[model_class(spec.model).__module__]) or "",
            "seeds": seeds,
            "max_len": max_len,
            "architecture": spec.architecture,
            "training": spec.training.model_dump(),
            "device": device.type,
            "precision": params.runtime.precision if device.type == "cuda" else "fp32",
            "compile": compiled,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "selection": "epoch with the best validation AUC; test metrics reported at that epoch",
            "metrics": ["auc"] if meta["labeled"] else ["auc", "logloss", "gauc"],
        })


def train_snapshots(params: Params, dataset: str, model: str, data_dir: Path, out_dir: Path) -> None:
    """Train the first seed of ``model`` once more, keeping its weights at the fractions of
    training listed in ``figures.snapshots`` (Fig. 5a) and at its best epoch."""
    device, meta, data = _prepare(params, data_dir)
    seed = params.experiment.seed
    fractions = params.figures.snapshots
    net, _ = _new_model(params, model, meta, device, seed)
    result = train_run(net, data, params.models[model].training, seed, params.runtime.eval_batch_size,
                       label=f"{dataset}/{model} snapshots", snapshot_fractions=fractions,
                       precision=params.runtime.precision)
    with atomic_dir(out_dir) as tmp:
        files = []
        for k, fraction in enumerate(fractions):
            step, state = result.snapshots[fraction]
            files.append({"fraction": fraction, "step": step, "file": f"snapshot{k}.pt"})
            torch.save(state, tmp / f"snapshot{k}.pt")
        torch.save(result.state_dict, tmp / "best.pt")
        write_json(tmp / "snapshots.json", {"dataset": dataset, "model": model, "seed": seed,
                                            "best_epoch": result.best_epoch, "snapshots": files})
    log.info("snapshots[%s/%s]: %d snapshots at steps %s", dataset, model, len(files),
             [f["step"] for f in files])
