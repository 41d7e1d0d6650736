"""End to end: DVC and Snakemake on a tiny configuration, in a throwaway copy of the repo.

These tests drive the real command lines (``dvc repro``, ``snakemake``) and check what
a user relies on: both drivers produce the same bytes, a params change reruns only the
affected stages under either driver, neither reports a stale result as current, and a
run killed halfway is finished correctly by the next one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
import yaml

from sarn import ALLOCATOR_ENV
from sarn.code_deps import STAGE_CODE, code_files
from sarn.stages import STAGE_PARAMS
from tests.conftest import ROOT, ctrl_c_as_at_a_terminal, tiny_params

BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        DVC_NO_ANALYTICS="1",
        GIT_AUTHOR_NAME="test", GIT_AUTHOR_EMAIL="test@example.invalid",
        GIT_COMMITTER_NAME="test", GIT_COMMITTER_EMAIL="test@example.invalid",
    )
    return env


def run(cwd: Path, *cmd: str) -> str:
    """Run a command in the project copy; fail the test with its output if it fails."""
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc.stdout + proc.stderr


def dvc(cwd: Path, *args: str) -> str:
    return run(cwd, sys.executable, "-m", "dvc", *args)


def snakemake(cwd: Path, *args: str) -> str:
    return run(cwd, sys.executable, "-m", "snakemake", "--cores", "2", *args)


def make_project(tmp_path: Path, name: str = "project") -> Path:
    """A git repository holding the project's files and the tiny params.yaml."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    dest = tmp_path / name
    for rel in listed:
        src = ROOT / rel
        if src.is_file() and not rel.startswith(("tests/", "reports/")) or rel == "reports/.gitignore":
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    write_params(dest, tiny_params())
    run(dest, "git", "init", "-q")
    run(dest, "git", "add", "-A")
    run(dest, "git", "commit", "-qm", "tiny project")
    return dest


def write_params(project: Path, raw: dict) -> None:
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def runs(project: Path, model: str) -> Path:
    return project / "results" / "table2" / "default" / model / "runs.csv"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header; fails on anything that is not a PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def check_figures(project: Path) -> None:
    """Every figure exists as a sensible PNG and SVG, with the data behind it in shape."""
    figures = project / "reports" / "figures"
    for stem in ("fig4", "fig5a", "fig5b", "fig6"):
        width, height = png_size(figures / f"{stem}.png")
        assert 400 <= width <= 5000 and 300 <= height <= 4000, (stem, width, height)
        assert (figures / f"{stem}.svg").read_text().lstrip().startswith("<?xml")
    curves = pd.read_csv(figures / "fig4.csv")
    assert set(curves.model) == {"sarn", "sarn_no_pos"} and {"train_logloss", "test_logloss"} <= set(curves)
    data = figures / "data"
    for path in [*data.glob("fig5a_*.csv"), data / "fig5b.csv", data / "fig6_positive.csv",
                 data / "fig6_negative.csv"]:
        matrix = pd.read_csv(path, index_col=0)
        assert matrix.shape[0] == matrix.shape[1] > 1, path
        assert list(matrix.index) == list(matrix.columns), path
        assert ((matrix >= 0) & (matrix <= 1)).all().all(), path
    assert len(list(data.glob("fig5a_*.csv"))) == 3
    history = pd.read_csv(data / "fig5b.csv", index_col=0)
    assert pd.read_csv(data / "fig6_positive.csv", index_col=0).shape == history.shape  # no padded pairs
    index = (project / "reports" / "index.html").read_text()
    for target in ("tables.html", "fig4.html", "fig5.html", "fig6.html"):
        assert f'href="{target}"' in index
    for image in ("fig4", "fig5a", "fig5b", "fig6"):
        assert f'<img src="figures/{image}.png"' in index


def test_dvc_yaml_lists_the_params_each_stage_declares() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for stage, keys in STAGE_PARAMS.items():
        declared = [k.replace("${item.model}", "{model}").replace("${figures.model}", "{model}")
                    .replace("${item.dataset}", "{dataset}").replace("${figures.dataset}", "{dataset}")
                    .replace("${item}", "{dataset}")
                    for k in stages[stage].get("do", stages[stage])["params"]]
        assert declared == list(keys), stage


