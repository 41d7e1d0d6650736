"""The bill of params.yaml's selection: every run folder the stages would train (Table II's
``experiment``, Table III's ``table3`` sweep, the ``protocol_effects`` runs and the figures'
snapshot run), its seeds, optimizer steps and evaluations, and the hours they take here, from a
probe of each run (:mod:`sarn.plan.probe`), and on each GPU whose step times ``gpu_steps.yaml``
records.

The counts follow the training loop's rules (:mod:`sarn.train.schedule`). The hours count the
training steps and evaluations only (not loading the data, nor redrawing history negatives every
epoch), one seed after another; seeds trained at once (``runtime.parallel_seeds``) divide them by
at most that many, where the cores are free for it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
import yaml

from sarn.params import ModelSpec, Params, apply_override, effects_datasets
from sarn.plan.probe import Probe, probe
from sarn.plan.shapes import DatasetShape, dataset_shape
from sarn.train.runner import configure_torch
from sarn.train.schedule import evaluated_samples, evaluations, steps_per_epoch, trained_samples
from sarn.train.seeds import available_cores


@dataclass(frozen=True)
class PlannedRun:
    """One run folder a stage trains: ``seeds`` runs of ``spec`` on ``dataset``, histories cut to
    ``max_len``."""

    stage: str
    dataset: str
    name: str  # the params.yaml run
    variant: str  # Table III's length or the protocol-effects choice, "" for the others
    spec: ModelSpec
    max_len: int
    seeds: int

    @property
    def label(self) -> str:
        """The run as the plan names it: ``din``, ``din (length 10)``, ``din (split_90_10)``."""
        return f"{self.name} ({self.variant})" if self.variant else self.name


def planned_runs(params: Params) -> list[PlannedRun]:
    """Every run folder of the selection, in the order the stages are listed in dvc.yaml."""
    max_len = {name: dataset.training.max_len for name, dataset in params.datasets.items()}
    experiment, sweep, effects, figures = (params.experiment, params.table3, params.protocol_effects,
                                           params.figures)
    return [
        *(PlannedRun("train", d, m, "", params.models[m], max_len[d], experiment.n_seeds)
          for d in experiment.datasets for m in experiment.models),
        *(PlannedRun("sweep", d, m, f"length {length}", params.models[m], length, sweep.n_seeds)
          for d in sweep.datasets for m in sweep.models for length in sweep.lengths),
        *(PlannedRun("effects", d, m, name, apply_override(params.models[m], choice), max_len[d],
                     effects.n_seeds)
          for d in effects_datasets(params) for m, name, choice in effects.runs()),
        PlannedRun("snapshots", figures.dataset, figures.model, "", params.models[figures.model],
                   max_len[figures.dataset], 1),
    ]


# Training settings that set values or counts, not what a step or an evaluation does.
_NOT_A_STEPS_COST = {"lr", "lr_schedule", "epochs", "train_on"}


def probe_key(run: PlannedRun) -> tuple[str, str, int]:
    """Runs probed once between them: the same dataset, history length and settings but those of
    :data:`_NOT_A_STEPS_COST`. A protocol-effects choice that changes anything else is probed as
    itself: TensorFlow's GRU cell, a learned index 0 or shuffled batches each change a step's cost."""
    return run.dataset, run.spec.model_dump_json(exclude={"training": _NOT_A_STEPS_COST}), run.max_len


@dataclass(frozen=True)
class Work:
    """What one seed of a run does: its optimizer steps, and its evaluations of ``evaluated`` samples
    each, every one after measuring the statistics of batch norm and Dice on ``measured`` samples."""

    steps: int
    evaluations: int
    evaluated: int
    measured: int

    def seconds(self, timing: Probe) -> tuple[float, float]:
        """Seconds at the probe's rates, and how many of them its uncertainty covers."""
        training = self.steps * timing.step.seconds
        predicting = self.evaluations * self.evaluated * timing.evaluated_sample.seconds
        measuring = self.evaluations * self.measured * timing.statistics_sample.seconds
        uncertain = (training * timing.step.spread + predicting * timing.evaluated_sample.spread
                     + measuring * timing.statistics_sample.spread)
        return training + predicting + measuring, uncertain

    def evaluating_seconds(self, timing: Probe) -> float:
        """The part of :meth:`seconds` spent on evaluations, their statistics' measurement included."""
        return self.evaluations * (self.evaluated * timing.evaluated_sample.seconds
                                   + self.measured * timing.statistics_sample.seconds)


def work(params: Params, run: PlannedRun, shape: DatasetShape) -> Work:
    training, dataset = run.spec.training, params.datasets[run.dataset].training
    trained = trained_samples(shape.sizes, training.train_on)
    steps = steps_per_epoch(trained, training.batch_size)
    return Work(training.epochs * steps, evaluations(training.epochs, steps, dataset.eval_every(training.batch_size)),
                evaluated_samples(shape.sizes, training.train_on), min(dataset.statistics_samples, trained))


@cache
def gpu_steps() -> dict[str, dict]:
    """The GPUs whose step times the project measured: name → ``measured`` (how) and ``ms_a_step`` by run."""
    return yaml.safe_load(Path(__file__).with_name("gpu_steps.yaml").read_text(encoding="utf-8"))


