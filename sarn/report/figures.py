"""Helpers the figure notebooks share: kernel check, heatmaps, atomic figure files.

Reads only stage outputs (CSV files); never models or data.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from sarn.atomic import atomic_path

# Set by sarn.report.notebook for the kernel it starts: the interpreter that started it. An
# environment variable rather than a notebook parameter, so that the executed notebook never
# shows a path of the machine it ran on.
KERNEL_PYTHON_VARIABLE = "SARN_KERNEL_PYTHON"


def check_kernel() -> None:
    """Refuse to run on another interpreter than the one that launched papermill.

    A ``python3`` kernelspec elsewhere on JUPYTER_PATH would otherwise render the report
    with another environment's packages without a word.
    """
    expected = os.environ.get(KERNEL_PYTHON_VARIABLE)
    if expected and Path(sys.executable).resolve() != Path(expected).resolve():
        raise RuntimeError(f"the report's kernel runs another Python than the one that started it "
                           f"({KERNEL_PYTHON_VARIABLE}); check the python3 kernelspecs on JUPYTER_PATH")


def save_figure(fig: plt.Figure, folder: str | Path, stem: str, dpi: int) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg`` into ``folder``, each atomically."""
    paths = []
    for suffix in (".png", ".svg"):
        target = Path(folder) / f"{stem}{suffix}"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=suffix[1:], dpi=dpi, bbox_inches="tight")
        paths.append(target)
    return paths


def save_table(frame: pd.DataFrame, folder: str | Path, stem: str) -> Path:
    target = Path(folder) / f"{stem}.csv"
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, lineterminator="\n")
    return target


def read_matrix(path: str | Path) -> pd.DataFrame:
    """A square matrix written with row and column labels."""
    return pd.read_csv(path, index_col=0)


def heatmap(ax: plt.Axes, matrix: pd.DataFrame, title: str, palette: str, colorbar_label: str,
            groups: list[str] | None = None, vmax: float = 1.0) -> None:
    """A labelled heatmap on the colour scale [0, vmax]; ``groups`` (one per row) draws
    borders between groups."""
    sns.heatmap(matrix, ax=ax, vmin=0.0, vmax=vmax, cmap=palette, square=True,
                cbar_kws={"label": colorbar_label, "shrink": 0.8}, xticklabels=True, yticklabels=True)
    ax.set_title(title)
    size = 8 if len(matrix) <= 25 else 6
    ax.tick_params(axis="x", labelrotation=90, labelsize=size)
    ax.tick_params(axis="y", labelrotation=0, labelsize=size)
    if groups:
        edges = [k for k in range(1, len(groups)) if groups[k] != groups[k - 1]]
        for edge in edges:
            ax.axhline(edge, color="white", linewidth=1.5)
            ax.axvline(edge, color="white", linewidth=1.5)


def mark_max(ax: plt.Axes, matrix: pd.DataFrame) -> tuple[str, str, float]:
    """Outline the highest cell; return its (row label, column label, value)."""
    values = matrix.to_numpy()
    i, j = np.unravel_index(np.argmax(values), values.shape)
    ax.add_patch(plt.Rectangle((j, i), 1, 1, fill=False, edgecolor="cyan", linewidth=2.5))
    return matrix.index[i], matrix.columns[j], float(values[i, j])
