"""Seeds of a stage trained at once, each in a process of its own (``runtime.parallel_seeds``), and
the cores they may use.

The processes are started with ``spawn``: a fork of a process whose torch has started threads can
inherit locks that no thread will release. Each process sets torch up as the stage's would, loads
the data once, then trains the seeds the stage's process hands it, one at a time, and sends each
seed's results back as ``torch.save`` bytes: by value, so that no shared memory is needed (a
container's /dev/shm is often 64 MB), and reloaded onto the device they were saved from, so that the
stage's process writes the very files a seed trained alone gives. The stage's process writes its
folder as before, which therefore still appears at once (:func:`sarn.atomic.atomic_dir`).

A seed that fails stops the stage: the other processes are ended and the error names the seed (a
process that dies without a word, as the out-of-memory killer leaves it, by its exit status). On
Linux a seed's process dies with the stage's process, ``kill -9`` included, so that none trains on
for nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Protocol, TypeVar

import torch

from sarn.errors import TrainingError
from sarn.logs import configure_logging
from sarn.params import RuntimeSpec

log = logging.getLogger(__name__)

Result = TypeVar("Result")
Result_co = TypeVar("Result_co", covariant=True)


class SeedJob(Protocol[Result_co]):
    """What a seed's process does, sent to it whole (so picklable): ``start`` sets it up and
    returns the function that trains one seed; ``label`` names a seed in messages."""

    def label(self, seed: int) -> str: ...

    def start(self) -> Callable[[int], Result_co]: ...


@dataclass(frozen=True)
class CpuUse:
    """How a stage uses the CPU: ``processes`` training at once with ``threads`` threads each, on
    the ``cores`` it may use; ``oversubscribed`` when they ask for more threads than that."""

    threads: int
    processes: int
    cores: int
    oversubscribed: bool


def available_cores() -> tuple[int, str]:
    """The cores this process may use and what says so: its CPU affinity (a SLURM job's share, a
    ``taskset``), or fewer where ``OMP_NUM_THREADS`` says so (Snakemake sets it to a job's
    ``threads:``, less than the rule asks where ``--cores`` is smaller)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    given = os.environ.get("OMP_NUM_THREADS", "")
    if given.isdigit() and 0 < int(given) < cores:
        return int(given), f"OMP_NUM_THREADS={given}, which Snakemake sets to a job's share of --cores"
    return cores, "this process's CPU affinity"


def cpu_use(runtime: RuntimeSpec, n_seeds: int) -> CpuUse:
    """How a stage of ``n_seeds`` seeds uses the CPU; an oversubscription is said once in the log."""
    processes, wanted = runtime.processes(n_seeds), runtime.stage_threads(n_seeds)
    cores, source = available_cores()
    if wanted > cores:
        _warn_once(f"runtime.threads {runtime.threads} x {processes} seeds at once = {wanted} threads, more "
                   f"than the {cores} core(s) this job may use ({source}): each thread waits for descheduled "
                   "ones, which can make training many times slower; lower runtime.threads or "
                   "runtime.parallel_seeds, or give the job more cores")
    return CpuUse(runtime.threads, processes, cores, wanted > cores)


@functools.cache
def _warn_once(message: str) -> None:
    log.warning(message)


def in_processes(job: SeedJob[Result], seeds: list[int], processes: int) -> Iterator[tuple[int, Result]]:
    """Every seed of ``seeds`` trained by ``job`` in ``processes`` processes at once; each seed's
    result as it comes, with the seed."""
    context = multiprocessing.get_context("spawn")
    queue = list(seeds)
    started: list[BaseProcess] = []
    busy: dict[Connection, tuple[BaseProcess, int]] = {}
    completed = False
    try:
        for _ in range(min(processes, len(seeds))):
            ours, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(job, os.getpid(), theirs), name="sarn seed")
            process.start()
            started.append(process)
            theirs.close()
            busy[ours] = (process, _hand(ours, queue))
        while busy:
            ready = wait([*busy, *(process.sentinel for process, _ in busy.values())])
            for conn, (process, seed) in list(busy.items()):
                if conn not in ready and process.sentinel not in ready:
                    continue
                result = _receive(conn, process, job.label(seed))
                following = _hand(conn, queue)
                if following is None:
                    del busy[conn]
                else:
                    busy[conn] = (process, following)
                yield seed, result
        completed = True
    finally:
        for conn in busy:
            conn.close()
        _end(started, let_exit=completed)


def _hand(conn: Connection, queue: list[int]) -> int | None:
    """Send a seed's process the next seed of ``queue`` (None: stop) and return it."""
    seed = queue.pop(0) if queue else None
    conn.send(seed)
    return seed


def _receive(conn: Connection, process: BaseProcess, label: str) -> object:
    """A seed's results from its process, or the error that names what became of it."""
    try:
        kind, payload = conn.recv()
    except EOFError:  # the process ended without a word
        process.join()
        code = process.exitcode
        how = (f"killed by {signal.Signals(-code).name}" + (" (the out-of-memory killer's signal)"
                                                            if code == -signal.SIGKILL else "")
               if code is not None and code < 0 else f"exit status {code}")
        raise TrainingError(f"{label}: its process ended ({how})") from None
    if kind == "failed":
        raise TrainingError(f"{label} failed: {payload}")
    return torch.load(io.BytesIO(payload), weights_only=False)  # our own bytes, from our own process


def _end(processes: list[BaseProcess], let_exit: bool) -> None:
    """Reap the processes. With ``let_exit`` (every seed done, each process told to stop), first
    give each time to exit on its own: a process terminated while it exits skips its cleanup, and
    the semaphore tqdm made in it is then reported as leaked. Otherwise (a seed failed, or the stage
    was interrupted) stop at once those still running."""
    if let_exit:
        for process in processes:
            process.join(timeout=10)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()


def _serve(job: SeedJob[Result], stage_pid: int, conn: Connection) -> None:
    """A seed's process: train each seed the stage's process sends (None: stop) and send its results
    back; a failure is sent instead, with the seed it happened to."""
    _die_with(stage_pid)
    configure_logging()
    seed = conn.recv()
    try:
        train = job.start()
        while seed is not None:
            buffer = io.BytesIO()
            torch.save(train(seed), buffer)
            conn.send(("done", buffer.getvalue()))
            seed = conn.recv()
    except BaseException as err:
        log.exception("%s failed", job.label(seed))
        with contextlib.suppress(OSError):  # the stage's process may be gone already
            conn.send(("failed", f"{type(err).__name__}: {err}"))


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with(stage_pid: int) -> None:
    """On Linux, have the kernel kill this process when the stage's process dies."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != stage_pid:  # it died before the line above
        os._exit(1)
