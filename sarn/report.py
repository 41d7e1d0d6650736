"""Aggregate per-seed results into Table II and render the report notebooks.

Reads only stage outputs (``results/table2/...`` and ``results/table3/...``), never
models or data.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from sarn.atomic import atomic_path, write_json
from sarn.errors import DataError
from sarn.train.metrics import METRICS

log = logging.getLogger(__name__)

REFERENCE_MODEL = "sarn"  # the paper's model; every other row is tested against it
_STATS = ("mean", "std")
# Today's columns first, then: the metrics at each seed's best *test* AUC (the reference code's
# selection, reported only to show how much it adds), and the LogLoss on the scale the paper's
# code reports it (the mean over the one-hot (B, 2) matrix: 0.5 · BCE).
TABLE2_COLUMNS = ["dataset", "model", "n_runs"] + [
    f"{m}_{s}" for m in METRICS for s in _STATS
] + ["best_epoch_mean", "auc_p_vs_sarn", "paper_auc", "paper_logloss", "auc_minus_paper"] + [
    f"{m}_testsel_{s}" for m in METRICS for s in _STATS
] + ["logloss_paper_scale_mean", "logloss_paper_scale_std"]

# The paper's Table I (users, items, categories, interactions), for comparison.
PAPER_TABLE1: dict[str, tuple[int, int, int, int]] = {
    "electronics": (192_403, 63_001, 801, 1_689_188),
    "books": (630_668, 367_982, 1_600, 8_898_041),
    "taobao": (979_533, 4_068_211, 9_406, 89_716_264),
}
TABLE1_COLUMNS = ("users", "items", "categories", "interactions")


def table1_display(stats: list[dict]) -> pd.DataFrame:
    """Table I: each dataset's statistics (``stats.json`` of the preprocess stage), with the
    paper's row beneath where the dataset is one of the paper's."""
    rows = []
    for entry in stats:
        before = entry.get("source", {}).get("before_core")
        if before is not None and before != {c: entry[c] for c in TABLE1_COLUMNS}:
            rows.append({"dataset": entry["dataset"], "source": "this run, before the core filter",
                         **{c: f"{before[c]:,}" for c in TABLE1_COLUMNS}})
        rows.append({"dataset": entry["dataset"], "source": "this run",
                     **{c: f"{entry[c]:,}" for c in TABLE1_COLUMNS}})
        if entry["dataset"] in PAPER_TABLE1:
            rows.append({"dataset": entry["dataset"], "source": "paper",
                         **{c: f"{v:,}" for c, v in zip(TABLE1_COLUMNS, PAPER_TABLE1[entry["dataset"]])}})
    return pd.DataFrame(rows).set_index(["dataset", "source"])


# The paper's Table II (AUC, LogLoss; ATRank's LogLoss is not reported), keyed by the
# dataset names this project gives the public datasets. Numbers from the paper, for
# comparison only; nothing here is computed from them.
PAPER_TABLE2: dict[tuple[str, str], tuple[float, float | None]] = {
    ("electronics", "wide_deep"): (0.8444, 0.2448), ("books", "wide_deep"): (0.7599, 0.2849),
    ("taobao", "wide_deep"): (0.8111, 0.2742),
    ("electronics", "pnn"): (0.8498, 0.2402), ("books", "pnn"): (0.7603, 0.3585),
    ("taobao", "pnn"): (0.8217, 0.2525),
    ("electronics", "gru"): (0.8511, 0.2535), ("books", "gru"): (0.7960, 0.2870),
    ("taobao", "gru"): (0.8411, 0.2541),
    ("electronics", "atrank"): (0.8548, None), ("books", "atrank"): (0.7533, None),
    ("taobao", "atrank"): (0.8806, None),
    ("electronics", "din"): (0.8523, 0.2731), ("books", "din"): (0.7708, 0.6352),
    ("taobao", "din"): (0.8850, 0.2140),
    ("electronics", "dien"): (0.8682, 1.7522), ("books", "dien"): (0.8554, 1.1258),
    ("taobao", "dien"): (0.8732, 0.4387),
    ("electronics", "rn"): (0.8702, 0.2320), ("books", "rn"): (0.8423, 0.2457),
    ("taobao", "rn"): (0.8682, 0.2347),
    ("electronics", "sarn"): (0.8715, 0.2283), ("books", "sarn"): (0.8750, 0.2261),
    ("taobao", "sarn"): (0.9032, 0.1947),
}


# The paper's Table III (AUC by maximum history length).
PAPER_TABLE3: dict[tuple[str, str], dict[int, float]] = {
    ("taobao", "atrank"): {10: 0.8664, 20: 0.8757, 30: 0.8661, 40: 0.8786, 50: 0.8806},
    ("taobao", "din"): {10: 0.7837, 20: 0.8331, 30: 0.8647, 40: 0.8652, 50: 0.8850},
    ("taobao", "dien"): {10: 0.7238, 20: 0.7814, 30: 0.8372, 40: 0.8560, 50: 0.8806},
    ("taobao", "rn"): {10: 0.8665, 20: 0.8737, 30: 0.8797, 40: 0.8828, 50: 0.8682},
    ("taobao", "sarn"): {10: 0.8684, 20: 0.8786, 30: 0.8899, 40: 0.8975, 50: 0.9032},
    ("books", "atrank"): {10: 0.7553, 20: 0.7520, 30: 0.7533},
    ("books", "din"): {10: 0.7579, 20: 0.7701, 30: 0.7708},
    ("books", "dien"): {10: 0.8499, 20: 0.8545, 30: 0.8554},
    ("books", "rn"): {10: 0.8173, 20: 0.8305, 30: 0.8423},
    ("books", "sarn"): {10: 0.8622, 20: 0.8664, 30: 0.8750},
}
TABLE3_COLUMNS = ["dataset", "model", "max_len", "n_runs", "auc_mean", "auc_std",
                  "logloss_mean", "logloss_std", "gauc_mean", "gauc_std", "paper_auc"]


def _read_runs(path: Path, hint: str) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: not found ({hint})")
    return pd.read_csv(path)


def _mean_std(values: pd.Series) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation over seeds (std 0 for one run); None where the
    metric is not reported (a log with labels: AUC only)."""
    values = values.astype(float)
    if values.isna().all():
        return None, None
    return float(values.mean()), (float(values.std(ddof=1)) if len(values) > 1 else 0.0)


