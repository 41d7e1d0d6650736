"""The benchmark scripts still run (on tiny sizes; their figures are not checked here)."""

from __future__ import annotations

import os

import pytest
import torch

from benchmarks import evaluation_statistics, precision_auc, preprocess_speed, train_speed
from benchmarks.training import (
    embedded_default,
    evaluation,
    full_length,
    host_floor,
    optimizer,
    profile_steps,
    sarn_leads,
    threads,
)
from benchmarks.training.rows import Setting, run_row
from benchmarks.training.samples import cached_samples, random_samples
from sarn import ALLOCATOR_ENV
from sarn.models import build_model
from sarn.nn import EvaluationStatistics
from sarn.params import Params, Precision, load
from tests.conftest import ROOT


def test_preprocess_benchmark_versions_agree_on_a_small_file(tmp_path) -> None:
    archive = tmp_path / "download" / "UserBehavior.csv.zip"
    archive.parent.mkdir()
    preprocess_speed.generate(archive, 30_000)
    project = preprocess_speed.run_project(archive, tmp_path)
    plain = preprocess_speed.run_pandas(archive)
    assert project["interactions"] == plain["interactions"] > 0
    assert project["users"] == plain["users"] and project["items"] == plain["items"]


def test_training_benchmark_rows_train_the_project_and_the_straightforward_sarn() -> None:
    params, cpu = load(ROOT / "params.yaml"), torch.device("cpu")
    for model in ("din", "sarn", "sarn_straightforward", "sarn_materialised"):
        row = full_length.grid_row(params, model, batch=8, length=5, steps=2, device=cpu, precision="fp32")
        assert row["model"] == model and row["samples_per_s"] > 0 and row["peak_mb"] > 0


def test_every_lead_row_trains_on_the_same_samples_and_grouping_narrows_batches() -> None:
    params, cpu = load(ROOT / "params.yaml"), torch.device("cpu")
    rows = [sarn_leads.lead_row(params, k, steps=3, device=cpu, precision="fp32", n_users=400)
            for k in range(len(sarn_leads.LEADS))]
    assert len({r["mean_history"] for r in rows}) == 1
    assert rows[-1]["mean_width"] < rows[0]["mean_width"]


@pytest.mark.parametrize(("argv", "named"), [(["--dataset", "nope"], "unknown dataset 'nope'"),
                                             (["--models", "din", "dinn"], "unknown model run(s) dinn")])
def test_precision_benchmark_names_an_unknown_dataset_or_model_before_any_work(argv, named, capsys) -> None:
    before = precision_auc.WORK.exists()
    with pytest.raises(SystemExit):
        precision_auc.main(argv)
    err = capsys.readouterr().err
    assert named in err and "params.yaml defines: " in err
    assert precision_auc.WORK.exists() == before


def test_the_operator_count_leaves_views_out() -> None:
    x = torch.ones(3)
    with host_floor.OperatorCount() as count:
        (x + 1).view(3, 1).t().mul(2)
    assert count.calls == {"aten.add": 1, "aten.mul": 1}


def test_host_floor_rows_count_each_models_operators_the_same_every_time() -> None:
    params, cpu = load(ROOT / "params.yaml"), torch.device("cpu")
    din, sarn, din_again = host_floor.floor_rows(params, ["din", "sarn", "din"], steps=5, device=cpu,
                                                 precision="fp32")
    assert din["model"] == din_again["model"] == "din" and sarn["model"] == "sarn"
    assert din_again["operators"] == din["operators"] > 50
    assert sarn["operators"] > din["operators"]  # SARN's pair MLPs, losses and their backward
    assert all(row["ms_a_step"] > 0 for row in (din, sarn, din_again))


def test_host_floor_needs_a_timed_step_in_every_turn() -> None:
    params = load(ROOT / "params.yaml")
    with pytest.raises(ValueError, match="at least 5 timed steps"):
        host_floor.floor_rows(params, ["din"], steps=4, device=torch.device("cpu"), precision="fp32")


