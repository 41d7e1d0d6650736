"""``reports/index.html``: the one page a reader opens.

The headline (datasets, runs, commit), Table II with the paper's numbers and the
differences beside ours, the other runs (RN with SARN's losses, the ablations), the
protocol effects, Tables I and III, the figures with their captions, and the parameters,
folded. It reads only stage outputs, links the executed notebooks (the audit trail) and the
CSV files behind each table and figure, and needs no network: it opens from the file system.
"""

from __future__ import annotations

import html
import json
import logging
import subprocess
from pathlib import Path

import pandas as pd

from sarn.atomic import atomic_path
from sarn.errors import DataError
from sarn.report import paper
from sarn.report.display import effects_display, mean_std_cells, number_cells, table1_display, table3_display

log = logging.getLogger(__name__)

NOTEBOOKS = ("tables.html", "fig4.html", "fig5.html", "fig6.html")
SIGNIFICANCE = 0.05  # Welch's t-test against SARN over the seeds
DIEN_PAPER_NOTE = ("‡ The DIEN paper's own DIN and DIEN, under the protocol the SARN paper says it follows "
                   "(AAAI 2019, Table 2): about 0.09 below the SARN paper's on Electronics. ")

# The runs params.yaml ships beside the paper's Table II, and what each changes.
VARIANTS = {
    "rn_aux": "RN trained with SARN's two extra losses",
    "sarn_no_pos": "SARN without the relative positional loss (α = 0)",
    "sarn_no_aux": "SARN without the auxiliary loss (β = 0)",
}

