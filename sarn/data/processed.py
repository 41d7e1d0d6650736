"""A processed dataset's folder: its files, and reading them back (training, figures).

Layout: ``train.npz``, ``valid.npz``, ``test.npz`` (see :mod:`sarn.data.arrays`),
``meta.json`` (vocabulary sizes), ``ids.npz`` (the raw ids behind every index),
``negatives.npz`` (the distribution history negatives are drawn from) and ``stats.json``
(Table I's columns and what the protocol kept). Written by :mod:`sarn.data.preprocess`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sarn.data.arrays import load_arrays
from sarn.errors import DataError

SPLITS = ("train", "valid", "test")
META_FILE = "meta.json"
STATS_FILE = "stats.json"
IDS_FILE = "ids.npz"
NEGATIVES_FILE = "negatives.npz"


def load_split(processed_dir: Path, split: str, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of one split (``train``, ``valid`` or ``test``), only ``names`` where given."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return load_arrays(processed_dir / f"{split}.npz", "samples", names)


def load_negative_pool(processed_dir: Path) -> dict[str, np.ndarray]:
    """The distribution the history negatives were drawn from (``item``, ``category``, ``clicks``)."""
    return load_arrays(processed_dir / NEGATIVES_FILE, "samples")


def load_meta(processed_dir: Path, with_ids: bool = False) -> dict:
    """Vocabulary sizes of a processed dataset and, with ``with_ids``, the raw ids
    (``user_ids``, ``item_ids``, ``category_ids`` and ``item_category``) as arrays."""
    path = processed_dir / META_FILE
    if not path.is_file():
        raise DataError(f"{path}: not found (run the preprocess stage first)")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if with_ids:
        meta |= load_arrays(processed_dir / IDS_FILE, "samples")
    return meta


def split_sizes(processed_dir: Path) -> dict[str, int]:
    """Samples in each split, from ``stats.json``: what a run's steps and evaluations depend on,
    known without loading the splits."""
    path = processed_dir / STATS_FILE
    if not path.is_file():
        raise DataError(f"{path}: not found (run the preprocess stage first)")
    stats = json.loads(path.read_text(encoding="utf-8"))
    return {split: int(stats[f"{split}_samples"]) for split in SPLITS}
