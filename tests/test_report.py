"""Aggregation reads only stage outputs and computes Table II/III columns correctly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sarn.errors import DataError
from sarn.params import SweepSpec
from sarn.report.aggregate import aggregate, aggregate_sweep
from sarn.report.display import table1_display, table2_display, table3_display


def _write_runs(root, dataset, model, aucs, sub=None, testsel=0.01, last=-0.02, selection="validation",
                failed=()):
    """A runs.csv whose test-selected AUCs are ``testsel`` above the reported ones and whose
    last evaluations are ``last`` away from them; the seeds listed in ``failed`` failed."""
    folder = root / dataset / model if sub is None else root / dataset / model / sub
    folder.mkdir(parents=True)
    n, aucs = len(aucs), np.asarray(aucs)
    loglosses = np.linspace(0.5, 0.6, n)
    pd.DataFrame({
        "seed": range(n), "selection": selection, "best_epoch": [2] * n, "best_step": [20] * n,
        "test_auc": aucs, "test_logloss": loglosses, "test_gauc": aucs,
        "testsel_step": [30] * n, "testsel_test_auc": aucs + testsel, "testsel_test_logloss": loglosses - 0.1,
        "testsel_test_gauc": aucs, "last_step": [50] * n, "last_test_auc": aucs + last,
        "last_test_logloss": loglosses, "last_test_gauc": aucs,
        "failed": ["test LogLoss 1e+14 is over 10 times ..." if k in failed else "" for k in range(n)],
    }).to_csv(folder / "runs.csv", index=False)
    pd.DataFrame({  # two evaluations a seed: mid-epoch (step 5) and the epoch's end (step 10)
        "seed": np.repeat(range(n), 2), "epoch": 1, "step": [5, 10] * n, "epoch_end": [0, 1] * n,
        "train_logloss": 0.6, "valid_auc": np.repeat(aucs, 2), "test_auc": np.repeat(aucs, 2) + [0.0, 0.01] * n,
        "test_logloss": 0.5,
    }).to_csv(folder / "history.csv", index=False)
    if sub is None:  # a Table II run: what trained it
        (folder / "run.json").write_text(json.dumps({"device": "cpu", "precision": "fp32", "torch": "2.0"}))


def test_table2_statistics_test_and_paper_numbers(tmp_path) -> None:
    sarn, din = [0.87, 0.88, 0.86, 0.875], [0.85, 0.84, 0.855, 0.845]
    _write_runs(tmp_path, "electronics", "din", din)
    _write_runs(tmp_path, "electronics", "sarn", sarn)
    table = aggregate(["electronics"], ["din", "sarn"], tmp_path, tmp_path / "t2.csv", tmp_path / "m.json",
                      tmp_path / "curves")
    curves = pd.read_csv(tmp_path / "curves" / "electronics" / "din.csv")
    assert curves.step.tolist() == [5, 10] and curves.epochs.tolist() == [0.5, 1.0]
    assert curves.test_auc.tolist() == pytest.approx([np.mean(din), np.mean(din) + 0.01])
    din_row, sarn_row = table.iloc[0], table.iloc[1]
    assert din_row.auc_mean == pytest.approx(np.mean(din))
    assert din_row.auc_std == pytest.approx(np.std(din, ddof=1))
    assert din_row.auc_p_vs_sarn == pytest.approx(stats.ttest_ind(din, sarn, equal_var=False).pvalue)
    assert pd.isna(sarn_row.auc_p_vs_sarn)
    assert din_row.paper_auc == 0.8523 and sarn_row.paper_logloss == 0.2283
    # the paper's numbers are its code's test-selected ones: compared with ours selected the same way
    assert din_row.auc_testsel_minus_paper == pytest.approx(np.mean(din) + 0.01 - 0.8523)
    assert din_row.dien_paper_auc == 0.7603 and pd.isna(sarn_row.dien_paper_auc)  # the DIEN paper ran no SARN
    assert din_row.auc_testsel_mean == pytest.approx(np.mean(din) + 0.01)
    assert din_row.logloss_testsel_mean == pytest.approx(0.45)
    assert din_row.logloss_testsel_paper_scale_mean == pytest.approx(0.5 * 0.45)
    assert list(table.columns[:13]) == ["dataset", "model", "n_runs", "auc_mean", "auc_std", "logloss_mean",
                                        "logloss_std", "gauc_mean", "gauc_std", "best_epoch_mean",
                                        "auc_p_vs_sarn", "paper_auc", "paper_logloss"]  # today's columns first
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["electronics"]["sarn"]["auc_mean"] == pytest.approx(np.mean(sarn))
    assert table.trained_on.tolist() == ["cpu fp32, torch 2.0"] * 2  # in the table, not among DVC's metrics
    assert "trained_on" not in metrics["electronics"]["sarn"]
    shown = table2_display(pd.read_csv(tmp_path / "t2.csv"))
    assert shown.loc["sarn", ("electronics", "AUC")] == f"{np.mean(sarn):.4f} ± {np.std(sarn, ddof=1):.4f}"


def test_protocol_effects_compare_each_choice_with_the_baseline_under_its_own_rule(tmp_path, params_dict) -> None:
    from sarn.params import validate
    from sarn.report.aggregate import aggregate_effects
    from sarn.report.display import effects_display

    params_dict["protocol_effects"].update(datasets=["default"], models=["din"], n_seeds=2, choices={
        "frozen_batchnorm": {"architecture": {"batchnorm": "frozen"}},
        "split_90_10": {"training": {"train_on": "train+valid"}}})
    params = validate(params_dict)
    baseline, results = tmp_path / "table2", tmp_path / "effects"
    _write_runs(baseline, "default", "din", [0.80, 0.82, 0.99])  # the third seed is not one of the effects'
    _write_runs(results, "default", "din", [0.78, 0.79], sub="frozen_batchnorm")
    _write_runs(results, "default", "din", [0.83, 0.84], sub="split_90_10", selection="last")
    shuffled = results / "default" / "din" / "frozen_batchnorm" / "runs.csv"
    pd.read_csv(shuffled).iloc[::-1].to_csv(shuffled, index=False)  # seeds 1, 0: paired by seed, not by row
    table = aggregate_effects(params, results, baseline, tmp_path / "effects.csv").set_index("choice")
    assert list(table.index) == ["test_set_selection", "frozen_batchnorm", "split_90_10"]
    assert table.loc["test_set_selection", "auc_difference"] == pytest.approx(0.01)
    assert pd.isna(table.loc["test_set_selection", "auc_p"])  # every seed's difference the same: undefined
    assert table.loc["frozen_batchnorm", "baseline_auc_mean"] == pytest.approx(0.81)
    assert table.loc["frozen_batchnorm", "auc_difference"] == pytest.approx(-0.025)
    assert table.loc["frozen_batchnorm", "auc_p"] == pytest.approx(stats.ttest_rel([0.78, 0.79], [0.80, 0.82]).pvalue)
    assert table.loc["frozen_batchnorm", "auc_p"] != pytest.approx(stats.ttest_rel([0.79, 0.78], [0.80, 0.82]).pvalue)
    assert table.loc["frozen_batchnorm", "changes"] == "architecture.batchnorm=frozen"
    # no validation set: the last evaluation, against the baseline's last evaluation
    assert table.loc["split_90_10", "baseline_auc_mean"] == pytest.approx(0.79)
    assert table.loc["split_90_10", "selection"] == "last"
    shown = effects_display(pd.read_csv(tmp_path / "effects.csv"))
    assert shown.loc[("default", "din", "split_90_10"), "reported"] == "last evaluation"
    params_dict["protocol_effects"]["datasets"] = []
    assert aggregate_effects(validate(params_dict), results, baseline, tmp_path / "none.csv").empty


def test_a_protocol_effect_without_its_seeds_baseline_names_the_file_and_seeds(tmp_path, params_dict) -> None:
    from sarn.params import validate
    from sarn.report.aggregate import aggregate_effects

    params_dict["protocol_effects"].update(datasets=["default"], models=["din"], n_seeds=2, choices={
        "frozen_batchnorm": {"architecture": {"batchnorm": "frozen"}}})
    baseline, results = tmp_path / "table2", tmp_path / "effects"
    _write_runs(baseline, "default", "din", [0.80, 0.82])
    _write_runs(results, "default", "din", [0.78, 0.79], sub="frozen_batchnorm")
    runs = results / "default" / "din" / "frozen_batchnorm" / "runs.csv"
    pd.read_csv(runs).assign(seed=[0, 5]).to_csv(runs, index=False)
    with pytest.raises(DataError, match=rf"{runs}: seeds \[5\] have no Table II run to compare with"):
        aggregate_effects(validate(params_dict), results, baseline, tmp_path / "effects.csv")


def test_failed_seeds_are_counted_and_their_rows_marked(tmp_path) -> None:
    _write_runs(tmp_path, "default", "din", [0.55, 0.60, 0.84], failed=(0, 1))
    _write_runs(tmp_path, "default", "sarn", [0.86, 0.87, 0.85])
    table = aggregate(["default"], ["din", "sarn"], tmp_path, tmp_path / "t2.csv", tmp_path / "m.json",
                      tmp_path / "curves")
    assert table.set_index("model").n_flagged.to_dict() == {"din": 2, "sarn": 0}
    assert json.loads((tmp_path / "m.json").read_text())["default"]["din"]["n_flagged"] == 2
    shown = table2_display(pd.read_csv(tmp_path / "t2.csv"))
    assert shown.loc["din", ("default", "AUC")].endswith(" ⚠")
    assert shown.loc["din", ("default", "failed seeds")] == "2 of 3"
    assert shown.loc["sarn", ("default", "failed seeds")] == ""
    assert not shown.loc["sarn", ("default", "AUC")].endswith(" ⚠")
    _write_runs(tmp_path / "t3", "default", "din", [0.55, 0.84], sub="len10", failed=(0,))
    _write_runs(tmp_path / "t3", "default", "din", [0.55, 0.84], sub="len20")
    sweep = aggregate_sweep(SweepSpec(datasets=["default"], models=["din"], lengths=[10, 20], n_seeds=2),
                            tmp_path / "t3", tmp_path / "t3.csv")
    assert sweep.n_flagged.tolist() == [1, 0]
    shown = table3_display(sweep)
    assert shown.loc[("din", "AUC"), ("default", 10)].endswith(" ⚠")
    assert not shown.loc[("din", "AUC"), ("default", 20)].endswith(" ⚠")


def test_a_missing_run_is_named(tmp_path) -> None:
    _write_runs(tmp_path, "default", "din", [0.8, 0.81])
    with pytest.raises(DataError, match="sarn/runs.csv: not found"):
        aggregate(["default"], ["din", "sarn"], tmp_path, tmp_path / "t2.csv", tmp_path / "m.json", tmp_path / "c")
    assert not (tmp_path / "t2.csv").exists()
    _write_runs(tmp_path, "default", "sarn", [0.8, 0.81])
    (tmp_path / "default" / "sarn" / "run.json").unlink()
    with pytest.raises(DataError, match="sarn/run.json: not found"):
        aggregate(["default"], ["din", "sarn"], tmp_path, tmp_path / "t2.csv", tmp_path / "m.json", tmp_path / "c")
    (tmp_path / "default" / "sarn" / "run.json").write_text('{"device": "cpu", "prec')  # cut short
    with pytest.raises(DataError, match="sarn/run.json: not a run record"):
        aggregate(["default"], ["din", "sarn"], tmp_path, tmp_path / "t2.csv", tmp_path / "m.json", tmp_path / "c")
    assert not (tmp_path / "t2.csv").exists()


def test_table3_rows_and_paper_numbers(tmp_path) -> None:
    for length, aucs in ((10, [0.86, 0.87]), (20, [0.875, 0.88])):
        _write_runs(tmp_path, "books", "sarn", aucs, sub=f"len{length}")
    spec = SweepSpec(datasets=["books"], models=["sarn"], lengths=[10, 20], n_seeds=2)
    table = aggregate_sweep(spec, tmp_path, tmp_path / "t3.csv")
    assert table.max_len.tolist() == [10, 20]
    assert table.auc_mean.tolist() == pytest.approx([0.865, 0.8775])
    assert table.paper_auc.tolist() == [0.8622, 0.8664]
    shown = table3_display(table)
    assert shown.loc[("sarn", "paper"), ("books", 10)] == "0.8622"


def test_table1_puts_the_papers_row_beside_ours() -> None:
    shown = table1_display([
        {"dataset": "default", "users": 3000, "items": 1944, "categories": 60, "interactions": 42492},
        {"dataset": "electronics", "users": 192403, "items": 63001, "categories": 801, "interactions": 1689188},
    ])
    assert shown.loc[("default", "this run"), "interactions"] == "42,492"
    assert ("default", "paper") not in shown.index
    assert shown.loc[("electronics", "paper"), "users"] == "192,403"


def test_table1_shows_the_counts_before_the_core_filter_where_it_dropped_rows() -> None:
    before = {"users": 987_994, "items": 4_162_024, "categories": 9_439, "interactions": 89_716_264}
    shown = table1_display([{"dataset": "taobao", "users": 970_000, "items": 1_200_000, "categories": 8_000,
                             "interactions": 85_000_000, "source": {"before_core": before}}])
    assert shown.loc[("taobao", "this run, before the core filter"), "interactions"] == "89,716,264"
    assert shown.loc[("taobao", "this run"), "items"] == "1,200,000"
    assert shown.loc[("taobao", "paper"), "items"] == "4,068,211"


def test_one_seed_shows_its_mean_without_a_spread(tmp_path) -> None:
    """A standard deviation of one value is undefined, not 0: 'mean ± 0.0000' would read as no spread."""
    _write_runs(tmp_path, "default", "din", [0.81])
    table = aggregate(["default"], ["din"], tmp_path, tmp_path / "t2.csv", tmp_path / "m.json", tmp_path / "curves")
    assert pd.isna(table.auc_std.iloc[0]) and table.auc_mean.iloc[0] == pytest.approx(0.81)
    assert pd.isna(pd.read_csv(tmp_path / "t2.csv").auc_std.iloc[0])
    assert table2_display(pd.read_csv(tmp_path / "t2.csv")).loc["din", ("default", "AUC")] == "0.8100"


def test_the_index_compares_the_papers_numbers_with_ours_selected_as_its_code_selects(tmp_path) -> None:
    """The paper's AUC is its code's best test AUC: the index's difference takes our † column."""
    from sarn.report.index import table2_rows

    din = [0.85, 0.84, 0.855, 0.845]
    _write_runs(tmp_path, "electronics", "din", din, testsel=0.01)
    table = aggregate(["electronics"], ["din"], tmp_path, tmp_path / "t2.csv", tmp_path / "m.json", tmp_path / "curves")
    rows = table2_rows(table, ["din"])
    assert rows.loc["din", ("electronics", "ours † − paper")] == f"{np.mean(din) + 0.01 - 0.8523:+.4f}"
    assert rows.loc["din", ("electronics", "LogLoss †, paper's scale")].startswith(f"{0.5 * 0.45:.4f} ± ")


