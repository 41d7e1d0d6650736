"""Per-seed results (``runs.csv``) → Table II, Table III and the protocol-effects table."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from sarn.atomic import atomic_dir, atomic_path, write_json
from sarn.errors import DataError
from sarn.params import ChoiceSpec, effects_datasets
from sarn.report import paper
from sarn.train.metrics import METRICS
from sarn.train.record import read_run_record

log = logging.getLogger(__name__)

REFERENCE_MODEL = "sarn"  # the paper's model; every other row is tested against it
_STATS = ("mean", "std")
# Today's columns first, then: the metrics at each seed's best *test* AUC (the reference code's
# selection, reported only to show how much it adds), and the LogLoss on the scale the paper's
# code reports it (the mean over the one-hot (B, 2) matrix: 0.5 · BCE).
TABLE2_COLUMNS = ["dataset", "model", "n_runs"] + [
    f"{m}_{s}" for m in METRICS for s in _STATS
] + ["best_epoch_mean", "auc_p_vs_sarn", "paper_auc", "paper_logloss", "auc_testsel_minus_paper",
   "dien_paper_auc"] + [
    f"{m}_testsel_{s}" for m in METRICS for s in _STATS
] + ["logloss_testsel_paper_scale_mean", "logloss_testsel_paper_scale_std", "n_flagged", "trained_on"]
# The paper's numbers are what its code reports, at each run's evaluation with the best *test*
# AUC: compared with ours, they stand beside our test-selected numbers (``auc_testsel_minus_paper``;
# the LogLoss halved to the code's scale, ``logloss_testsel_paper_scale_*``), not beside the
# validation-selected ones the table reports.
# n_flagged: how many of the n_runs seeds failed (runs.csv: ``failed`` says why); they count
# in the means all the same, and the report marks their rows.
# trained_on: the device, precision and torch version of the run (its run.json): a GPU's numbers
# differ from the CPU's in the last digits, and in more with reduced precision.

TABLE3_COLUMNS = ["dataset", "model", "max_len", "n_runs", "auc_mean", "auc_std",
                  "logloss_mean", "logloss_std", "gauc_mean", "gauc_std", "paper_auc", "n_flagged"]


def _read_runs(path: Path, hint: str) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: not found ({hint})")
    runs = pd.read_csv(path)
    if "failed" not in runs:
        raise DataError(f"{path}: no 'failed' column (written by an earlier version, which named it "
                        "'diverged' or checked nothing); train the run again")
    return runs


def _trained_on(folder: Path) -> str:
    """What trained the run in ``folder``, from its run.json: device, precision, torch version."""
    meta = read_run_record(folder)
    return f"{meta['device']} {meta['precision']}, torch {meta['torch']}"


def _mean_std(values: pd.Series) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation over seeds (no std for one run: a 0 would read as no
    spread); None where the metric is not reported (a log with labels: AUC only)."""
    values = values.astype(float).dropna()
    if values.empty:
        return None, None
    return float(values.mean()), (float(values.std(ddof=1)) if len(values) > 1 else None)


def _metric_summary(runs: pd.DataFrame, column: str = "test_{metric}", name: str = "{metric}") -> dict:
    """Mean and std over seeds of each test metric of runs.csv (``column`` names its columns),
    and how many of the seeds failed."""
    row: dict = {"n_runs": len(runs), "n_flagged": int(runs["failed"].notna().sum())}
    for metric in METRICS:
        mean, std = _mean_std(runs[column.format(metric=metric)])
        row[f"{name.format(metric=metric)}_mean"], row[f"{name.format(metric=metric)}_std"] = mean, std
    return row


def welch_p_value(a: np.ndarray, b: np.ndarray) -> float | None:
    """Two-sided Welch t-test p-value of equal means; None where it is undefined. For two
    models, whose seeds share no starting weights."""
    if len(a) < 2 or len(b) < 2 or (np.var(a) == 0 and np.var(b) == 0):
        return None
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def paired_p_value(a: np.ndarray, b: np.ndarray) -> float | None:
    """Two-sided paired t-test p-value of a zero mean difference ``a − b``; None where it is
    undefined (fewer than two pairs, or every difference the same). For one model trained
    twice from each seed, or read twice from one run: what the seed fixes is shared."""
    differences = a - b
    if len(differences) < 2 or np.ptp(differences) <= 1e-12 * max(1.0, float(np.abs(differences).max())):
        return None
    return float(stats.ttest_rel(a, b).pvalue)