def duration(seconds: float) -> str:
    """``seconds`` in the unit that reads best: seconds, minutes or hours."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def print_bill(params: Params, processed: Path, probe_steps: int) -> None:
    """Print the bill: the datasets' shapes, a line a run folder, the totals, then each GPU's estimate.
    ``probe_steps`` 0 counts without timing."""
    runs = planned_runs(params)
    shapes = {name: dataset_shape(name, params.datasets[name], processed)
              for name in dict.fromkeys(run.dataset for run in runs)}
    works = [work(params, run, shapes[run.dataset]) for run in runs]
    runtime = params.runtime
    device = configure_torch(runtime)
    cores, _ = available_cores()
    print("# The bill of params.yaml's selection: experiment, table3, protocol_effects and the figures' "
          "snapshot run")
    print(f"# here: {torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}, runtime.threads "
          f"{runtime.threads}, {cores} cores this process may use, load average {os.getloadavg()[0]:.1f}, "
          f"torch {torch.__version__}")
    for name, shape in shapes.items():
        sizes = shape.sizes
        print(f"# {name}: {sizes['train']:,} train, {sizes['valid']:,} valid, {sizes['test']:,} test "
              f"samples, {shape.meta['n_items']:,} items, mean stored history {shape.lengths.mean():.1f} "
              f"(at most {shape.lengths.max()}); {shape.source}")
    timings: dict[tuple[str, str, int], Probe] = {}
    if probe_steps:
        for run in runs:
            key = probe_key(run)
            if key not in timings:
                timings[key] = probe(run.spec, shapes[run.dataset], run.max_len, probe_steps,
                                     runtime.eval_batch_size, device, runtime.precision)
    print(f"\n{'stage':9s} {'dataset':12s} {'run':30s} {'seeds':>5s} {'steps':>12s} {'evaluations':>11s}"
          + (f" {'ms a step':>12s} {'evaluating':>10s} {'time':>9s}" if probe_steps else ""))
    total = spread = evaluating = wall = 0.0
    for run, done in zip(runs, works, strict=True):
        cost = ""
        if probe_steps:
            timing = timings[probe_key(run)]
            seconds, uncertain = done.seconds(timing)
            share = done.evaluating_seconds(timing) / seconds
            total, spread = total + run.seeds * seconds, spread + run.seeds * uncertain
            evaluating += run.seeds * seconds * share
            wall += math.ceil(run.seeds / runtime.processes(run.seeds)) * seconds
            cost = (f" {1000 * timing.step.seconds:7.1f} ±{100 * timing.step.spread:2.0f}%"
                    f" {100 * share:9.0f}% {duration(run.seeds * seconds):>9s}")
        print(f"{run.stage:9s} {run.dataset:12s} {run.label:30s} "
              f"{run.seeds:5d} {run.seeds * done.steps:12,d} {run.seeds * done.evaluations:11,d}{cost}")
    seeds = sum(run.seeds for run in runs)
    steps = sum(run.seeds * done.steps for run, done in zip(runs, works, strict=True))
    evaluated = sum(run.seeds * done.evaluations for run, done in zip(runs, works, strict=True))
    print(f"\ntotal: {len(runs)} run folders, {seeds:,} runs (seeds), {steps:,} optimizer steps, "
          f"{evaluated:,} evaluations")
    if probe_steps:
        print(f"here: {duration(total)} ± {100 * spread / total:.0f}% one seed after another, "
              f"{100 * evaluating / total:.0f}% of it evaluating (± the probe's uncertainty: how far its "
              "rounds disagreed; training steps and evaluations only)")
        if runtime.parallel_seeds > 1:
            print(f"  with runtime.parallel_seeds {runtime.parallel_seeds}: {duration(wall)} at best, where "
                  f"{runtime.parallel_seeds} x {runtime.threads} threads find free cores (python -m "
                  "benchmarks.training.threads measures how close this machine comes)")
        if runtime.compile != "eager":
            print(f"  the probe runs eagerly: runtime.compile {runtime.compile} changes a step's time "
                  "(python -m benchmarks.training.electronics_epoch --compile measures it)")
    _print_gpus(runs, works)


def _print_gpus(runs: list[PlannedRun], works: list[Work]) -> None:
    """Each recorded GPU's time of training steps for the runs it has a figure of; the others named."""
    for gpu, entry in gpu_steps().items():
        known = {name: ms for name, ms in entry["ms_a_step"].items() if ms is not None}
        timed = [(run, done) for run, done in zip(runs, works, strict=True) if run.name in known]
        seconds = sum(run.seeds * done.steps * known[run.name] for run, done in timed) / 1000
        missing = sorted({run.name for run in runs} - set(known))
        print(f"\non {gpu}: {', '.join(f'{name} {ms} ms' for name, ms in known.items())} a step")
        print(f"  measured: {' '.join(entry['measured'].split())}")
        names = ", ".join(sorted({run.name for run, _ in timed})) or "none"
        print(f"  {duration(seconds)} of training steps for the {sum(run.seeds for run, _ in timed):,} "
              f"runs of {names} (a step taken to cost the same on every dataset and length; evaluations not "
              "counted)")
        if missing:
            print(f"  not estimated: {sum(run.seeds for run in runs if run.name in missing):,} runs of "
                  f"{', '.join(missing)} (no step time measured on this GPU)")