def test_a_runs_file_from_before_the_failure_check_is_refused_by_name(tmp_path) -> None:
    _write_runs(tmp_path, "default", "din", [0.8, 0.81])
    path = tmp_path / "default" / "din" / "runs.csv"
    pd.read_csv(path).rename(columns={"failed": "diverged"}).to_csv(path, index=False)
    with pytest.raises(DataError, match=rf"{path}: no 'failed' column .*train the run again"):
        aggregate(["default"], ["din"], tmp_path, tmp_path / "t2.csv", tmp_path / "m.json", tmp_path / "curves")
    assert not (tmp_path / "t2.csv").exists()


def test_a_users_own_model_stands_in_table_two_and_the_shipped_variants_apart() -> None:
    from sarn.report.index import table2_and_variants

    runs = ["din", "meanpool", "sarn", "rn_aux", "sarn_no_pos"]
    assert table2_and_variants(runs) == (["din", "meanpool", "sarn"], ["rn_aux", "sarn_no_pos"])


def test_the_headline_counts_models_and_variants_apart() -> None:
    from sarn.report.index import headline

    said = headline(["din", "sarn"], ["sarn_no_pos"], ["default"], [10], ["cpu fp32, torch 2.0"], "abc1234",
                    "2026-12-03")
    assert said == ("2 models and 1 variant on 1 dataset (default), 10 seeds each, trained on cpu fp32, torch 2.0; "
                    "commit <code>abc1234</code> of 2026-12-03.")
    assert headline(["sarn"], [], ["a", "b"], [1, 2], ["cpu fp32, torch 2.0", "cuda bf16, torch 2.0"], "x", "d"
                    ).startswith("1 model on 2 datasets (a, b), 1 or 2 seeds each, trained on cpu fp32, torch 2.0 or "
                                 "cuda bf16")


def test_the_papers_own_disagreement_on_dien_is_said_where_taobao_is_shown() -> None:
    from sarn.report import paper

    assert paper.errata(["default"]) == []
    (said,) = paper.errata(["books", "taobao"])
    table2, table3 = paper.table2()[("taobao", "dien")][0], paper.table3()[("taobao", "dien")][50]
    assert f"{table3:.4f}" in said and f"{table2:.4f}" in said and table2 != table3
