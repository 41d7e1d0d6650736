"""The report side: stage outputs in, tables, figures and pages out. Reads only stage outputs
(``results/...``, ``data/processed/<dataset>/stats.json``), never models or data.

- :mod:`sarn.report.paper`: the paper's own numbers (``paper.yaml``), for comparison;
- :mod:`sarn.report.aggregate`: per-seed results → Table II, Table III, the protocol effects;
- :mod:`sarn.report.display`: those tables as the report notebooks show them;
- :mod:`sarn.report.figures`: what the figure notebooks share (kernel check, heatmaps, files);
- :mod:`sarn.report.notebook`: executing a notebook with papermill and exporting it to HTML;
- :mod:`sarn.report.index`: ``reports/index.html``.
"""