def _metric_summary(runs: pd.DataFrame, column: str = "test_{metric}", name: str = "{metric}") -> dict:
    """Mean and std over seeds of each test metric of runs.csv (``column`` names its columns)."""
    row: dict = {"n_runs": len(runs)}
    for metric in METRICS:
        mean, std = _mean_std(runs[column.format(metric=metric)])
        row[f"{name.format(metric=metric)}_mean"], row[f"{name.format(metric=metric)}_std"] = mean, std
    return row


def welch_p_value(a: np.ndarray, b: np.ndarray) -> float | None:
    """Two-sided Welch t-test p-value of equal means; None where it is undefined."""
    if len(a) < 2 or len(b) < 2 or (np.var(a) == 0 and np.var(b) == 0):
        return None
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def _summarise(dataset: str, model: str, runs: pd.DataFrame, reference: pd.DataFrame | None) -> dict:
    row: dict = {"dataset": dataset, "model": model, **_metric_summary(runs)}
    row["best_epoch_mean"] = float(runs["best_epoch"].mean())
    row["auc_p_vs_sarn"] = (
        welch_p_value(runs["test_auc"].to_numpy(float), reference["test_auc"].to_numpy(float))
        if reference is not None and model != REFERENCE_MODEL else None
    )
    paper_auc, paper_logloss = PAPER_TABLE2.get((dataset, model), (None, None))
    row["paper_auc"], row["paper_logloss"] = paper_auc, paper_logloss
    row["auc_minus_paper"] = row["auc_mean"] - paper_auc if paper_auc is not None else None
    row |= {k: v for k, v in _metric_summary(runs, "testsel_test_{metric}", "{metric}_testsel").items()
            if k != "n_runs"}
    half = None if row["logloss_mean"] is None else (0.5 * row["logloss_mean"], 0.5 * row["logloss_std"])
    row["logloss_paper_scale_mean"], row["logloss_paper_scale_std"] = half or (None, None)
    return row


