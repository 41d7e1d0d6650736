"""The benchmark scripts still run (on tiny sizes; their figures are not checked here)."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from tests.conftest import ROOT


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_preprocess_benchmark_versions_agree_on_a_small_file(tmp_path) -> None:
    bench = _load("preprocess_speed")
    archive = tmp_path / "download" / "UserBehavior.csv.zip"
    archive.parent.mkdir()
    bench.generate(archive, 30_000)
    project = bench.run_project(archive, tmp_path)
    plain = bench.run_pandas(archive)
    assert project["interactions"] == plain["interactions"] > 0
    assert project["users"] == plain["users"] and project["items"] == plain["items"]


def test_training_benchmark_measures_the_project_and_the_straightforward_sarn() -> None:
    bench = _load("train_speed")
    for model in ("din", "sarn", "sarn_straightforward"):
        row = bench.measure(model, batch=8, length=5, steps=1)
        assert row["model"] == model and row["samples_per_s"] > 0 and row["peak_mb"] > 0
