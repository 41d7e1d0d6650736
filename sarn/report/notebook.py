"""Execute a report notebook with papermill and export it to HTML, both atomically."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from sarn.atomic import atomic_path

log = logging.getLogger(__name__)


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
