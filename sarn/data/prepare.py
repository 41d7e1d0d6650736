"""The two data stages: produce a raw click log, then turn it into sample files.

Layout of a processed dataset folder: ``train.npz``, ``valid.npz``, ``test.npz``
(see :mod:`sarn.data.arrays`), ``meta.json`` (vocabulary sizes and the raw ids behind
every index) and ``stats.json`` (Table I's columns and what the protocol kept).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from sarn.atomic import atomic_dir, write_json
from sarn.data.arrays import load_arrays, save_arrays
from sarn.data.raw import read_clicks, write_clicks
from sarn.data.samples import SPLITS, build_samples
from sarn.data.synthetic import generate_clicks
from sarn.errors import DataError
from sarn.params import DatasetSpec

log = logging.getLogger(__name__)

RAW_FILE = "clicks.csv"


def make_raw(name: str, spec: DatasetSpec, out_dir: Path) -> None:
    """Produce the raw click log of dataset ``name`` in ``out_dir``."""
    log.info("raw[%s]: generating the embedded click log (%s users)", name, spec.generator.n_users)
    clicks = generate_clicks(spec.generator)
    with atomic_dir(out_dir) as tmp:
        write_clicks(tmp / RAW_FILE, clicks)
    log.info("raw[%s]: %d clicks written to %s", name, len(clicks), out_dir / RAW_FILE)


def preprocess(name: str, spec: DatasetSpec, raw_dir: Path, out_dir: Path) -> None:
    """Build train/valid/test samples from ``raw_dir`` into ``out_dir``."""
    clicks = read_clicks(raw_dir / RAW_FILE)
    log.info("preprocess[%s]: %d clicks read; building samples", name, len(clicks))
    splits, meta = build_samples(clicks, spec.protocol)
    with atomic_dir(out_dir) as tmp:
        for split, arrays in splits.items():
            save_arrays(tmp / f"{split}.npz", arrays)
        write_json(tmp / "meta.json", {k: v for k, v in meta.items() if k != "statistics"})
        write_json(tmp / "stats.json", {"dataset": name, **meta["statistics"]})
    log.info("preprocess[%s]: %s", name, meta["statistics"])


def load_split(processed_dir: Path, split: str) -> dict[str, np.ndarray]:
    """The arrays of one split (``train``, ``valid`` or ``test``)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return load_arrays(processed_dir / f"{split}.npz")


def load_meta(processed_dir: Path) -> dict:
    """Vocabulary sizes and raw ids of a processed dataset."""
    path = processed_dir / "meta.json"
    if not path.is_file():
        raise DataError(f"{path}: not found (run the preprocess stage first)")
    return json.loads(path.read_text(encoding="utf-8"))