def aggregate(datasets: list[str], models: list[str], results_root: Path,
              table_path: Path, metrics_path: Path) -> pd.DataFrame:
    """Write Table II (mean and std over seeds) and the aggregate metrics file."""
    rows = []
    for dataset in datasets:
        runs = {
            model: _read_runs(results_root / dataset / model / "runs.csv", f"train {model} on {dataset} first")
            for model in models
        }
        reference = runs.get(REFERENCE_MODEL)
        rows += [_summarise(dataset, model, frame, reference) for model, frame in runs.items()]
    table = pd.DataFrame(rows, columns=TABLE2_COLUMNS)
    with atomic_path(table_path) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")
    metrics: dict = {}
    for row in rows:
        metrics.setdefault(row["dataset"], {})[row["model"]] = {
            k: v for k, v in row.items() if k not in ("dataset", "model") and v is not None
        }
    write_json(metrics_path, metrics)
    log.info("aggregate: %d (dataset, model) rows written to %s", len(rows), table_path)
    return table


def aggregate_sweep(sweep, results_root: Path, table_path: Path) -> pd.DataFrame:
    """Write Table III: one row per (dataset, model, maximum length)."""
    rows = []
    for dataset in sweep.datasets:
        for model in sweep.models:
            for length in sweep.lengths:
                path = results_root / dataset / model / f"len{length}" / "runs.csv"
                runs = _read_runs(path, f"run the sweep of {model} on {dataset} at length {length}")
                paper = PAPER_TABLE3.get((dataset, model), {}).get(length)
                rows.append({"dataset": dataset, "model": model, "max_len": length,
                             **_metric_summary(runs), "paper_auc": paper})
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


def _describe(override: dict) -> str:
    """``training.lr_schedule={kind: per_epoch, factor: 0.5}; ...``: what a choice changes, as
    params.yaml would write it."""
    def flow(value: object) -> str:
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"
        return str(value)

    return "; ".join(f"{section}.{key}={flow(value)}" for section, values in override.items()
                     for key, value in values.items())


def _effect(dataset: str, model: str, choice: str, changes: str, runs: pd.Series, baseline: pd.Series,
            selection: str) -> dict:
    mean, std = _mean_std(runs)
    base_mean, base_std = _mean_std(baseline)
    return {"dataset": dataset, "model": model, "choice": choice, "changes": changes, "n_runs": len(runs),
            "selection": selection, "auc_mean": mean, "auc_std": std, "baseline_auc_mean": base_mean,
            "baseline_auc_std": base_std, "auc_difference": mean - base_mean,
            "auc_p": welch_p_value(runs.to_numpy(float), baseline.to_numpy(float))}


