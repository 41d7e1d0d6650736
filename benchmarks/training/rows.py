"""What the training benchmark's parts share: the models a row can train, running a row in
its own process, timing it after a warm-up, its peak memory, and the command line.

A row is a function ``row(params, ..., device=, precision=) -> dict`` whose other arguments
are JSON values; :func:`run_row` runs it. Every row trains through the pipeline's own step
(:func:`pipeline_trainer`) unless it is a peer with its own. On the CPU each row runs in its
own process (``python -m benchmarks.training.rows``, the job on stdin), so that its peak
resident memory (``ru_maxrss``) is its own, under the allocator settings ``python -m sarn``
gives training unless the row says otherwise. On CUDA all rows share one process and the
peak is ``torch.cuda.max_memory_allocated``.

A part is one question: a module of its own with a :class:`Part` (its options, how it
prints its table) whose ``main`` calls :func:`run_alone`, and an entry of
``benchmarks.train_speed.PARTS``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks.straightforward_sarn import MaterialisedSARN, StraightforwardSARN
from sarn import ALLOCATOR_ENV
from sarn.models import MODELS, build_model
from sarn.params import Params, Precision, load
from sarn.train.batching import BatchIndex, DeviceSamples
from sarn.train.loop import make_optimizer, train_epoch
from sarn.train.runner import configure_torch

ROOT = Path(__file__).resolve().parents[2]

# The benchmark's own rows beside the models, each with the params.yaml run whose settings it takes.
REFERENCE_RUNS = {"sarn_straightforward": "sarn", "sarn_materialised": "sarn", "deepctr_din": "din"}
ROW_NAMES = [*MODELS, *REFERENCE_RUNS]

Trainer = Callable[[list[BatchIndex]], None]  # trains a model on these batches, in order


def run_name(name: str) -> str:
    """The params.yaml run whose settings a benchmark row uses (its references take their model's)."""
    return REFERENCE_RUNS.get(name, name)


def build_row_model(params: Params, name: str, n_items: int, n_categories: int, device: torch.device
                    ) -> torch.nn.Module:
    """The model of row ``name``: a registry model, or one of the two SARN references."""
    spec = params.models[run_name(name)]
    if name == "sarn_materialised":
        return MaterialisedSARN(n_items, n_categories, **spec.architecture).to(device)
    net = build_model(spec.model, n_items, n_categories, spec.architecture)
    return (StraightforwardSARN(net) if name == "sarn_straightforward" else net).to(device)


def synchronize(device: torch.device) -> None:
    """Wait for the device, so that a time covers the work and not only its launching."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_mb(device: torch.device) -> float:
    """The peak memory so far: this process's resident set on the CPU, allocated memory on CUDA."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pipeline_trainer(params: Params, name: str, net: torch.nn.Module, samples: DeviceSamples,
                     precision: Precision) -> Trainer:
    """Training through the pipeline's own step (``sarn.train.loop.train_epoch``: autocast,
    fused Adam, no read-back inside the loop), with row ``name``'s settings."""
    spec = params.models[run_name(name)].training
    optimizer = make_optimizer(net, spec)
    return lambda batches: train_epoch(net, optimizer, samples, batches, spec, name, 1, precision=precision)


def time_training(train: Trainer, batches: list[BatchIndex], device: torch.device,
                  timed: AbstractContextManager | None = None) -> tuple[float, float]:
    """Seconds of a warm-up, one step on a batch of each shape (size, width) among
    ``batches``, where a compiled model compiles all it needs; then seconds to train on
    all of ``batches``, inside ``timed`` (a profiler, say) if given."""
    shapes: dict[tuple[int, int], BatchIndex] = {}
    for part in batches:
        shapes.setdefault((len(part.index), part.width), part)
    start = time.perf_counter()
    train(list(shapes.values()))
    synchronize(device)
    warm_up = time.perf_counter() - start
    with timed or nullcontext():
        start = time.perf_counter()
        train(batches)
        synchronize(device)
        seconds = time.perf_counter() - start
    return warm_up, seconds


@dataclass(frozen=True)
class Setting:
    """What every row of an invocation runs under; a row's own process gets it whole."""

    params: Params
    device: torch.device
    precision: Precision
    nondeterministic: bool


def set_up(params: Params, device: str, precision: Precision, nondeterministic: bool) -> Setting:
    """Torch set up as the pipeline sets it (threads, determinism), on ``device``."""
    runtime = params.runtime.model_copy(update={"device": device, "precision": precision})
    setting = Setting(params, configure_torch(runtime), precision, nondeterministic)
    if nondeterministic:
        torch.use_deterministic_algorithms(False)
    return setting


