"""The SARN paper's Tables I to III as data, and the DIEN paper's AUC of DIN and DIEN on the same
Amazon data (``paper.yaml``, which says where each number comes from)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

TABLE1_COLUMNS = ("users", "items", "categories", "interactions")


@cache
def _numbers() -> dict:
    return yaml.safe_load((Path(__file__).with_name("paper.yaml")).read_text(encoding="utf-8"))


def table1() -> dict[str, tuple[int, int, int, int]]:
    """dataset → (users, items, categories, interactions)."""
    return {dataset: tuple(row) for dataset, row in _numbers()["table1"].items()}


def table2() -> dict[tuple[str, str], tuple[float, float | None]]:
    """(dataset, model) → (AUC, LogLoss); ATRank's LogLoss is not reported."""
    return {(dataset, model): tuple(row) for dataset, models in _numbers()["table2"].items()
            for model, row in models.items()}


def dien_paper_auc() -> dict[tuple[str, str], float]:
    """(dataset, model) → the DIEN paper's AUC, for DIN and DIEN on Electronics and Books."""
    return {(dataset, model): auc for dataset, models in _numbers()["dien_paper_auc"].items()
            for model, auc in models.items()}


def table3() -> dict[tuple[str, str], dict[int, float]]:
    """(dataset, model) → {maximum history length: AUC}."""
    return {(dataset, model): dict(row) for dataset, models in _numbers()["table3"].items()
            for model, row in models.items()}


def errata(datasets: list[str]) -> list[str]:
    """Where the paper's own numbers for ``datasets`` disagree with each other, in words."""
    return [text for dataset, text in _numbers().get("errata", {}).items() if dataset in datasets]
