"""Part 6: how many threads a training process should use, and how many seeds should train at once.

    python -m benchmarks.training.threads [--thread-steps 100] [--thread-seconds 20] [--turns 2]
                                          [--models din sarn]

Training steps a second of DIN and SARN on two kinds of batches: the embedded default's
(batch 128, short histories, small tables) and part 3's (Electronics' size and lengths:
tables of 63,001 items, whose dense Adam update every step is the biggest array work), with
the processes' thread count (``runtime.threads``) and the number of processes training at
once (``runtime.parallel_seeds``) in the combinations :func:`combinations` lists, first as the
machine is (its load average is printed: on a shared machine "idle" is only this benchmark's
side of it), then beside a process that keeps one core busy (what another job on the same
machine does). Processes that train at once start their timed steps together; a row's rate is
the sum of theirs. The combinations take turns, ``--turns`` times; each keeps its best."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import torch

from benchmarks.training.rows import (
    MODELS_OPTION,
    TURNS_OPTION,
    Part,
    Setting,
    build_row_model,
    option,
    run_alone,
    run_row,
)
from benchmarks.training.samples import DATA, cached_samples, load_cached
from sarn.params import Params, Precision
from sarn.train.batching import DeviceSamples
from sarn.train.loop import make_optimizer, train_step

THREAD_MODELS = ("din", "sarn")  # the rows of --models this part runs
WARM_UP_STEPS = 3


def _wait_for_go(barrier: Path) -> None:
    """Say this process is ready and wait until every process of the row is."""
    (barrier / f"ready-{os.getpid()}").touch()
    while not (barrier / "go").exists():
        time.sleep(0.005)


def steps_row(params: Params, samples_file: str, model: str, steps: int, seconds: float, barrier: str,
              device: torch.device, precision: Precision) -> dict:
    """Training steps of ``model`` through the pipeline's step, on the batches of an epoch of the
    samples in ``samples_file`` (:func:`~benchmarks.training.samples.cached_samples`) as the pipeline batches them, from the moment every
    process of the row is ready: ``steps`` of them, or as many as ``seconds`` allow."""
    arrays, meta = load_cached(samples_file)
    samples = DeviceSamples(arrays, device)
    spec = params.models[model].training
    batches = samples.training_batches(spec.batch_size, spec.length_sort_chunk,
                                       torch.Generator().manual_seed(0), spec.batch_order)
    torch.manual_seed(0)
    net = build_row_model(params, model, meta["n_items"], meta["n_categories"], device).train()
    optimizer = make_optimizer(net, spec)
    for part in batches[:WARM_UP_STEPS]:
        train_step(net, optimizer, samples.batch(part), spec, precision)
    _wait_for_go(Path(barrier))
    start = time.perf_counter()
    done = 0
    for part in batches[WARM_UP_STEPS:WARM_UP_STEPS + steps]:
        train_step(net, optimizer, samples.batch(part), spec, precision)
        done += 1
        if time.perf_counter() - start > seconds:
            break
    return {"steps_per_s": done / (time.perf_counter() - start), "threads": torch.get_num_threads()}


@contextmanager
def busy_core() -> Iterator[None]:
    """A process that keeps one core busy while the block runs (and stops if this process dies)."""
    spin = f"import os\nwhile os.getppid() == {os.getpid()}: pass"
    spinner = subprocess.Popen([sys.executable, "-c", spin])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def together(setting: Setting, processes: int, threads: int, **arguments: object) -> float | None:
    """Steps a second of ``processes`` processes of ``threads`` threads each training at once (the
    sum of their rates), or None if one failed."""
    runtime = setting.params.runtime.model_copy(update={"threads": threads})
    each = Setting(setting.params.model_copy(update={"runtime": runtime}), setting.device, setting.precision,
                   setting.nondeterministic)
    with tempfile.TemporaryDirectory() as barrier, ThreadPoolExecutor(processes) as pool:
        rows = [pool.submit(run_row, each, steps_row, barrier=barrier, **arguments)
                for _ in range(processes)]
        while len(list(Path(barrier).glob("ready-*"))) < processes and not any(r.done() for r in rows):
            time.sleep(0.01)
        (Path(barrier) / "go").touch()
        results = [r.result() for r in rows]
    if any(r is None or r["threads"] != threads for r in results):
        return None
    return sum(r["steps_per_s"] for r in results)


def combinations(cores: int) -> list[tuple[int, int]]:
    """(processes, threads) pairs, thread and process counts in powers of two: one process at each
    thread count up to the cores; one-thread processes up to the cores, and one more than the
    cores; as many processes of each thread count as fill the cores; two processes of as many
    threads as there are cores (threads oversubscribed by the processes themselves)."""
    powers = [2**k for k in range(cores.bit_length()) if 2**k <= cores]
    pairs = [(1, t) for t in powers] + [(p, 1) for p in powers[1:]] + [(cores + 1, 1)]
    pairs += [(cores // t, t) for t in powers if cores // t > 1] + [(2, cores)]
    return list(dict.fromkeys(pairs))


def threads_and_seeds(setting: Setting, args: argparse.Namespace) -> None:
    """Every combination, idle and beside a busy core, for every data and model, in ``--turns`` turns."""
    cores = len(os.sched_getaffinity(0))
    pairs = combinations(cores)
    models = [m for m in THREAD_MODELS if m in args.models]
    print(f"\n## 6. Threads and seeds at once: {cores} cores this process may use, load average "
          f"{os.getloadavg()[0]:.1f} at the start; {args.thread_steps} timed steps a process (or "
          f"{args.thread_seconds:.0f} s), best of {args.turns} turns")
    files = {data: str(cached_samples(setting.params, data)) for data in DATA}
    best: dict[tuple, float] = {}
    for _ in range(args.turns):
        for busy in (False, True):
            context: AbstractContextManager = busy_core() if busy else nullcontext()
            with context:
                for data in DATA:
                    for model in models:
                        for processes, threads in pairs:
                            rate = together(setting, processes, threads, samples_file=files[data],
                                            model=model, steps=args.thread_steps, seconds=args.thread_seconds)
                            key = (busy, data, model, processes, threads)
                            if rate is not None:
                                best[key] = max(best.get(key, 0.0), rate)
    print(f"  load average {os.getloadavg()[0]:.1f} at the end")
    print("  steps/s of all the processes together; x: against one process of one thread on the same row")
    for busy in (False, True):
        for data in DATA:
            for model in models:
                base = best.get((busy, data, model, 1, 1))
                cells = [f"{p}x{t}: {rate:6.1f} ({rate / base:4.2f}x)" if base else f"{p}x{t}: {rate:6.1f}"
                         for p, t in pairs if (rate := best.get((busy, data, model, p, t))) is not None]
                print(f"  {'busy core' if busy else 'idle':9s} {data:17s} {model:5s} "
                      f"(processes x threads) " + "  ".join(cells), flush=True)


OPTIONS = (option("--thread-steps", type=int, default=100, help="part 6's timed steps a process, at most"),
           option("--thread-seconds", type=float, default=20.0,
                  help="part 6's processes stop after this many seconds (oversubscribed rows are slow)"),
           TURNS_OPTION,
           MODELS_OPTION)
PART = Part(6, OPTIONS, threads_and_seeds)


def main(argv: list[str] | None = None) -> None:
    run_alone(PART, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