@pytest.mark.parametrize(("main", "argv", "named"), [
    (train_speed.main, ["--models", "din", "dinn"], "invalid choice: 'dinn'"),
    (train_speed.main, ["--profile", "deepctr_din"], "invalid choice: 'deepctr_din'"),
    (train_speed.main, ["--parts", "5", "--floor-steps", "3"], "--floor-steps must be at least 5"),
    (full_length.main, ["--models", "din", "dinn"], "invalid choice: 'dinn'"),
    (host_floor.main, ["--floor-steps", "3"], "--floor-steps must be at least 5"),
    (profile_steps.main, ["deepctr_din"], "invalid choice: 'deepctr_din'"),
    (embedded_default.main, ["--parallel-seeds", "1", "0"], "--parallel-seeds must be 1 or more, got 1 0"),
    (threads.main, ["--models", "dinn"], "invalid choice: 'dinn'"),
    (optimizer.main, ["--optimizer-steps", "0"], "--optimizer-steps and --turns must be 1 or more, got 0 and 2"),
    (evaluation.main, ["--eval-batch-sizes", "256", "0"],
     "--eval-samples, --turns and every --eval-batch-sizes must be 1 or more, got 8192, 2 and [256, 0]"),
])
def test_training_benchmark_refuses_bad_arguments_before_any_work(main, argv, named, capsys) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    assert named in capsys.readouterr().err


def report_process(params: Params, row: int, device: torch.device, precision: Precision) -> dict:
    """A row that reports the process it runs in, for the test below (``row`` as part 2's rows have one)."""
    return {"row": row, "pid": os.getpid(), "allocator": {key: os.environ.get(key) for key in ALLOCATOR_ENV},
            "threads": torch.get_num_threads(), "deterministic": torch.are_deterministic_algorithms_enabled()}


def test_a_cpu_row_runs_in_its_own_process_under_the_invocations_setting(monkeypatch) -> None:
    for key in ALLOCATOR_ENV:
        monkeypatch.delenv(key, raising=False)
    params = load(ROOT / "params.yaml")
    # A count neither params.yaml nor torch's default gives, so that the child's threads can only
    # come from the parent's params.
    assert params.runtime.threads != 3 and torch.get_num_threads() != 3
    params = params.model_copy(update={"runtime": params.runtime.model_copy(update={"threads": 3})})
    setting = Setting(params, torch.device("cpu"), "fp32", nondeterministic=True)
    default = run_row(setting, report_process, row=1)
    without_allocator = run_row(setting, report_process, allocator=False, row=2)
    assert (default["row"], without_allocator["row"]) == (1, 2)
    assert os.getpid() not in (default["pid"], without_allocator["pid"])
    assert default["allocator"] == ALLOCATOR_ENV
    assert without_allocator["allocator"] == dict.fromkeys(ALLOCATOR_ENV)
    assert default["threads"] == 3 and default["deterministic"] is False


def test_threads_rows_train_in_processes_of_the_threads_they_are_given() -> None:
    """Part 6's processes of a row start their steps together and each reports the thread count the
    row gave it (a row whose processes did not is None)."""
    params = load(ROOT / "params.yaml")
    setting = Setting(params, torch.device("cpu"), "fp32", nondeterministic=False)
    samples = str(cached_samples(params, "embedded default"))
    for processes, count in ((2, 1), (1, 2)):
        rate = threads.together(setting, processes, count, samples_file=samples, model="din", steps=3, seconds=30.0)
        assert rate is not None and rate > 0


def test_optimizer_rows_time_both_forms_of_adam_on_the_same_steps() -> None:
    params = load(ROOT / "params.yaml")
    row = optimizer.optimizer_row(params, "din", str(cached_samples(params, "embedded default")), steps=2, turns=2,
                                  device=torch.device("cpu"), precision="fp32")
    assert row["model"] == "din" and set(row) == {"model", *optimizer.FORMS}
    assert all(row[form] > 0 for form in optimizer.FORMS)


def test_evaluation_rows_predict_the_same_samples_at_every_batch_size() -> None:
    params = load(ROOT / "params.yaml")
    row = evaluation.evaluation_row(params, "din", str(cached_samples(params, "embedded default")), size=300,
                                    batch_sizes=[64, 256], turns=2, device=torch.device("cpu"), precision="fp32")
    assert row["model"] == "din" and set(row["rates"]) == {"64", "256"}
    assert all(rate > 0 for rate in row["rates"].values())
    assert 0 <= row["spread"] < 1e-4 and row["peak_mb"] > 0


def test_evaluation_statistics_are_reestimated_over_every_training_batch(tmp_path, monkeypatch, capsys) -> None:
    params = load(ROOT / "params.yaml")
    train = random_samples(300, 6, 40, 5, torch.device("cpu"))
    net = build_model("din", 40, 5, params.models["din"].architecture)
    evaluation_statistics.reestimate(net, train, batch_size=32, sort_chunk=4, seed=0)
    assert {m.batches.item() for m in net.modules() if isinstance(m, EvaluationStatistics)} == {10}  # ⌈300 / 32⌉
    assert not net.training
    monkeypatch.setattr(evaluation_statistics, "ROOT", tmp_path)
    with pytest.raises(SystemExit):
        evaluation_statistics.main([])
    assert "run the pipeline's Table II stages first" in capsys.readouterr().err
