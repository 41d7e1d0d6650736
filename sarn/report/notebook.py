"""Execute a report notebook with papermill and export it to HTML, both atomically."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from sarn.atomic import atomic_path
from sarn.report.figures import KERNEL_PYTHON_VARIABLE

log = logging.getLogger(__name__)

# The kernel's own start-up chatter (its transport, the debugger's frozen-module notice) is no
# news to the reader of a stage's log; its errors still surface as a failed cell.
_QUIET_KERNEL = {"PYDEVD_DISABLE_FILE_VALIDATION": "1", "PYTHONWARNINGS": "ignore"}


def render_notebook(template: Path, executed: Path, html: Path, parameters: dict) -> None:
    """Execute ``template`` with papermill and export it to HTML, both atomically.

    The executed notebook keeps its code (the audit trail); the HTML page shows the outputs
    only. The kernel is pinned to ``python3`` and the notebook checks that it runs on this
    very interpreter: another ``python3`` kernelspec on JUPYTER_PATH would otherwise run
    the report in the wrong environment without a word.
    """
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    os.environ.update({KERNEL_PYTHON_VARIABLE: sys.executable, **_QUIET_KERNEL})  # the kernel inherits them
    logging.getLogger("papermill").setLevel(logging.WARNING)
    with atomic_path(executed) as tmp_nb:
        papermill.execute_notebook(
            str(template), str(tmp_nb), parameters=parameters, kernel_name="python3",
            cwd=str(Path.cwd()), progress_bar=False, extra_arguments=["--log-level=ERROR"],
        )
        notebook = nbformat.read(tmp_nb, as_version=4)
        # papermill records the paths it was given: the temporary name of this machine's folder
        notebook.metadata.get("papermill", {}).update(input_path=str(template), output_path=str(executed))
        nbformat.write(notebook, tmp_nb)
        exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
        body, _ = exporter.from_notebook_node(notebook)
        with atomic_path(html) as tmp_html:
            tmp_html.write_text(body, encoding="utf-8")
    log.info("report: %s and %s written", executed, html)