def test_snakemake_builds_its_job_graph_without_torch(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "snakemake", "--cores", "1", "-n"],
                          cwd=project, env=_env(), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "sarn.params" in imported and "sarn.code_deps" in imported  # the recording works
    assert not {name for name in imported if name.split(".")[0] == "torch"}


def test_snakemake_lint_is_clean() -> None:
    out = run(ROOT, sys.executable, "-m", "snakemake", "--lint")
    assert "Congratulations" in out


# A `python` that runs `python -m sarn ...` in-process and records which package modules the
# command imported (dvc.yaml's commands call `python` from PATH), and runs anything else as it is.
# Like `python -m`, it looks for the package in the working directory first: the project's copy,
# not one installed from elsewhere.
_RECORDING_PYTHON = """#!{python}
import json, os, runpy, sys
if sys.argv[1:3] != ["-m", "sarn"]:
    os.execv({python!r}, [{python!r}, *sys.argv[1:]])
sys.argv = ["sarn", *sys.argv[3:]]
sys.path.insert(0, os.getcwd())
try:
    runpy.run_module("sarn", run_name="__main__", alter_sys=True)
finally:
    loaded = sorted(m.__file__ for name, m in list(sys.modules.items())
                    if name.split(".")[0] == "sarn" and getattr(m, "__file__", None))
    with open(os.environ["SARN_MODULES_LOG"], "a") as log:
        log.write(json.dumps({{"argv": sys.argv[1:], "modules": loaded}}) + "\\n")
"""


def _stage_of(argv: list[str]) -> str:
    """The dvc.yaml stage a recorded command line belongs to."""
    command = argv[0]
    if command == "report":
        return "report_" + Path(argv[argv.index("--notebook") + 1]).stem
    return command.replace("-", "_")


