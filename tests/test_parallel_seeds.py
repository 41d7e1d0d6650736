"""Seeds trained at once (runtime.parallel_seeds): the same files as one after another, and a seed
that fails, or whose process dies, stops the stage by name and leaves nothing that looks complete."""

from __future__ import annotations

import json
import logging
import multiprocessing.util
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from sarn.data.preprocess import preprocess
from sarn.data.sources import make_raw
from sarn.errors import TrainingError
from sarn.params import Params, validate
from sarn.train import runner
from sarn.train.seeds import CpuUse, cpu_use, in_processes
from tests.conftest import ROOT, tiny_params


def _with(raw: dict, **runtime: int) -> Params:
    raw = {**raw, "runtime": {**raw["runtime"], **runtime}}
    return validate(raw)


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> Path:
    params = validate(tiny_params())
    root = tmp_path_factory.mktemp("tiny")
    make_raw("default", params.datasets["default"], root / "raw")
    preprocess("default", params.datasets["default"], root / "raw", root / "processed")
    return root / "processed"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def test_seeds_trained_at_once_give_the_files_of_seeds_trained_one_after_another(processed, tmp_path) -> None:
    """Three seeds of SARN (negatives redrawn every epoch) in two processes, the third handed to the
    first process free: runs.csv, history.csv and every checkpoint byte for byte as in one process."""
    raw = tiny_params()
    for parallel in (1, 2):
        runner.train_model(_with(raw, parallel_seeds=parallel), "default", "sarn", processed,
                           tmp_path / f"p{parallel}", n_seeds=3)
    alone, together = _files(tmp_path / "p1"), _files(tmp_path / "p2")
    checkpoints = [f"checkpoints/seed{seed}.pt" for seed in range(3)]
    assert sorted(alone) == sorted(together) == [*checkpoints, "history.csv", "run.json", "runs.csv"]
    for name in ("runs.csv", "history.csv", *checkpoints):
        assert alone[name] == together[name], name
    assert alone["runs.csv"].count(b"\n") == 4  # a header and a row a seed, in seed order
    record = (tmp_path / "p2" / "run.json").read_text()
    assert '"parallel_seeds": 2' in record and '"threads": 1' in record
    assert record.replace('"parallel_seeds": 2', '"parallel_seeds": 1') == alone["run.json"].decode()


def test_a_stage_whose_seeds_fail_names_one_and_leaves_no_folder(processed, tmp_path) -> None:
    """The seeds' processes load the data themselves (the stage's process reads only the splits'
    sizes and labels): a damaged negatives' pool fails them, and the stage says which seed and why."""
    damaged = tmp_path / "processed"
    damaged.mkdir()
    for path in processed.iterdir():
        content = path.read_bytes()
        (damaged / path.name).write_bytes(content[:100] if path.name == "negatives.npz" else content)
    results = tmp_path / "results"
    results.mkdir()
    said = r"^default/din seed [01] failed: DataError: .*negatives\.npz: not a readable"
    with pytest.raises(TrainingError, match=said):
        runner.train_model(_with(tiny_params(), parallel_seeds=2), "default", "din", damaged, results / "din",
                           n_seeds=2)
    assert list(results.iterdir()) == []  # neither the folder nor its temporary


@dataclass(frozen=True)
class _Job:
    """A stand-in for a run's seeds: each writes its process id into ``folder``; seed ``fails`` raises
    and seed ``dies`` kills its own process, both once seed 0 has started; the others sleep ``sleep``
    seconds. Each process's exit cleanup (where multiprocessing unregisters the semaphores its
    process made) takes ``exit_cleanup`` seconds, then writes ``<pid>.exited``."""

    folder: Path
    fails: int = -1
    dies: int = -1
    sleep: float = 0.0
    exit_cleanup: float = 0.0

    def label(self, seed: int) -> str:
        return f"job seed {seed}"

    def start(self):
        multiprocessing.util.Finalize(None, self.clean_up, exitpriority=0)
        return self.train

    def clean_up(self) -> None:
        time.sleep(self.exit_cleanup)
        (self.folder / f"{os.getpid()}.exited").touch()

    def train(self, seed: int) -> int:
        (self.folder / f"{seed}.pid").write_text(str(os.getpid()))
        while seed in (self.fails, self.dies) and not (self.folder / "0.pid").is_file():
            time.sleep(0.05)
        if seed == self.fails:
            raise ValueError("no good")
        if seed == self.dies:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(self.sleep)
        return seed * 10


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_seeds_come_back_each_with_its_own_result(tmp_path) -> None:
    results = dict(in_processes(_Job(tmp_path), [3, 4, 5, 6, 7], processes=2))
    assert results == {3: 30, 4: 40, 5: 50, 6: 60, 7: 70}
    assert len({(tmp_path / f"{seed}.pid").read_text() for seed in results}) == 2  # two processes, reused