# (image, title, caption, notebook, data files behind it)
FIGURES = (
    ("figures/fig4.png", "Fig. 4: LogLoss during training, with and without the relative positional module",
     ("Mean over Table II's seeds; solid lines the test set at every evaluation, dotted lines the "
     "training batches' mean LogLoss since the previous evaluation (as the paper's code prints it); the legend names SARN with "
     "and without the module (α = 0). LogLoss is the binary cross-entropy, twice the scale the "
     "paper's code logs."), "fig4.html", ("figures/fig4.csv",)),
    ("figures/fig5a.png", "Fig. 5a: the similitude relations R during training",
     ("R between the most popular items of the chosen categories at the start, middle and end of "
     "SARN's training, items grouped by category."), "fig5.html", ("figures/data/figures.json",)),
    ("figures/fig5b.png", "Fig. 5b: R among the items one test user visited",
     "From the weights of the reported evaluation; row i is the source item, column j the target.",
     "fig5.html", ("figures/data/fig5b.csv",)),
    ("figures/fig6.png", "Fig. 6: attention over the relation pairs of that user",
     ("The attentive max-pooling scores s_ij for the user's negative and positive candidate; the "
     "highest pair outlined."), "fig6.html", ("figures/data/fig6_negative.csv", "figures/data/fig6_positive.csv")),
)

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:72em;margin:1.5em auto;padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
.headline{color:#444}table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.note{color:#555;font-size:.92em}
figure{margin:1.2em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.92em;color:#444}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:.85em}.worse{color:#a00}.better{color:#060}
"""


def _commit() -> tuple[str, str]:
    """The commit the reports came from (with a note when the checkout has changes) and its date."""
    try:
        head = subprocess.run(["git", "log", "-1", "--format=%H %cs"], capture_output=True, text=True,
                              check=True).stdout.split()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)", "unknown"
    return head[0] + (" with uncommitted changes" if dirty else ""), head[1]


def table2_and_variants(runs: list[str]) -> tuple[list[str], list[str]]:
    """The runs Table II shows (the paper's models and any of the user's own, in order) and the
    variants of ``VARIANTS`` that the index shows apart."""
    return [m for m in runs if m not in VARIANTS], [m for m in runs if m in VARIANTS]


def _counted(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def headline(main: list[str], others: list[str], datasets: list[str], seeds: list[int], trained_on: list[str],
             commit: str, date: str) -> str:
    """The report's first line: what ran, on what, how often, on which device, from which commit (HTML)."""
    variants = f" and {_counted(len(others), 'variant')}" if others else ""
    return (f"{_counted(len(main), 'model')}{variants} on {_counted(len(datasets), 'dataset')} "
            f"({', '.join(datasets)}), {' or '.join(map(str, seeds))} seeds each, trained on "
            f"{html.escape(' or '.join(trained_on))}; commit <code>{html.escape(commit)}</code> of {date}.")


def table2_rows(table: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """Table II as the index shows it: per dataset the test AUC (mean ± std over seeds, marked *
    where Welch's test against SARN gives p < 0.05, ⚠ where a seed failed), the paper's AUC and our difference to it,
    the LogLoss, and the AUC the reference code's test-set selection would report."""
    columns: dict[tuple[str, str], list[str]] = {}
    for dataset in dict.fromkeys(table.dataset):
        rows = table[table.dataset == dataset].set_index("model").reindex(models)
        marked = [("*" if p < SIGNIFICANCE else "") + (" ⚠" if flagged else "")
                  for p, flagged in zip(rows.auc_p_vs_sarn.fillna(1.0), rows.n_flagged.fillna(0), strict=True)]
        columns[(dataset, "AUC")] = [cell + k for cell, k in zip(mean_std_cells(rows.auc_mean, rows.auc_std), marked,
                                                                  strict=True)]
        if rows.paper_auc.notna().any():
            columns[(dataset, "paper AUC")] = number_cells(rows.paper_auc, ".4f")
            columns[(dataset, "ours † − paper")] = number_cells(rows.auc_testsel_minus_paper, "+.4f")
        if rows.dien_paper_auc.notna().any():
            columns[(dataset, "DIEN paper's AUC ‡")] = number_cells(rows.dien_paper_auc, ".4f")
        columns[(dataset, "LogLoss")] = mean_std_cells(rows.logloss_mean, rows.logloss_std)
        if rows.paper_logloss.notna().any():
            columns[(dataset, "LogLoss †, paper's scale")] = mean_std_cells(rows.logloss_testsel_paper_scale_mean,
                                                                           rows.logloss_testsel_paper_scale_std)
            columns[(dataset, "paper LogLoss")] = number_cells(rows.paper_logloss, ".4f")
        columns[(dataset, "AUC, test-selected †")] = mean_std_cells(rows.auc_testsel_mean, rows.auc_testsel_std)
    frame = pd.DataFrame(columns, index=pd.Index(models, name="model"))
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(border=0, escape=True, na_rep="", index_names=False)


def _section(title: str, body: str, anchor: str) -> str:
    return f'<h2 id="{anchor}">{html.escape(title)}</h2>\n{body}\n'


def _read_csv(reports: Path, name: str) -> pd.DataFrame:
    path = reports / name
    if not path.is_file():
        raise DataError(f"{path}: not found (render it before the index)")
    return pd.read_csv(path)


def write_index(reports: Path, params_path: Path, processed: Path) -> None:
    """Write ``reports/index.html`` from the stage outputs under ``reports`` and the datasets'
    ``stats.json`` under ``processed``."""
    for name in NOTEBOOKS:
        if not (reports / name).is_file():
            raise DataError(f"{reports / name}: not found (render it before the index)")
    table2, table3 = _read_csv(reports, "table2.csv"), _read_csv(reports, "table3.csv")
    effects = _read_csv(reports, "effects.csv")
    datasets = list(dict.fromkeys(table2.dataset))
    runs = list(dict.fromkeys(table2.model))
    main, others = table2_and_variants(runs)
    commit, date = _commit()
    said = headline(main, others, datasets, sorted(set(table2.n_runs)), sorted(set(table2.trained_on)), commit, date)
    parts = [f'<p class="headline">{said}</p>']
    if not set(datasets) & {d for d, _ in paper.table2()}:
        parts.append('<p class="note">None of these datasets is one of the paper\'s, so no paper number '
                     'stands beside ours: they show that the harness runs and what each model finds in them, '
                     'not that the paper\'s numbers reproduce. The paper\'s datasets are one switch away (<a href="../docs/reproducing.md">docs/reproducing.md</a>, '
                     '"The switch").</p>')
    note = ('<p class="note">Mean ± standard deviation over the seeds of each run\'s test metrics at its '
            'evaluation with the best <em>validation</em> AUC. * p &lt; 0.05 in Welch\'s t-test (two-sided, '
            'each model alone, no correction for testing several) of '
            'the AUC against SARN over the seeds: every seed meets the same test set, so p weighs how much '
            'training from another seed moves a model, not how much another test set would. ⚠ Some seeds failed: their best validation LogLoss is worse than predicting '
            'the click rate (nothing learned that it sees), or their test LogLoss blew up (with training negatives '
            'dropped, whose LogLoss is shifted: their best validation AUC is no better than chance); which ones and why: '
            'the run\'s <code>runs.csv</code>, column <code>failed</code>. † What the authors\' '
            'code reports: the best <em>test</em> AUC over all '
            'evaluations; not a fair estimate, shown to compare like with like. '
            + (DIEN_PAPER_NOTE if table2.dien_paper_auc.notna().any() else '')
            + 'The paper\'s numbers are what its code reports, at the evaluation with the best test AUC: '
            'ours † − paper and our LogLoss † on the paper\'s scale are taken the same way. The paper\'s '
            'LogLoss is half the binary cross-entropy (its code averages over the one-hot matrix), and its '
            'DIEN LogLoss seems to include DIEN\'s auxiliary loss, which ours leaves out. Every departure '
            'from the paper and its code: <a href="../docs/protocol.md">docs/protocol.md</a>. Full '
            'precision: <a href="table2.csv">table2.csv</a>, <a href="metrics.json">metrics.json</a>.</p>')
    parts.append(_section("Table II: overall performance", _table(table2_rows(table2, main)) + note, "table2"))
    if others:
        parts.append(_section("Other runs: RN with SARN's losses, SARN's ablations",
                              _table(table2_rows(table2, others)) + '<p class="note">The columns as in Table II. '
                              + "; ".join(f"{name}: {VARIANTS[name]}" for name in others) + ".</p>", "others"))
    if effects.empty:
        effects_body = ('<p class="note">Not run. Listing a dataset of <code>experiment.datasets</code> in '
                        '<code>protocol_effects.datasets</code> trains '
                        'the models of <code>protocol_effects.models</code> again under each choice of the '
                        'reference code in <code>protocol_effects.choices</code> (test-set selection, frozen '
                        'batch norm, batch-statistics Dice, the 90/10 split, the learning-rate schedules, and '
                        'more) and shows here how far each moves the test AUC; '
                        '<a href="../docs/protocol.md">docs/protocol.md</a> gives the figures measured on the '
                        'embedded dataset and the cost.</p>')
    else:
        effects_body = _table(effects_display(effects)) + (
            '<p class="note">Each choice trained on the same seeds as Table II (the baseline), compared '
            'under the same selection rule; p: the paired t-test over those seeds (two-sided). '
            '<a href="effects.csv">effects.csv</a>.</p>')
    parts.append(_section("How far the reference code's protocol moves the numbers", effects_body, "effects"))
    stats = [json.loads((processed / d / "stats.json").read_text(encoding="utf-8")) for d in datasets]
    parts.append(_section("Table I: the datasets", _table(table1_display(stats)), "table1"))
    seeds = " or ".join(map(str, sorted(set(table3.n_runs))))
    over = f"over {seeds} seed{'' if seeds == '1' else 's'} " if seeds else ""
    parts.append(_section("Table III: AUC by maximum history length", _table(table3_display(table3)) +
                          f'<p class="note">Mean ± standard deviation {over}(<code>table3.n_seeds</code>; the '
                          'paper does not say how many it ran), each seed reporting its evaluation with the best '
                          'validation AUC. ' + "".join(f"{html.escape(text)} " for text in
                                                       paper.errata(list(dict.fromkeys(table3.dataset)))) +
                          '<a href="table3.csv">table3.csv</a></p>', "table3"))
    figures = []
    for image, title, caption, notebook, data in FIGURES:
        links = ", ".join(f'<a href="{d}">{Path(d).name}</a>' for d in data)
        figures.append(f'<figure><img src="{image}" alt="{html.escape(title)}"><figcaption><strong>'
                       f'{html.escape(title)}.</strong> {html.escape(caption)} <a href="{notebook}">Notebook</a>; '
                       f'data: {links}.</figcaption></figure>')
    parts.append(_section("Figures", "\n".join(figures), "figures"))
    notebooks = ", ".join(f'<a href="{n}">{n}</a>' for n in NOTEBOOKS)
    parts.append(_section("Parameters and records",
                          f'<p>Executed notebooks (their code is in the .ipynb beside each): {notebooks}.</p>'
                          f'<details><summary>{html.escape(params_path.name)}</summary><pre>'
                          f'{html.escape(params_path.read_text(encoding="utf-8"))}</pre></details>', "parameters"))
    body = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>SARN reproduction report</title>'
            f'<style>{_STYLE}</style></head><body>\n<h1>SARN reproduction report</h1>\n' + "\n".join(parts) +
            "</body></html>\n")
    with atomic_path(reports / "index.html") as tmp:
        tmp.write_text(body, encoding="utf-8")
    log.info("index: %s written", reports / "index.html")