def aggregate_effects(params, results_root: Path, baseline_root: Path, table_path: Path) -> pd.DataFrame:
    """Write the protocol-effects table: for every measured (dataset, model), the test AUC with
    each reference-code choice against Table II's run of the same seeds (the baseline).

    Each choice is compared under its own selection rule: a run without a validation set
    reports its last evaluation, and so its baseline is Table II's last evaluation too. The
    reference code's test-set selection needs no run: it is each baseline seed's best test AUC.
    """
    effects = params.protocol_effects
    rows = []
    for dataset in effects.datasets:
        for model in effects.models:
            base = _read_runs(baseline_root / dataset / model / "runs.csv", f"train {model} on {dataset} first")
            base = base.iloc[: effects.n_seeds]
            rows.append(_effect(dataset, model, TEST_SELECTION, "the evaluation with the best test AUC is reported "
                                "(the reference code's rule)", base["testsel_test_auc"], base["test_auc"],
                                "test"))
            for choice, override in effects.choices.items():
                runs = _read_runs(results_root / dataset / model / choice / "runs.csv",
                                  f"run the protocol effects of {model} on {dataset}")
                selection = str(runs["selection"].iloc[0])
                baseline = base["last_test_auc"] if selection == "last" else base["test_auc"]
                rows.append(_effect(dataset, model, choice, _describe(override), runs["test_auc"], baseline,
                                    selection))
    table = pd.DataFrame(rows, columns=EFFECTS_COLUMNS)
    with atomic_path(table_path) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")
    log.info("effects: %d rows written to %s", len(rows), table_path)
    return table


def effects_display(table: pd.DataFrame) -> pd.DataFrame:
    """The protocol-effects table as the report shows it: AUC mean ± std under each choice, the
    baseline's, their difference and the Welch p-value."""
    return pd.DataFrame({
        "dataset": table.dataset, "model": table.model, "choice": table.choice, "what changes": table.changes,
        "AUC": _pm(table.auc_mean, table.auc_std),
        "baseline AUC": _pm(table.baseline_auc_mean, table.baseline_auc_std),
        "difference": _num(table.auc_difference, "+.4f"), "p": _num(table.auc_p, ".2g"),
        "reported": table.selection.map({"validation": "best validation AUC", "last": "last evaluation",
                                         "test": "best test AUC"}),
    }).set_index(["dataset", "model", "choice"])


def table3_display(table: pd.DataFrame) -> pd.DataFrame:
    """Table III as the paper lays it out: models × lengths per dataset, AUC mean ± std,
    with the paper's AUC beneath where the dataset is one of the paper's."""
    cells = table.assign(AUC=_pm(table.auc_mean, table.auc_std), paper=_num(table.paper_auc, ".4f"))
    long = cells.melt(id_vars=["dataset", "model", "max_len"], value_vars=["AUC", "paper"], var_name="source")
    long = long[~((long.source == "paper") & (long.value == ""))]
    wide = long.pivot(index=["model", "source"], columns=["dataset", "max_len"], values="value").fillna("")
    order = list(dict.fromkeys(table.model))
    return wide.reindex(sorted(wide.index, key=lambda k: (order.index(k[0]), k[1])))


def _pm(mean: pd.Series, std: pd.Series) -> list[str]:
    """'mean ± std' cells; '—' where the metric is not reported (AUC only for logs with labels)."""
    return ["—" if pd.isna(m) else f"{m:.4f} ± {s:.4f}" for m, s in zip(mean, std, strict=True)]


def _num(values: pd.Series, fmt: str) -> list[str]:
    return ["" if pd.isna(v) else format(v, fmt) for v in values]


# Column titles of the report's Table II; the paper's columns appear where a dataset is the paper's.
TEST_SELECTED = "AUC selected on the test set (the paper's code; not a fair estimate)"
PAPER_SCALE = "LogLoss on the paper's scale (0.5 · BCE)"


