"""Faults of the machine and of the user: a full disk, a read-only output folder, Ctrl-C.

Each ends ``python -m sarn`` with one line on stderr (what, where, why) instead of a
traceback, removes its temporary files, and leaves every output complete or absent.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sarn.cli import main
from sarn.train import runner
from sarn.train.checkpoint import save_state
from tests.conftest import ROOT, ctrl_c_as_at_a_terminal, tiny_params

FREE = r"\(\d+(\.\d)? (bytes|KiB|MiB|GiB) free on that filesystem\)"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A work folder with the tiny dataset preprocessed and Table II's runs trained on it."""
    root = tmp_path_factory.mktemp("faults")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    cwd = Path.cwd()
    os.chdir(root)
    try:
        for command in (["raw", "--dataset", "default", "--out", "data/raw/default"],
                        ["preprocess", "--dataset", "default", "--raw", "data/raw/default",
                         "--out", "data/processed/default"],
                        *(_train(model) for model in tiny_params()["experiment"]["models"])):
            assert main(command) == 0
    finally:
        os.chdir(cwd)
    return root


def _train(model: str, out: str = "results/table2/default") -> list[str]:
    return ["train", "--dataset", "default", "--model", model, "--data", "data/processed/default",
            "--out", f"{out}/{model}"]


AGGREGATE = ["aggregate", "--results", "results/table2", "--table", "reports/table2.csv",
             "--metrics", "reports/metrics.json", "--curves", "reports/curves"]


def _leftovers(folder: Path) -> list[Path]:
    """Temporary files and folders of the atomic writers below ``folder``."""
    return [p for p in folder.rglob("*") if ".tmp-" in p.name]


def _one_line(err: str) -> str:
    """The message a command ended with, after checking it is all there is of the failure."""
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1].split("\r")[-1]


def test_saving_weights_to_a_full_disk_raises_its_errno(tmp_path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full to write to")
    with pytest.raises(OSError) as caught:
        save_state({"w": pytest.importorskip("torch").zeros(10_000)}, Path("/dev/full"))
    assert caught.value.errno == errno.ENOSPC


def test_a_full_disk_while_saving_a_checkpoint_is_one_line(workdir, monkeypatch, capsys) -> None:
    """torch's own writer, on a device that is always full: the message names the output."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full to write to")
    monkeypatch.chdir(workdir)
    monkeypatch.setattr(runner, "save_state", lambda state, path: save_state(state, Path("/dev/full")))
    assert main(_train("din", out="results/full")) == 2
    line = _one_line(capsys.readouterr().err)
    assert re.fullmatch(rf"error: cannot write results/full/din: No space left on device {FREE}", line), line
    assert list((workdir / "results/full").iterdir()) == []  # its folder was made, nothing in it
    assert not _leftovers(workdir / "results")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_failed_table_write_is_one_line_and_keeps_the_old_table(workdir, monkeypatch, capsys, code) -> None:
    """pandas names no file when a write fails; the old table stays as it was."""
    monkeypatch.chdir(workdir)
    assert main(AGGREGATE) == 0
    before = (workdir / "reports/table2.csv").read_bytes()

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    assert main(AGGREGATE) == 2
    line = _one_line(capsys.readouterr().err)
    expected = "No space left on device " + FREE if code == errno.ENOSPC else "Read-only file system"
    assert re.fullmatch(rf"error: cannot write reports/table2.csv: {expected}", line), line
    assert (workdir / "reports/table2.csv").read_bytes() == before
    assert not _leftovers(workdir / "reports")


def test_a_read_only_output_folder_is_one_line(workdir, monkeypatch, capsys) -> None:
    monkeypatch.chdir(workdir)
    reports = workdir / "readonly"
    reports.mkdir()
    reports.chmod(0o555)
    try:
        if os.access(reports, os.W_OK):
            pytest.skip("running as root: a read-only folder is still writable")
        assert main([*AGGREGATE[:3], "--table", "readonly/table2.csv", "--metrics", "readonly/m.json"]) == 2
        line = _one_line(capsys.readouterr().err)
        assert line == "error: cannot write readonly/table2.csv: Permission denied", line
        assert list(reports.iterdir()) == []
    finally:
        reports.chmod(0o755)


def test_ctrl_c_while_training_is_one_line_naming_the_seed(workdir, tmp_path) -> None:
    raw = tiny_params()
    raw["models"]["din"]["training"]["epochs"] = 500  # stopped long before the end
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = tmp_path / "din"
    command = ["--params", str(params), "train", "--dataset", "default", "--model", "din",
               "--data", str(workdir / "data/processed/default"), "--out", str(out)]
    with ctrl_c_as_at_a_terminal():
        proc = subprocess.Popen([sys.executable, "-m", "sarn", *command], cwd=ROOT, stderr=subprocess.PIPE,
                                text=True)
    seen = ""
    for line in proc.stderr:  # the log says when the first epoch is done
        seen += line
        if "default/din seed 0 epoch 1:" in line:
            break
    assert proc.poll() is None, f"training ended before it could be interrupted:\n{seen}"
    proc.send_signal(signal.SIGINT)
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 130
    line = _one_line(err)
    assert line == f"interrupted: python -m sarn {' '.join(command)} (training default/din seed 0)", line
    assert not out.exists() and not _leftovers(tmp_path)
