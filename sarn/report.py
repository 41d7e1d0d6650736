"""Aggregate per-seed results into Table II and render the report notebooks.

Reads only stage outputs (``results/<dataset>/<model>/runs.csv``), never models or data.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pandas as pd

from sarn.atomic import atomic_path, write_json
from sarn.errors import DataError

log = logging.getLogger(__name__)

METRICS = ("auc", "logloss", "gauc")
TABLE2_COLUMNS = ["dataset", "model", "n_runs"] + [
    f"{m}_{s}" for m in METRICS for s in ("mean", "std")
] + ["best_epoch_mean"]


def _summarise(dataset: str, model: str, runs: pd.DataFrame) -> dict:
    row: dict = {"dataset": dataset, "model": model, "n_runs": int(len(runs))}
    for metric in METRICS:
        values = runs[f"test_{metric}"].astype(float)
        row[f"{metric}_mean"] = float(values.mean())
        # Sample standard deviation over seeds (0 for a single run, not NaN).
        row[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    row["best_epoch_mean"] = float(runs["best_epoch"].mean())
    return row


def aggregate(datasets: list[str], models: list[str], results_root: Path,
              table_path: Path, metrics_path: Path) -> pd.DataFrame:
    """Write Table II (mean and std over seeds) and the aggregate metrics file."""
    rows = []
    for dataset in datasets:
        for model in models:
            path = results_root / dataset / model / "runs.csv"
            if not path.is_file():
                raise DataError(f"{path}: not found (train {model} on {dataset} first)")
            rows.append(_summarise(dataset, model, pd.read_csv(path)))
    table = pd.DataFrame(rows, columns=TABLE2_COLUMNS)
    with atomic_path(table_path) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")
    metrics: dict = {}
    for row in rows:
        metrics.setdefault(row["dataset"], {})[row["model"]] = {
            k: v for k, v in row.items() if k not in ("dataset", "model")
        }
    write_json(metrics_path, metrics)
    log.info("aggregate: %d (dataset, model) rows written to %s", len(rows), table_path)
    return table


def table2_display(table: pd.DataFrame) -> pd.DataFrame:
    """Table II as the paper lays it out: one row per model, 'mean ± std' per dataset."""
    cells = table.assign(
        AUC=[f"{m:.4f} ± {s:.4f}" for m, s in zip(table.auc_mean, table.auc_std, strict=True)],
        LogLoss=[f"{m:.4f} ± {s:.4f}" for m, s in zip(table.logloss_mean, table.logloss_std, strict=True)],
        gAUC=[f"{m:.4f} ± {s:.4f}" for m, s in zip(table.gauc_mean, table.gauc_std, strict=True)],
    )
    wide = cells.pivot(index="model", columns="dataset", values=["AUC", "LogLoss", "gAUC"])
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
