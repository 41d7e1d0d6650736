"""Which params each stage depends on, and the stamp files that let Snakemake see them.

DVC compares a stage's dotted ``params:`` with dvc.lock. Snakemake has no such record
for outputs it did not make (for instance after ``dvc repro``), so it would call a stale
result current. Each dotted key below therefore also lives in a small stamp file whose
content (and so modification time) changes only when that key's value changes; the
Snakemake rules take the stamps as inputs. Every command of the package refreshes the
stamps before it writes anything, so an output is always newer than the stamps it was
made from, whichever driver ran it. dvc.yaml lists the same keys (checked by a test).
Each stage's code dependencies: :mod:`sarn.code_deps`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sarn.atomic import dumps_json, write_text
from sarn.params import RuntimeSpec

STAMP_DIR = Path(".sarn") / "params"

# The runtime keys a training stage's results depend on: all but parallel_seeds, which only says
# how many seeds train at once (tests/test_parallel_seeds.py: the same bytes), so that changing it
# never reruns a finished grid.
RESULT_RUNTIME = tuple(f"runtime.{key}" for key in RuntimeSpec.model_fields if key != "parallel_seeds")

STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "raw": ("datasets.{dataset}.source",),
    "preprocess": ("datasets.{dataset}.protocol",),
    "train": ("models.{model}", "datasets.{dataset}.training", "experiment.n_seeds", "experiment.seed",
              *RESULT_RUNTIME),
    "aggregate": ("experiment.datasets", "experiment.models"),
    "sweep": ("models.{model}", "datasets.{dataset}.training", "table3.n_seeds", "experiment.seed",
              *RESULT_RUNTIME),
    "table3": ("table3.datasets", "table3.models", "table3.lengths"),
    "effects": ("models.{model}", "datasets.{dataset}.training", "protocol_effects", "experiment.seed",
                *RESULT_RUNTIME),
    "effects_table": ("protocol_effects", "experiment.datasets"),
    "snapshots": ("models.{model}", "datasets.{dataset}.training", "figures.dataset", "figures.model",
                  "figures.snapshots", "experiment.seed", *RESULT_RUNTIME),
    "figure_data": ("models.{model}", "datasets.{dataset}.training", "figures.dataset", "figures.model",
                    "figures.categories", "figures.items_per_category", "figures.user", "figures.min_history"),
    "report_fig4": ("plots.fig4", "figures.with_positional", "figures.without_positional"),
    "report_fig5": ("plots.fig5",),
    "report_fig6": ("plots.fig6",),
}


def stage_keys(stage: str, **names: str) -> list[str]:
    """Dotted params keys of ``stage`` for a dataset and/or model name."""
    return [key.format(**names) for key in STAGE_PARAMS[stage]]


def stamp_path(key: str, root: Path = Path(".")) -> Path:
    return root / STAMP_DIR / f"{key}.json"


def _lookup(raw: dict[str, Any], key: str) -> Any:
    value: Any = raw
    for part in key.split("."):
        value = value[part]
    return value


def all_keys(raw: dict[str, Any]) -> list[str]:
    """Every stamp key of the configured datasets and runs (Table II's, Table III's and the figures')."""
    pairs = {(dataset, model) for section in ("experiment", "table3")
             for dataset in raw[section]["datasets"] for model in raw[section]["models"]}
    pairs.add((raw["figures"]["dataset"], raw["figures"]["model"]))
    return sorted({key for dataset, model in pairs for stage in STAGE_PARAMS
                   for key in stage_keys(stage, dataset=dataset, model=model)})


def sync_stamps(raw: dict[str, Any], root: Path = Path(".")) -> None:
    """Rewrite the stamp of every key whose value differs from its stamp's content."""
    for key in all_keys(raw):
        path = stamp_path(key, root)
        text = dumps_json(_lookup(raw, key))
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            write_text(path, text)

