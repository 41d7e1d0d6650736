"""The two data stages: produce a raw click log, then turn it into sample files.

Layout of a raw dataset folder: ``clicks.npz`` (see :mod:`sarn.data.raw`) and
``source.json`` (which files it came from, their checksums, and how many rows each
filter dropped). Layout of a processed dataset folder: ``train.npz``, ``valid.npz``,
``test.npz`` (see :mod:`sarn.data.arrays`), ``meta.json`` (vocabulary sizes),
``ids.npz`` (the raw ids behind every index), ``negatives.npz`` (the distribution history
negatives are drawn from) and ``stats.json`` (Table I's columns and what the protocol kept).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from sarn.atomic import atomic_dir, write_json
from sarn.data.amazon import read_amazon, verify_meta, verify_reviews
from sarn.data.arrays import load_arrays, save_arrays
from sarn.data.download import DOWNLOAD_DIR, fetch, sha256_of
from sarn.data.raw import LOG_FILE, columns_of, counts, k_core, read_log, read_user_log, write_log
from sarn.data.samples import SPLITS, build_samples
from sarn.data.synthetic import generate_clicks
from sarn.data.taobao import read_taobao, verify_archive
from sarn.errors import DataError
from sarn.params import AmazonSource, DatasetSpec, LogSource, SyntheticSource, TaobaoSource

log = logging.getLogger(__name__)

SOURCE_FILE = "source.json"
IDS_FILE = "ids.npz"
NEGATIVES_FILE = "negatives.npz"


def download(name: str, spec: DatasetSpec, downloads: Path = DOWNLOAD_DIR) -> dict[str, tuple[Path, str]]:
    """Fetch and verify the published files of dataset ``name`` (none for a generated or a
    user's own log): params key under ``source`` → (local path, SHA-256). The raw stage
    calls this first; on its own it fetches ahead, e.g. on a cluster's login node."""
    source = spec.source
    files = {}  # params key → (the file, what a new download of it must parse as)
    if isinstance(source, AmazonSource):
        files = {"reviews": (source.reviews, verify_reviews), "meta": (source.meta, verify_meta)}
    elif isinstance(source, TaobaoSource):
        files = {"archive": (source.archive, verify_archive)}
    return {key: fetch(remote, f"datasets.{name}.source.{key}", downloads, verify=verify)
            for key, (remote, verify) in files.items()}


def _read_source(name: str, spec: DatasetSpec, downloads: Path) -> tuple[pd.DataFrame, dict]:
    """The source's log before the core filter, and what describes where it came from."""
    source = spec.source
    fetched = download(name, spec, downloads)
    described: dict = {"kind": source.kind, "files": {path.name: digest for path, digest in fetched.values()}}
    if isinstance(source, SyntheticSource):
        log.info("raw[%s]: generating the embedded click log (%s users)", name, source.generator.n_users)
        return generate_clicks(source.generator), described
    if isinstance(source, AmazonSource):
        log.info("raw[%s]: parsing %s and %s", name, fetched["reviews"][0], fetched["meta"][0])
        return read_amazon(fetched["reviews"][0], fetched["meta"][0]), described
    if isinstance(source, TaobaoSource):
        log.info("raw[%s]: parsing %s", name, fetched["archive"][0])
        frame, dropped = read_taobao(fetched["archive"][0], source.behaviors, source.window)
        return frame, described | dropped
    if isinstance(source, LogSource):
        path = Path(source.path)
        if not path.is_file():
            raise DataError(f"datasets.{name}.source.path: {path} does not exist "
                            "(expected a CSV or parquet click log)")
        frame, counted = read_user_log(path)
        return frame, {"kind": "log", "files": {str(path): sha256_of(path)}} | counted
    raise AssertionError(f"unhandled source {source!r}")  # pragma: no cover - the schema is closed


def make_raw(name: str, spec: DatasetSpec, out_dir: Path, downloads: Path = DOWNLOAD_DIR) -> None:
    """Produce the raw click log of dataset ``name`` in ``out_dir``."""
    frame, described = _read_source(name, spec, downloads)
    columns = columns_of(frame)
    del frame  # the columns alone hold the data now: the core filter frees them one by one
    before = counts(columns)
    core = getattr(spec.source, "core", None)
    rounds = k_core(columns, core) if core is not None else 0
    described |= {"before_core": before, "core_rounds": rounds, "after_core": counts(columns)}
    with atomic_dir(out_dir) as tmp:
        write_log(tmp / LOG_FILE, columns)
        write_json(tmp / SOURCE_FILE, described)
    log.info("raw[%s]: %d rows written to %s (%s)", name, before["interactions"], out_dir / LOG_FILE, described)


def preprocess(name: str, spec: DatasetSpec, raw_dir: Path, out_dir: Path) -> None:
    """Build train/valid/test samples from ``raw_dir`` into ``out_dir``."""
    log.info("preprocess[%s]: reading %s and building samples", name, raw_dir / LOG_FILE)
    source = raw_dir / SOURCE_FILE
    filtering = json.loads(source.read_text(encoding="utf-8")) if source.is_file() else {}
    with atomic_dir(out_dir) as tmp:
        # The log is not kept here (freed as it is sorted), and each split is written
        # and dropped as soon as it is built.
        _, meta = build_samples(read_log(raw_dir / LOG_FILE), spec.protocol,
                                on_split=lambda split, arrays: save_arrays(tmp / f"{split}.npz", arrays))
        save_arrays(tmp / IDS_FILE, meta["ids"])
        save_arrays(tmp / NEGATIVES_FILE, meta["negative_pool"])
        write_json(tmp / "meta.json", {k: v for k, v in meta.items() if k not in ("statistics", "ids", "negative_pool")})
        write_json(tmp / "stats.json", {"dataset": name, **meta["statistics"], "source": filtering})
    log.info("preprocess[%s]: %s", name, meta["statistics"])


def load_split(processed_dir: Path, split: str) -> dict[str, np.ndarray]:
    """The arrays of one split (``train``, ``valid`` or ``test``)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return load_arrays(processed_dir / f"{split}.npz")


def load_negative_pool(processed_dir: Path) -> dict[str, np.ndarray]:
    """The distribution the history negatives were drawn from (``item``, ``category``, ``clicks``)."""
    return load_arrays(processed_dir / NEGATIVES_FILE)


def load_meta(processed_dir: Path, with_ids: bool = False) -> dict:
    """Vocabulary sizes of a processed dataset and, with ``with_ids``, the raw ids
    (``user_ids``, ``item_ids``, ``category_ids`` and ``item_category``) as arrays."""
    path = processed_dir / "meta.json"
    if not path.is_file():
        raise DataError(f"{path}: not found (run the preprocess stage first)")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if with_ids:
        meta |= load_arrays(processed_dir / IDS_FILE)
    return meta
