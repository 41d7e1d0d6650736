"""One driver at a time in a work folder: the project lock.

DVC and Snakemake write the same outputs; run at once on one folder, each rewrites what the
other is reading (DVC once failed with "runs.csv: not found" while Snakemake rebuilt the
folder). Every command that writes outputs therefore takes this lock before it writes anything.

The lock belongs to a *driver*, not to a job, because one driver runs several jobs at once
(Snakemake with ``--cores 8``) and they must share it, while a second driver's first job
must stop at once, naming the running one. The driver of a job is:

- the Snakemake run that started it: the workflow records its own process in ``SARN_DRIVER``
  when it is parsed (workflow/rules/common.smk), and every job inherits it, on a cluster's
  nodes too (the slurm executor exports the environment);
- else the nearest ancestor process that is ``dvc`` or ``snakemake``;
- else none: a command run by hand holds the lock for itself alone.

The record (``.sarn/lock.json``: the driver and the jobs running under it) is read and
rewritten under an ``fcntl.flock`` of ``.sarn/lock``, held only for that moment. The lock is
held while its driver or any of its jobs is alive; a record whose processes have all ended
is taken over (a job that never released it was killed: the log says so).

What it cannot stop: DVC removes a stage's old outputs before it runs the stage's command
(and restores a stage it has run before from its run cache without running any command), so
a DVC run started while another run holds the lock loses the outputs of the first stage it
reruns before that stage's command stops. They are absent, never half-written, and the next
run of either driver rebuilds them. Snakemake asks while it parses the workflow, before it
removes anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shlex
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from sarn.atomic import write_json
from sarn.errors import SarnError

log = logging.getLogger(__name__)

LOCK_DIR = Path(".sarn")
DRIVER_ENV = "SARN_DRIVER"
DRIVERS = ("dvc", "snakemake")


class LockError(SarnError):
    """Another driver, or another command run by hand, is writing in this work folder."""


@dataclass(frozen=True)
class Holder:
    """A process, told apart from a later one that reuses its pid by its start time."""

    pid: int
    host: str
    started: float
    command: str = field(compare=False)

    @classmethod
    def of(cls, proc: psutil.Process) -> Holder:
        command = " ".join(shlex.join(proc.cmdline()).split())  # on one line, for the message
        return cls(proc.pid, socket.gethostname(), round(proc.create_time(), 2), command)

    def alive(self) -> bool:
        """Whether the process still runs (one on another machine is taken to)."""
        if self.host != socket.gethostname():
            return True
        try:
            return round(psutil.Process(self.pid).create_time(), 2) == self.started
        except psutil.NoSuchProcess:
            return False

    def __str__(self) -> str:
        where = "" if self.host == socket.gethostname() else f" on {self.host}"
        return f"pid {self.pid}{where}: {self.command}"


def _is_driver(proc: psutil.Process) -> bool:
    """``dvc ...``, ``snakemake ...``, ``python .../snakemake ...`` or ``python -m dvc ...``."""
    try:
        argv = proc.cmdline()
    except (psutil.AccessDenied, psutil.ZombieProcess, psutil.NoSuchProcess):
        return False
    named = [os.path.basename(arg) for arg in argv[:2]]
    module = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else None
    return any(name in DRIVERS for name in named) or module in DRIVERS


def driver() -> Holder | None:
    """The driver this process runs under (see the module's docstring); None when run by hand."""
    if recorded := os.environ.get(DRIVER_ENV):
        return Holder(**json.loads(recorded))
    return next((Holder.of(proc) for proc in psutil.Process().parents() if _is_driver(proc)), None)


def record_driver() -> None:
    """Make this process (a Snakemake run) the driver of every job it starts, unless it is
    itself one job of a run that already is (a cluster job re-reads the workflow)."""
    os.environ.setdefault(DRIVER_ENV, json.dumps(asdict(Holder.of(psutil.Process()))))


@contextlib.contextmanager
def _mutex(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield


def _read(path: Path) -> tuple[Holder | None, list[Holder]]:
    if not path.is_file():
        return None, []
    record = json.loads(path.read_text(encoding="utf-8"))
    owner = Holder(**record["driver"]) if record["driver"] else None
    return owner, [Holder(**job) for job in record["jobs"]]


def _write(path: Path, owner: Holder | None, jobs: list[Holder]) -> None:
    write_json(path, {"driver": asdict(owner) if owner else None, "jobs": [asdict(job) for job in jobs]})


def _shared(owner: Holder | None, held_by: Holder | None, running: list[Holder]) -> bool:
    """Whether the lock is ``owner``'s already (its jobs share it) rather than free (its driver
    and jobs all ended); raise LockError if another run holds it."""
    if owner is not None and held_by == owner:
        return True
    holder = held_by if held_by is not None and held_by.alive() else next(iter(running), None)
    if holder is not None:
        raise LockError(f"another run holds the project lock ({holder}); wait for it, or stop it")
    return False


def refuse_if_held(root: Path = Path(".")) -> None:
    """Raise LockError if another run holds the lock of ``root``: a Snakemake run asks before it
    builds its job graph, since it removes a job's old outputs before the job could ask."""
    folder = root / LOCK_DIR
    with _mutex(folder):
        held_by, jobs = _read(folder / "lock.json")
        _shared(driver(), held_by, [job for job in jobs if job.alive()])


@contextlib.contextmanager
def project_lock(root: Path = Path(".")) -> Iterator[None]:
    """Hold the lock of the work folder ``root`` for this process, under its driver, while the
    block runs; raise LockError at once if another driver or a command run by hand holds it."""
    folder = root / LOCK_DIR
    path, me, owner = folder / "lock.json", Holder.of(psutil.Process()), driver()
    with _mutex(folder):
        held_by, jobs = _read(path)
        running = [job for job in jobs if job.alive()]
        if not _shared(owner, held_by, running) and jobs:
            log.warning("taking over the project lock from %s, which ended without releasing it "
                        "(killed?)", jobs[0])
        _write(path, owner, [*running, me])
    try:
        yield
    finally:
        with _mutex(folder):
            held_by, jobs = _read(path)
            _write(path, held_by, [job for job in jobs if job != me])
