"""``reports/index.html``: the page a reader opens first."""

from __future__ import annotations

import logging
from pathlib import Path

from sarn.atomic import atomic_path
from sarn.errors import DataError

log = logging.getLogger(__name__)

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