def table2_display(table: pd.DataFrame) -> pd.DataFrame:
    """Table II as the paper lays it out: one row per model, 'mean ± std' per dataset, the
    p-value of the Welch test against SARN, the AUC the reference code's test-set selection
    would report, and, for the paper's datasets, its AUC and LogLoss beside ours (our LogLoss
    halved to the paper's scale: its code averages over the one-hot (B, 2) matrix)."""
    cells = table.assign(
        AUC=_pm(table.auc_mean, table.auc_std),
        LogLoss=_pm(table.logloss_mean, table.logloss_std),
        gAUC=_pm(table.gauc_mean, table.gauc_std),
        **{"p (AUC vs SARN)": _num(table.auc_p_vs_sarn, ".2g"),
           TEST_SELECTED: _pm(table.auc_testsel_mean, table.auc_testsel_std),
           "paper AUC": _num(table.paper_auc, ".4f"),
           PAPER_SCALE: _pm(table.logloss_paper_scale_mean, table.logloss_paper_scale_std),
           "paper LogLoss": _num(table.paper_logloss, ".4f")},
    )
    values = ["AUC", "LogLoss", "gAUC", "p (AUC vs SARN)", TEST_SELECTED]
    if table.paper_auc.notna().any():
        values += ["paper AUC", PAPER_SCALE, "paper LogLoss"]
    wide = cells.pivot(index="model", columns="dataset", values=values)
    wide = wide.swaplevel(axis=1).sort_index(axis=1, level=0, sort_remaining=False)
    return wide.reindex(index=list(dict.fromkeys(table.model)))


def render_notebook(template: Path, executed: Path, html: Path, parameters: dict) -> None:
    """Execute ``template`` with papermill and export it to HTML, both atomically.

    The kernel is pinned to ``python3`` and the notebook checks that it runs on this
    very interpreter: another ``python3`` kernelspec on JUPYTER_PATH would otherwise run
    the report in the wrong environment without a word.
    """
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    params = {"expected_python": sys.executable, **parameters}
    with atomic_path(executed) as tmp_nb:
        papermill.execute_notebook(
            str(template), str(tmp_nb), parameters=params, kernel_name="python3",
            cwd=str(Path.cwd()), progress_bar=False,
        )
        body, _ = HTMLExporter().from_notebook_node(nbformat.read(tmp_nb, as_version=4))
        with atomic_path(html) as tmp_html:
            tmp_html.write_text(body, encoding="utf-8")
    log.info("report: %s and %s written", executed, html)


INDEX_ENTRIES = (
    ("Tables I-III", "tables.html", "Table II (eight models, ablations, significance) and Table III"),
    ("Fig. 4", "fig4.html", "LogLoss per epoch with and without the relative positional module"),
    ("Fig. 5", "fig5.html", "similitude relations during training (a) and for one user (b)"),
    ("Fig. 6", "fig6.html", "attention over relation pairs for a positive and a negative candidate"),
)


def _commit() -> str:
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return out.stdout.strip() + (" with uncommitted changes" if dirty else "")


def write_index(reports: Path, params_path: Path) -> None:
    """``reports/index.html``: links to every table and figure, the params and the commit."""
    import html

    rows = []
    for title, target, what in INDEX_ENTRIES:
        if not (reports / target).is_file():
            raise DataError(f"{reports / target}: not found (render it before the index)")
        rows.append(f'<li><a href="{target}">{title}</a>: {html.escape(what)}</li>')
    figures = sorted((reports / "figures").glob("*.png")) if (reports / "figures").is_dir() else []
    images = "".join(
        f'<li><a href="figures/{p.name}">{p.name}</a> (<a href="figures/{p.with_suffix(".svg").name}">svg</a>)</li>'
        for p in figures
    )
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>SARN reproduction report</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}pre{{background:#f4f4f4;padding:1em;overflow:auto}}</style>
</head><body>
<h1>SARN reproduction report</h1>
<p>Commit: <code>{html.escape(_commit())}</code></p>
<h2>Tables and figures</h2><ul>{''.join(rows)}</ul>
<h2>Figure files</h2><ul>{images}</ul>
<p>Data: <a href="table2.csv">table2.csv</a>, <a href="table3.csv">table3.csv</a>,
<a href="metrics.json">metrics.json</a>; the CSV behind each figure lies beside it in figures/.</p>
<h2>Parameters ({html.escape(params_path.name)})</h2>
<pre>{html.escape(params_path.read_text(encoding="utf-8"))}</pre>
</body></html>
"""
    with atomic_path(reports / "index.html") as tmp:
        tmp.write_text(body, encoding="utf-8")
    log.info("index: %s written", reports / "index.html")