def test_seed_processes_finish_their_exit_cleanup_after_the_last_seed(tmp_path) -> None:
    """Terminated mid-exit, a process would skip its cleanup, and the resource tracker would report
    the semaphore tqdm made in it as leaked."""
    results = dict(in_processes(_Job(tmp_path, exit_cleanup=1.0), [0, 1, 2], processes=2))
    assert results == {0: 0, 1: 10, 2: 20}
    pids = {(tmp_path / f"{seed}.pid").read_text() for seed in results}
    assert {path.stem for path in tmp_path.glob("*.exited")} == pids


@pytest.mark.parametrize(("job", "said"), [
    ({"fails": 1}, "job seed 1 failed: ValueError: no good"),
    ({"dies": 1}, "job seed 1: its process ended (killed by SIGKILL (the out-of-memory killer's signal))"),
])
def test_a_failing_seed_stops_the_others_at_once_and_is_named(tmp_path, job: dict, said: str) -> None:
    start = time.monotonic()
    with pytest.raises(TrainingError) as info:
        list(in_processes(_Job(tmp_path, sleep=120, **job), [0, 1, 2], processes=2))
    assert str(info.value) == said
    assert time.monotonic() - start < 60  # seed 0 was not waited for
    assert _gone(int((tmp_path / "0.pid").read_text()), within=5)
    assert not (tmp_path / "2.pid").exists()


_STAGE = """
import sys
from pathlib import Path
from sarn.train.seeds import in_processes
from tests.test_parallel_seeds import _Job
list(in_processes(_Job(Path(sys.argv[1]), sleep=120), [0, 1], processes=2))
"""


def test_seed_processes_die_with_a_killed_stage(tmp_path) -> None:
    stage = subprocess.Popen([sys.executable, "-c", _STAGE, str(tmp_path)], cwd=ROOT)
    pids = [tmp_path / f"{seed}.pid" for seed in (0, 1)]
    deadline = time.monotonic() + 120
    while not all(path.is_file() and path.read_text() for path in pids):
        assert time.monotonic() < deadline and stage.poll() is None, "the seeds never started"
        time.sleep(0.1)
    stage.kill()
    stage.wait()
    assert all(_gone(int(path.read_text()), within=10) for path in pids)


def test_more_threads_than_cores_is_said_once_and_recorded(processed, tmp_path, monkeypatch, caplog) -> None:
    """Two seeds at once of one thread each on a job Snakemake gave one core (OMP_NUM_THREADS=1)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    params = _with(tiny_params(), parallel_seeds=2)
    assert cpu_use(params.runtime, 2) == CpuUse(threads=1, processes=2, cores=1, oversubscribed=True)
    assert cpu_use(params.runtime, 1) == CpuUse(threads=1, processes=1, cores=1, oversubscribed=False)
    with caplog.at_level(logging.WARNING, logger="sarn.train.seeds"):
        for name in ("a", "b"):
            runner.train_model(params, "default", "din", processed, tmp_path / name, n_seeds=2)
    said = [r.message for r in caplog.records if "threads" in r.message]
    assert said == [("runtime.threads 1 x 2 seeds at once = 2 threads, more than the 1 core(s) this job may "
                     "use (OMP_NUM_THREADS=1, which Snakemake sets to a job's share of --cores): each thread "
                     "waits for descheduled ones, which can make training many times slower; lower "
                     "runtime.threads or runtime.parallel_seeds, or give the job more cores")]
    record = json.loads((tmp_path / "b" / "run.json").read_text())
    assert {key: record[key] for key in ("threads", "parallel_seeds", "cores", "oversubscribed")} == {
        "threads": 1, "parallel_seeds": 2, "cores": 1, "oversubscribed": True}