def _summarise(dataset: str, model: str, runs: pd.DataFrame, reference: pd.DataFrame | None) -> dict:
    row: dict = {"dataset": dataset, "model": model, **_metric_summary(runs)}
    row["best_epoch_mean"] = float(runs["best_epoch"].mean())
    row["auc_p_vs_sarn"] = (
        welch_p_value(runs["test_auc"].to_numpy(float), reference["test_auc"].to_numpy(float))
        if reference is not None and model != REFERENCE_MODEL else None
    )
    paper_auc, paper_logloss = paper.table2().get((dataset, model), (None, None))
    row["paper_auc"], row["paper_logloss"] = paper_auc, paper_logloss
    row["dien_paper_auc"] = paper.dien_paper_auc().get((dataset, model))
    row |= {k: v for k, v in _metric_summary(runs, "testsel_test_{metric}", "{metric}_testsel").items()
            if k not in ("n_runs", "n_flagged")}
    row["auc_testsel_minus_paper"] = row["auc_testsel_mean"] - paper_auc if paper_auc is not None else None
    row["logloss_testsel_paper_scale_mean"], row["logloss_testsel_paper_scale_std"] = (
        None if value is None else 0.5 * value for value in (row["logloss_testsel_mean"], row["logloss_testsel_std"]))
    return row


def training_curves(history: pd.DataFrame) -> pd.DataFrame:
    """A run's curves over its evaluations, mean over the seeds: step, fraction of epochs,
    whether it ends an epoch, train LogLoss and every evaluated metric (DVC's plots)."""
    steps_per_epoch = history.loc[history.epoch_end == 1, "step"].min()
    values = [c for c in history.columns if c not in ("seed", "epoch", "step", "epoch_end")]
    curves = history.groupby("step", sort=True).agg({"epoch_end": "max", **{c: "mean" for c in values}})
    curves.insert(0, "epochs", curves.index / steps_per_epoch)
    return curves.reset_index()


def aggregate(datasets: list[str], models: list[str], results_root: Path,
              table_path: Path, metrics_path: Path, curves_dir: Path) -> pd.DataFrame:
    """Write Table II (mean and std over seeds), the aggregate metrics file, and each run's
    training curves (``curves_dir/<dataset>/<model>.csv``, declared as DVC plots)."""
    rows = []
    for dataset in datasets:
        runs = {
            model: _read_runs(results_root / dataset / model / "runs.csv", f"train {model} on {dataset} first")
            for model in models
        }
        reference = runs.get(REFERENCE_MODEL)
        rows += [_summarise(dataset, model, frame, reference)
                 | {"trained_on": _trained_on(results_root / dataset / model)} for model, frame in runs.items()]
    table = pd.DataFrame(rows, columns=TABLE2_COLUMNS)
    with atomic_path(table_path) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")
    metrics: dict = {}
    for row in rows:
        metrics.setdefault(row["dataset"], {})[row["model"]] = {
            k: v for k, v in row.items() if k not in ("dataset", "model", "trained_on") and v is not None
        }
    write_json(metrics_path, metrics)
    with atomic_dir(curves_dir) as tmp:
        for dataset in datasets:
            (tmp / dataset).mkdir()
            for model in models:
                history = pd.read_csv(results_root / dataset / model / "history.csv")
                training_curves(history).to_csv(tmp / dataset / f"{model}.csv", index=False, lineterminator="\n")
    log.info("aggregate: %d (dataset, model) rows written to %s, curves to %s", len(rows), table_path, curves_dir)
    return table


def aggregate_sweep(sweep, results_root: Path, table_path: Path) -> pd.DataFrame:
    """Write Table III: one row per (dataset, model, maximum length)."""
    rows = []
    for dataset in sweep.datasets:
        for model in sweep.models:
            for length in sweep.lengths:
                path = results_root / dataset / model / f"len{length}" / "runs.csv"
                runs = _read_runs(path, f"run the sweep of {model} on {dataset} at length {length}")
                paper_auc = paper.table3().get((dataset, model), {}).get(length)
                rows.append({"dataset": dataset, "model": model, "max_len": length,
                             **_metric_summary(runs), "paper_auc": paper_auc})
    table = pd.DataFrame(rows, columns=TABLE3_COLUMNS)
    with atomic_path(table_path) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")
    log.info("table3: %d rows written to %s", len(rows), table_path)
    return table


