"""The tables as the report notebooks show them: 'mean ± std' cells, the paper's numbers beside ours."""

from __future__ import annotations

import pandas as pd

from sarn.report import paper


def table1_display(stats: list[dict]) -> pd.DataFrame:
    """Table I: each dataset's statistics (``stats.json`` of the preprocess stage), with the
    paper's row beneath where the dataset is one of the paper's."""
    rows = []
    for entry in stats:
        before = entry.get("source", {}).get("before_core")
        if before is not None and before != {c: entry[c] for c in paper.TABLE1_COLUMNS}:
            rows.append({"dataset": entry["dataset"], "source": "this run, before the core filter",
                         **{c: f"{before[c]:,}" for c in paper.TABLE1_COLUMNS}})
        rows.append({"dataset": entry["dataset"], "source": "this run",
                     **{c: f"{entry[c]:,}" for c in paper.TABLE1_COLUMNS}})
        if entry["dataset"] in paper.table1():
            row = paper.table1()[entry["dataset"]]
            rows.append({"dataset": entry["dataset"], "source": "paper",
                         **{c: f"{v:,}" for c, v in zip(paper.TABLE1_COLUMNS, row, strict=True)}})
    return pd.DataFrame(rows).set_index(["dataset", "source"])


# Column titles of the report's Table II; the paper's columns appear where a dataset is the paper's,
# the failed seeds where some failed.
TEST_SELECTED = "AUC selected on the test set (the paper's code; not a fair estimate)"
PAPER_SCALE = "LogLoss selected on the test set, on the paper's scale (0.5 · BCE)"
FAILED = "failed seeds"
FLAG = " ⚠"  # after the metrics of a row some of whose seeds failed


def table2_display(table: pd.DataFrame) -> pd.DataFrame:
    """Table II as the paper lays it out: one row per model, 'mean ± std' per dataset, the
    p-value of the Welch test against SARN, the AUC the reference code's test-set selection
    would report, and, for the paper's datasets, its AUC and LogLoss beside ours (our LogLoss at
    the test-selected evaluation, as the paper's code reports it, halved to the paper's scale: its
    code averages over the one-hot (B, 2) matrix). A row some
    of whose seeds failed is marked ⚠, with how many in a column of its own."""
    cells = table.assign(
        AUC=_flagged(mean_std_cells(table.auc_mean, table.auc_std), table.n_flagged),
        LogLoss=_flagged(mean_std_cells(table.logloss_mean, table.logloss_std), table.n_flagged),
        gAUC=mean_std_cells(table.gauc_mean, table.gauc_std),
        **{"p (AUC vs SARN)": number_cells(table.auc_p_vs_sarn, ".2g"),
           TEST_SELECTED: mean_std_cells(table.auc_testsel_mean, table.auc_testsel_std),
           "paper AUC": number_cells(table.paper_auc, ".4f"),
           "DIEN paper AUC": number_cells(table.dien_paper_auc, ".4f"),
           PAPER_SCALE: mean_std_cells(table.logloss_testsel_paper_scale_mean, table.logloss_testsel_paper_scale_std),
           "paper LogLoss": number_cells(table.paper_logloss, ".4f"),
           FAILED: [f"{k} of {n}" if k else ""
                      for k, n in zip(table.n_flagged, table.n_runs, strict=True)]},
    )
    values = ["AUC", "LogLoss", "gAUC", "p (AUC vs SARN)", TEST_SELECTED]
    if table.paper_auc.notna().any():
        values += ["paper AUC", PAPER_SCALE, "paper LogLoss"]
    if table.dien_paper_auc.notna().any():
        values.append("DIEN paper AUC")
    if table.n_flagged.any():
        values.append(FAILED)
    wide = cells.pivot(index="model", columns="dataset", values=values)
    wide = wide.swaplevel(axis=1).sort_index(axis=1, level=0, sort_remaining=False)
    return wide.reindex(index=list(dict.fromkeys(table.model)))


def table3_display(table: pd.DataFrame) -> pd.DataFrame:
    """Table III as the paper lays it out: models × lengths per dataset, AUC mean ± std,
    with the paper's AUC beneath where the dataset is one of the paper's; ⚠ where some seeds failed."""
    cells = table.assign(AUC=_flagged(mean_std_cells(table.auc_mean, table.auc_std), table.n_flagged),
                         paper=number_cells(table.paper_auc, ".4f"))
    long = cells.melt(id_vars=["dataset", "model", "max_len"], value_vars=["AUC", "paper"], var_name="source")
    long = long[~((long.source == "paper") & (long.value == ""))]
    wide = long.pivot(index=["model", "source"], columns=["dataset", "max_len"], values="value").fillna("")
    order = list(dict.fromkeys(table.model))
    return wide.reindex(sorted(wide.index, key=lambda k: (order.index(k[0]), k[1])))


def effects_display(table: pd.DataFrame) -> pd.DataFrame:
    """The protocol-effects table as the report shows it: AUC mean ± std under each choice, the
    baseline's, their difference and the paired t-test's p over the seeds."""
    return pd.DataFrame({
        "dataset": table.dataset, "model": table.model, "choice": table.choice, "what changes": table.changes,
        "AUC": mean_std_cells(table.auc_mean, table.auc_std),
        "baseline AUC": mean_std_cells(table.baseline_auc_mean, table.baseline_auc_std),
        "difference": number_cells(table.auc_difference, "+.4f"), "p": number_cells(table.auc_p, ".2g"),
        "reported": table.selection.map({"validation": "best validation AUC", "last": "last evaluation",
                                         "test": "best test AUC"}),
    }).set_index(["dataset", "model", "choice"])


def mean_std_cells(mean: pd.Series, std: pd.Series) -> list[str]:
    """'mean ± std' cells; the mean alone for one seed; '—' where the metric is not reported (AUC
    only for logs with labels)."""
    return ["—" if pd.isna(m) else f"{m:.4f}" if pd.isna(s) else f"{m:.4f} ± {s:.4f}"
            for m, s in zip(mean, std, strict=True)]


def _flagged(cells: list[str], n_flagged: pd.Series) -> list[str]:
    return [cell + FLAG if k else cell for cell, k in zip(cells, n_flagged, strict=True)]


def number_cells(values: pd.Series, fmt: str) -> list[str]:
    """Each value formatted, '' where there is none."""
    return ["" if pd.isna(v) else format(v, fmt) for v in values]