def repro_recording_modules(project: Path, tmp_path: Path) -> list[dict]:
    """``dvc repro`` with every stage's imported package modules recorded."""
    shim = tmp_path / "recording-bin"
    shim.mkdir()
    (shim / "python").write_text(_RECORDING_PYTHON.format(python=sys.executable))
    (shim / "python").chmod(0o755)
    log = tmp_path / "modules.jsonl"
    env = {**_env(), "SARN_MODULES_LOG": str(log), "PATH": f"{shim}{os.pathsep}{_env()['PATH']}",
           **ALLOCATOR_ENV}  # set already, so that training runs in the recorded process
    proc = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=project, env=env, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        pytest.fail(f"dvc repro exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_both_drivers_agree_and_never_report_stale_results(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    params = tiny_params()

    # Every module a stage ran is among its code dependencies (derived from the imports).
    recorded = repro_recording_modules(project, tmp_path)
    assert {_stage_of(r["argv"]) for r in recorded} == set(STAGE_CODE)
    for record in recorded:
        ran = {str(Path(f).resolve().relative_to(project)) for f in record["modules"]}
        missing = ran - set(code_files(_stage_of(record["argv"]), project))
        assert not missing, (record["argv"], missing)
    table = (project / "reports" / "table2.csv").read_bytes()
    metrics = (project / "reports" / "metrics.json").read_bytes()
    assert table.startswith(b"dataset,model,n_runs,auc_mean,auc_std,logloss_mean,logloss_std")
    assert (project / "reports" / "table3.csv").read_text().startswith("dataset,model,max_len,n_runs,auc_mean")
    assert (project / "reports" / "tables.html").stat().st_size > 10_000
    check_figures(project)
    assert "Nothing to be done" in snakemake(project, "-n")

    # A finished grid shared through a DVC remote: a fresh clone pulls it and has nothing to run.
    dvc(project, "remote", "add", "-d", "shared", str(tmp_path / "remote"))
    run(project, "git", "add", "-A")
    run(project, "git", "commit", "-qm", "a finished run")
    dvc(project, "push")
    run(tmp_path, "git", "clone", "-q", str(project), "clone")
    dvc(tmp_path / "clone", "pull")
    assert "Data and pipelines are up to date" in dvc(tmp_path / "clone", "repro")
    assert (tmp_path / "clone" / "reports" / "table2.csv").read_bytes() == table

    # The same pipeline from scratch under Snakemake gives the same bytes.
    other = make_project(tmp_path, "other")
    snakemake(other, "reports/table2.csv")
    assert (other / "reports" / "table2.csv").read_bytes() == table
    assert (other / "reports" / "metrics.json").read_bytes() == metrics

    # A DIN hyperparameter changed, Snakemake first: only DIN is retrained.
    sarn_mtime = runs(project, "sarn").stat().st_mtime_ns
    din_mtime = runs(project, "din").stat().st_mtime_ns
    params["models"]["din"]["training"]["lr"] = 0.003
    write_params(project, params)
    snakemake(project, "reports/table2.csv")
    assert runs(project, "din").stat().st_mtime_ns != din_mtime
    assert runs(project, "sarn").stat().st_mtime_ns == sarn_mtime
    table_after = (project / "reports" / "table2.csv").read_bytes()
    assert table_after != table
    # DVC then sees the change too (it has no record of Snakemake's run), recomputes
    # the same bytes, and leaves SARN alone.
    out = dvc(project, "repro")
    assert "Stage 'train@default-sarn' didn't change" in out
    assert runs(project, "sarn").stat().st_mtime_ns == sarn_mtime
    assert (project / "reports" / "table2.csv").read_bytes() == table_after
    assert "up to date" in dvc(project, "status")

    # A SARN hyperparameter changed, DVC first: Snakemake must not redo or miss it.
    din_mtime = runs(project, "din").stat().st_mtime_ns
    params["models"]["sarn"]["architecture"]["alpha"] = 0.5
    write_params(project, params)
    out = dvc(project, "repro")
    assert "Running stage 'train@default-sarn'" in out
    assert "Stage 'train@default-din' didn't change" in out
    assert runs(project, "din").stat().st_mtime_ns == din_mtime
    assert "Nothing to be done" in snakemake(project, "-n")

    # A plotting parameter reruns only the notebook that uses it (and the index, which
    # shows params.yaml), under either driver.
    params["plots"]["fig6"]["palette"] = "rocket"
    write_params(project, params)
    out = dvc(project, "repro")
    assert sorted(re.findall(r"Running stage '([^']+)'", out)) == ["index", "report_fig6"]
    assert "Nothing to be done" in snakemake(project, "-n")
    params["plots"]["fig5"]["dpi"] = 100
    write_params(project, params)
    out = snakemake(project)
    assert sorted(set(re.findall(r"rule (\w+):", out))) == ["all", "index", "report_fig5"]

    # Without changes, DVC has nothing to do.
    dvc(project, "repro")
    out = dvc(project, "repro")
    assert "didn't change" in out and "Running stage" not in out

    # How many seeds train at once changes no result (tests/test_parallel_seeds.py): neither driver
    # retrains for it; only the index, which shows params.yaml, is redone.
    params["runtime"]["parallel_seeds"] = 2
    write_params(project, params)
    assert re.findall(r"^(\S+):$", dvc(project, "status"), re.MULTILINE) == ["index"]
    assert set(re.findall(r"^rule (\w+):", snakemake(project, "-n"), re.MULTILINE)) == {"all", "index"}
    dvc(project, "repro")

    # Another model for Figs. 5 and 6, whose hyperparameters are already stamped: both drivers
    # retrain the snapshots (the key itself is a dependency, not only the model's section).
    params["figures"]["model"] = "sarn_no_pos"
    write_params(project, params)
    assert {"snapshots", "figure_data"} <= set(re.findall(r"^(\S+):$", dvc(project, "status"), re.MULTILINE))
    assert {"snapshots", "figure_data"} <= set(re.findall(r"^rule (\w+):", snakemake(project, "-n"),
                                                          re.MULTILINE))
    params["figures"]["model"] = "sarn"
    write_params(project, params)

    # An edit of a module the train stage runs (and the data stages do not) makes both drivers
    # call its results stale, and leaves the data stages alone.
    with (project / "sarn" / "checks.py").open("a") as source:
        source.write("# edited\n")
    status = dvc(project, "status")
    assert "train@default-din:" in status and "raw@default:" not in status
    planned = set(re.findall(r"^rule (\w+):", snakemake(project, "-n"), re.MULTILINE))
    assert "train" in planned and "raw" not in planned


def test_metrics_diff_shows_what_an_experiment_moved(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    dvc(project, "repro", "aggregate")  # Table II only, to keep the test short
    run(project, "git", "add", "dvc.lock", "reports/metrics.json", "reports/curves", "reports/.gitignore")
    run(project, "git", "commit", "-qm", "baseline")
    dvc(project, "exp", "run", "-S", "models.sarn.architecture.beta=0.0", "aggregate")
    diff = dvc(project, "metrics", "diff", "--md")
    assert "default.sarn.auc_mean" in diff
    assert "default.din.auc_mean" not in diff  # DIN was not retrained, nothing moved
    plots = json.loads(dvc(project, "plots", "diff", "--json"))
    revisions = {rev for plot in plots["data"]["reports/curves/default/sarn.csv"] for rev in plot["revisions"]}
    assert revisions == {"HEAD", "workspace"}  # the training curves, compared the same way


@pytest.mark.parametrize("driver", ["dvc", "snakemake"])
def test_a_stage_killed_halfway_is_finished_by_the_next_run(tmp_path: Path, driver: str) -> None:
    project = make_project(tmp_path)
    params = tiny_params()
    params["models"]["sarn"]["training"]["epochs"] = 40  # long enough to be caught mid-run
    write_params(project, params)
    command = {
        "dvc": [sys.executable, "-m", "dvc", "repro", "aggregate"],
        "snakemake": [sys.executable, "-m", "snakemake", "--cores", "1", "reports/table2.csv"],
    }[driver]
    proc = subprocess.Popen(command, cwd=project, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    results = project / "results" / "table2" / "default"
    deadline = time.monotonic() + 240
    while not (results.is_dir() and list(results.glob(".sarn.tmp-*/checkpoints/*.pt"))):
        assert time.monotonic() < deadline, "training never got under way"
        assert proc.poll() is None, f"{driver} ended before the stage could be killed"
        time.sleep(0.2)
    stage = [p for p in psutil.Process(proc.pid).children(recursive=True)
             if p.cmdline()[1:4] == ["-m", "sarn", "train"]]
    assert len(stage) == 1
    stage[0].send_signal(signal.SIGKILL)
    assert proc.wait(timeout=120) != 0
    assert not (results / "sarn").exists(), "a killed stage left an output that looks complete"

    params["models"]["sarn"]["training"]["epochs"] = 2
    write_params(project, params)
    run(project, *command)
    assert runs(project, "sarn").is_file()
    assert not list(results.glob(".sarn.tmp-*")), "the temporary folder of the killed stage is left"
    assert "Nothing to be done" in snakemake(project, "-n", "reports/table2.csv")
    assert driver == "snakemake" or "up to date" in dvc(project, "status", "aggregate")


def data_outputs(project: Path) -> dict[str, bytes]:
    """The bytes of every output that holds data (the notebooks and images also record when they
    were made), with the temporaries of any write under way."""
    reports = project / "reports"
    files = [*(project / "data").rglob("*"), *(project / "results").rglob("*"), *reports.glob("*.csv"),
             reports / "metrics.json", *(reports / "figures").rglob("*.csv")]
    return {str(path.relative_to(project)): path.read_bytes() for path in files if path.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A project whose whole default pipeline Snakemake has run, SARN long enough (40 epochs) to
    be caught in the middle of its training. Tests work on copies (:func:`copy_of`)."""
    project = make_project(tmp_path_factory.mktemp("built"))
    params = tiny_params()
    params["models"]["sarn"]["training"]["epochs"] = 40
    write_params(project, params)
    snakemake(project)
    return project


def copy_of(project: Path, tmp_path: Path) -> Path:
    """A copy with every modification time kept, as Snakemake compares them."""
    return Path(shutil.copytree(project, tmp_path / "project", symlinks=True))


def test_a_users_log_that_does_not_exist_stops_the_default_run_naming_it(built, tmp_path) -> None:
    """A missing input that no rule makes is fine to Snakemake while the files downstream exist: the
    new dataset was silently left out of every table."""
    project = copy_of(built, tmp_path)
    before = data_outputs(project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["datasets"]["mylog"] = {
        "source": {"kind": "log", "path": "data/external/mylog.csv", "core": {"users": 1, "items": 1}},
        "protocol": {"min_history": 1, "max_len": 10, "negative_drop": 0.0, "seed": 2,
                     "split": {"by": "user", "train": 0.8, "valid": 0.1, "test": 0.1}},
        "training": {"max_len": 10, "eval_every_samples": None, "statistics_samples": 2560}}
    params["experiment"]["datasets"].append("mylog")
    write_params(project, params)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=project, env=_env(),
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    message = "error: datasets.mylog.source.path: data/external/mylog.csv does not exist"
    assert message in proc.stdout + proc.stderr
    assert data_outputs(project) == before


def test_a_forced_rerun_stopped_by_ctrl_c_is_redone_by_the_next_run(built, tmp_path) -> None:
    """Snakemake removes a job's old output before it runs the job: stopped, the output was gone and
    the next run said "Nothing to be done", the files made from it being newer."""
    project = copy_of(built, tmp_path)
    before = data_outputs(project)
    sarn = project / "results" / "table2" / "default" / "sarn"
    target = str(sarn.relative_to(project))
    with ctrl_c_as_at_a_terminal():
        proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2", target, "--forcerun", target],
                                cwd=project, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    deadline = time.monotonic() + 240
    while not list(sarn.parent.glob(".sarn.tmp-*/checkpoints/*.pt")):
        assert time.monotonic() < deadline, "training never got under way"
        assert proc.poll() is None, "the forced rerun ended before it could be stopped"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's whole process group
    assert proc.wait(timeout=120) != 0
    stopped = data_outputs(project)
    assert not sarn.exists()
    assert stopped == {name: data for name, data in before.items() if name in stopped}, "a half-made output"
    out = snakemake(project)
    assert "rule train:" in out and "wildcards: dataset=default, model=sarn" in out
    assert data_outputs(project) == before


def test_slurm_profile_dry_run_lists_the_jobs_it_would_submit(tmp_path: Path) -> None:
    """Each training job asks for the cores its seeds use at once (the plugin's CPUs a task are a
    job's threads); a dry run caps threads at --cores (1 unless given), so it is given 64."""
    project = make_project(tmp_path)
    params = tiny_params()
    params["runtime"].update(threads=2, parallel_seeds=3)  # 2 seeds: 2 processes of Table II, 1 of Table III
    write_params(project, params)
    out = run(project, sys.executable, "-m", "snakemake", "--profile", "workflow/profiles/slurm", "-n",
              "--cores", "64")
    jobs = re.findall(r"^rule (\w+):", out, re.MULTILINE)
    assert {"raw", "preprocess", "train", "sweep", "snapshots", "aggregate", "index"} <= set(jobs)
    assert jobs.count("train") == len(tiny_params()["experiment"]["models"])
    threads = {rule: set(re.findall(rf"^rule {rule}:\n(?:    .*\n)*?    threads: (\d+)", out, re.MULTILINE))
               for rule in ("train", "sweep", "snapshots", "effects")}
    assert threads == {"train": {"4"}, "sweep": {"2"}, "snapshots": {"2"},
                       "effects": set()}  # none trains: 1 thread, not printed
    for block in out.split("rule train:")[1:]:
        resources = block.split("resources:")[1].splitlines()[0]
        assert "slurm_partition=gpu" in resources and "gpu=1" in resources
    preprocess = out.split("rule preprocess:")[1].split("resources:")[1].splitlines()[0]
    assert "mem_mb=16000" in preprocess and "slurm_partition=cpu" in preprocess