def run_row(setting: Setting, row: Callable[..., dict], /, *, allocator: bool = True, **arguments: Any
            ) -> dict | None:
    """``row(params, **arguments, device=, precision=)``: in this process on CUDA, in a child
    process on the CPU (its own peak memory, with ``python -m sarn``'s allocator settings
    unless ``allocator`` is false). A row that fails is said on stderr and gives None, so
    that the other rows still run."""
    if setting.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        try:  # a failing row (out of memory, a compiler error) must not end the run
            return row(setting.params, device=setting.device, precision=setting.precision, **arguments)
        except Exception as err:  # noqa: BLE001
            print(f"{row.__name__} {arguments} failed: {type(err).__name__}: {str(err)[:1500]}",
                  file=sys.stderr)
            return None
    # The row by its module's importable name: __main__ when a part runs alone is not the child's.
    job = {"row": f"{sys.modules[row.__module__].__spec__.name}:{row.__qualname__}", "arguments": arguments,
           "params": setting.params.model_dump(mode="json"), "precision": setting.precision,
           "nondeterministic": setting.nondeterministic}
    inherited = {k: v for k, v in os.environ.items() if allocator or k not in ALLOCATOR_ENV}
    env = {**ALLOCATOR_ENV, **inherited} if allocator else inherited
    proc = subprocess.run([sys.executable, "-m", __name__], input=json.dumps(job), capture_output=True,
                          text=True, cwd=ROOT, check=False, env=env)
    if proc.returncode != 0:
        print(f"{row.__name__} {arguments} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _run_job(job: dict) -> None:
    """A child process's row (see :func:`run_row`): its result is the last line it prints."""
    module, name = job["row"].split(":")
    row = getattr(importlib.import_module(module), name)
    setting = set_up(Params.model_validate(job["params"]), "cpu", job["precision"], job["nondeterministic"])
    result = row(setting.params, device=setting.device, precision=setting.precision, **job["arguments"])
    print(json.dumps(result))


@dataclass(frozen=True)
class Option:
    """A command-line option as ``argparse`` takes it; parts sharing one list the same Option."""

    flag: str
    settings: dict[str, Any]


def option(flag: str, **settings: Any) -> Option:
    """An Option written as ``parser.add_argument`` is called."""
    return Option(flag, settings)


MODELS_OPTION = option("--models", nargs="+", default=ROW_NAMES, choices=ROW_NAMES, metavar="MODEL",
                       help=f"rows to run, among {', '.join(ROW_NAMES)} (all by default)")
TURNS_OPTION = option("--turns", type=int, default=2, help="turns of part 6's and part 7's rows (the best counts)")


@dataclass(frozen=True)
class Part:
    """One question of the benchmark: its number among ``train_speed``'s parts, its options,
    how it prints its table, and what it says of arguments that argparse accepts but it
    cannot run with (None if it can), before any part runs rather than after the others' minutes."""

    number: int
    options: tuple[Option, ...]
    run: Callable[[Setting, argparse.Namespace], None]
    refusal: Callable[[argparse.Namespace], str | None] | None = None


def parser_for(description: str, parts: Sequence[Part]) -> argparse.ArgumentParser:
    """The options every part takes, then each part's own, each option once."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32")
    parser.add_argument("--nondeterministic", action="store_true",
                        help="switch deterministic algorithms off, to measure what determinism costs")
    for flag, settings in {o.flag: o.settings for part in parts for o in part.options}.items():
        parser.add_argument(flag, **settings)
    return parser


def refuse_bad_arguments(parser: argparse.ArgumentParser, parts: Sequence[Part], args: argparse.Namespace
                         ) -> None:
    """Exit with the first part's refusal of ``args``, if any, before anything runs."""
    for part in parts:
        refusal = part.refusal and part.refusal(args)
        if refusal:
            parser.error(refusal)


def set_up_from(args: argparse.Namespace) -> Setting:
    """The setting the arguments ask for, with the repository's params.yaml."""
    return set_up(load(ROOT / "params.yaml"), args.device, args.precision, args.nondeterministic)


def run_parts(setting: Setting, parts: Sequence[Part], args: argparse.Namespace) -> None:
    """The machine, then each part's table."""
    on_cuda = setting.device.type == "cuda"
    where = torch.cuda.get_device_name() if on_cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"# {where}; torch {torch.__version__}; precision {setting.precision if on_cuda else 'fp32'}")
    for part in parts:
        part.run(setting, args)


def run_alone(part: Part, description: str, argv: list[str] | None = None) -> None:
    """One part alone, as ``python -m benchmarks.training.<its module>``."""
    parser = parser_for(description, [part])
    args = parser.parse_args(argv)
    refuse_bad_arguments(parser, [part], args)
    run_parts(set_up_from(args), [part], args)


if __name__ == "__main__":
    _run_job(json.load(sys.stdin))
