"""Every output DVC caches is ignored by git as the project ships, so that `dvc repro` on a clean
clone leaves the checkout clean: DVC would otherwise add it to a .gitignore file, and the report's
headline would name the commit "with uncommitted changes"."""

from __future__ import annotations

import subprocess

import pytest
from dvc.repo import Repo

from tests.conftest import ROOT


def test_every_cached_stage_output_is_already_git_ignored() -> None:
    inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=ROOT, capture_output=True, text=True,
                            check=False)
    if inside.returncode != 0:
        pytest.skip("not a git checkout")
    with Repo(str(ROOT)) as repo:
        cached = sorted(str(out.fs_path) for out in repo.index.outs if out.use_cache)
    assert cached, "dvc.yaml declares no cached outputs"
    shown = subprocess.run(["git", "check-ignore", "--no-index", "--verbose", "--non-matching", *cached],
                           cwd=ROOT, capture_output=True, text=True, check=False)
    assert shown.returncode in (0, 1), shown.stderr  # 1: none of them matched a pattern
    unignored = [line.split("\t", 1)[1] for line in shown.stdout.splitlines() if line.startswith("::")]
    assert unignored == []
