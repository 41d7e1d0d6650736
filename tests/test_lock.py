"""One driver at a time in a work folder; the jobs of one driver share the lock."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import psutil
import pytest
import yaml

from sarn.cli import main
from sarn.lock import DRIVER_ENV, Holder
from tests.conftest import ROOT, tiny_params
from tests.test_drivers import _env, make_project

# Holds the lock of the folder argv[1] until killed, as a job of whatever driver its environment names.
HOLDER = """import sys, time
from pathlib import Path
from sarn.lock import project_lock
with project_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(300)
"""


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    (tmp_path / "holder.py").write_text(HOLDER)
    monkeypatch.delenv(DRIVER_ENV, raising=False)  # as if run by hand
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _hold(project: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Another process that holds the lock of ``project`` (PYTHONPATH: this checkout's sarn)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.Popen([sys.executable, str(project / "holder.py"), str(project)],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline() == "held\n"
    return proc


# A stage command that needs neither data nor torch: it still takes the lock, as every stage does.
STAGE = ["download", "--dataset", "default"]


def _record(project: Path) -> dict:
    return json.loads((project / ".sarn" / "lock.json").read_text())


def test_a_second_run_stops_at_once_naming_the_first(project, capsys, caplog) -> None:
    holder = _hold(project)
    try:
        start = time.monotonic()
        assert main(STAGE) == 2
        assert time.monotonic() - start < 10
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [(f"error: another run holds the project lock (pid {holder.pid}: {sys.executable} "
                       f"{project / 'holder.py'} {project}); wait for it, or stop it")]
        # It wrote nothing: not even the params stamps every other command refreshes first.
        assert sorted(str(p.relative_to(project)) for p in project.rglob("*")) == [
            ".sarn", ".sarn/lock", ".sarn/lock.json", "holder.py", "params.yaml"]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # Killed, it never released the lock: the next run takes it over and says so.
    with caplog.at_level(logging.WARNING, logger="sarn"):
        assert main(STAGE) == 0
    assert f"taking over the project lock from pid {holder.pid}: " in caplog.text
    assert _record(project) == {"driver": None, "jobs": []}


def _exec_done(proc: subprocess.Popen, argv: list[str]) -> psutil.Process:
    """``proc`` once it runs ``argv``: just after the fork its command line is still its parent's
    or empty, and a holder described then would be named wrongly."""
    deadline = time.monotonic() + 10
    process = psutil.Process(proc.pid)
    while process.cmdline() != argv:
        assert time.monotonic() < deadline, f"{argv} did not start"
        time.sleep(0.01)
    return process


def test_the_jobs_of_one_driver_share_the_lock_and_refuse_another(project, capsys, monkeypatch) -> None:
    ours, theirs = subprocess.Popen(["sleep", "300"]), subprocess.Popen(["sleep", "301"])
    try:
        described = {proc: json.dumps(asdict(Holder.of(_exec_done(proc, proc.args)))) for proc in (ours, theirs)}
        holder = _hold(project, {DRIVER_ENV: described[ours]})
        monkeypatch.setenv(DRIVER_ENV, described[ours])  # a second job of the same run
        assert main(STAGE) == 0
        assert _record(project)["jobs"] == [asdict(Holder.of(psutil.Process(holder.pid)))]
        monkeypatch.setenv(DRIVER_ENV, described[theirs])  # a job of another run
        assert main(STAGE) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f"error: another run holds the project lock (pid {ours.pid}: sleep 300); wait for it, or stop it")
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        # The first run's driver is still there, with no job running: still its lock.
        assert main(STAGE) == 2
    finally:
        for proc in (ours, theirs):
            proc.kill()
            proc.wait()


def test_a_job_that_dvc_runs_belongs_to_the_dvc_process(tmp_path) -> None:
    """DVC runs each stage's command through a shell; the nearest dvc ancestor is the driver."""
    fake = tmp_path / "dvc"
    fake.write_text("import os, subprocess, sys\nprint(os.getpid(), flush=True)\n"
                    "job = 'from sarn.lock import driver; print(driver().pid)'\n"
                    "subprocess.run(f'{sys.executable} -c \"{job}\"', shell=True, check=True)\n")
    env = {k: v for k, v in os.environ.items() if k != DRIVER_ENV} | {"PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(fake)], env=env, capture_output=True, text=True,
                         check=True).stdout
    dvc_pid, driver_pid = out.split()
    assert dvc_pid == driver_pid


def test_snakemake_started_while_another_run_holds_the_lock_stops_before_touching_anything(tmp_path) -> None:
    """Snakemake removes a job's old outputs before the job starts: it must ask first."""
    project = make_project(tmp_path)
    (project / "holder.py").write_text(HOLDER)
    holder = _hold(project)
    try:
        proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1"], cwd=project,
                              env={k: v for k, v in _env().items() if k != DRIVER_ENV}, capture_output=True,
                              text=True, check=False)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode != 0
    assert f"another run holds the project lock (pid {holder.pid}: " in proc.stderr
    assert not (project / ".sarn" / "params").exists() and not (project / "data").exists()