# The reference code's choices the protocol-effects table measures beside those configured in
# params.yaml (protocol_effects.choices): this one needs no run of its own.
TEST_SELECTION = "test_set_selection"
EFFECTS_COLUMNS = ["dataset", "model", "choice", "changes", "n_runs", "selection", "auc_mean", "auc_std",
                   "baseline_auc_mean", "baseline_auc_std", "auc_difference", "auc_p"]


def _describe(choice: ChoiceSpec) -> str:
    """``training.lr_schedule={kind: per_epoch, factor: 0.5}; ...``: what a choice changes, as
    params.yaml would write it."""
    def flow(value: object) -> str:
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"
        return str(value)

    return "; ".join(f"{section}.{key}={flow(value)}" for section, values in choice.changes().items()
                     for key, value in values.items())


def _effect(dataset: str, model: str, choice: str, changes: str, runs: pd.Series, baseline: pd.Series,
            selection: str) -> dict:
    """One row of the effects table: ``runs`` and ``baseline`` are test AUCs indexed by seed, the
    same seeds in both (:func:`_paired`)."""
    mean, std = _mean_std(runs)
    base_mean, base_std = _mean_std(baseline)
    return {"dataset": dataset, "model": model, "choice": choice, "changes": changes, "n_runs": len(runs),
            "selection": selection, "auc_mean": mean, "auc_std": std, "baseline_auc_mean": base_mean,
            "baseline_auc_std": base_std, "auc_difference": mean - base_mean,
            "auc_p": paired_p_value(runs.to_numpy(float), baseline.to_numpy(float))}


def _paired(runs: pd.DataFrame, base: pd.DataFrame, path: Path) -> pd.DataFrame:
    """The baseline's rows (indexed by seed) of ``runs``' seeds, in their order: a choice is
    compared seed by seed."""
    missing = sorted(set(runs["seed"]) - set(base.index))
    if missing:
        raise DataError(f"{path}: seeds {missing} have no Table II run to compare with (experiment.seed "
                        "changed since, or fewer Table II seeds than protocol_effects.n_seeds); run both stages "
                        "again")
    return base.loc[runs["seed"]]


def aggregate_effects(params, results_root: Path, baseline_root: Path, table_path: Path) -> pd.DataFrame:
    """Write the protocol-effects table: for every measured (dataset, model), the test AUC with
    each reference-code choice against Table II's run of the same seeds (the baseline), with the
    paired t-test's p over those seeds.

    Each choice is compared under its own selection rule: a run without a validation set
    reports its last evaluation, and so its baseline is Table II's last evaluation too. The
    reference code's test-set selection needs no run: it is each baseline seed's best test AUC.
    """
    effects = params.protocol_effects
    rows = []
    for dataset in effects_datasets(params):
        for model in effects.models:
            base = _read_runs(baseline_root / dataset / model / "runs.csv", f"train {model} on {dataset} first")
            base = base.iloc[: effects.n_seeds].set_index("seed")
            rows.append(_effect(dataset, model, TEST_SELECTION, "the evaluation with the best test AUC is reported "
                                "(the reference code's rule)", base["testsel_test_auc"], base["test_auc"],
                                "test"))
            for name, choice in effects.choices_for(model).items():
                path = results_root / dataset / model / name / "runs.csv"
                runs = _read_runs(path, f"run the protocol effects of {model} on {dataset}")
                selection = str(runs["selection"].iloc[0])
                paired = _paired(runs, base, path)
                baseline = paired["last_test_auc"] if selection == "last" else paired["test_auc"]
                rows.append(_effect(dataset, model, name, _describe(choice), runs.set_index("seed")["test_auc"],
                                    baseline, selection))
    table = pd.DataFrame(rows, columns=EFFECTS_COLUMNS)
    with atomic_path(table_path) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")
    log.info("effects: %d rows written to %s", len(rows), table_path)
    return table
