"""The preprocess stage: a raw click log in, the sample files of :mod:`sarn.data.processed` out."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from sarn.atomic import atomic_dir, write_json
from sarn.data.arrays import save_arrays
from sarn.data.processed import IDS_FILE, META_FILE, NEGATIVES_FILE, STATS_FILE
from sarn.data.raw import LOG_FILE, SOURCE_FILE, read_log
from sarn.data.samples import build_samples
from sarn.params import DatasetSpec

log = logging.getLogger(__name__)


def preprocess(name: str, spec: DatasetSpec, raw_dir: Path, out_dir: Path) -> None:
    """Build train/valid/test samples from ``raw_dir`` into ``out_dir``."""
    log.info("preprocess[%s]: reading %s and building samples", name, raw_dir / LOG_FILE)
    source = raw_dir / SOURCE_FILE
    filtering = json.loads(source.read_text(encoding="utf-8")) if source.is_file() else {}
    with atomic_dir(out_dir) as tmp:
        # The log is not kept here (freed as it is sorted), and each split is written
        # and dropped as soon as it is built.
        _, meta = build_samples(read_log(raw_dir / LOG_FILE), spec.protocol,
                                on_split=lambda split, arrays: save_arrays(tmp / f"{split}.npz", arrays, "samples"))
        save_arrays(tmp / IDS_FILE, meta["ids"], "samples")
        save_arrays(tmp / NEGATIVES_FILE, meta["negative_pool"], "samples")
        write_json(tmp / META_FILE, {k: v for k, v in meta.items() if k not in ("statistics", "ids", "negative_pool")})
        write_json(tmp / STATS_FILE, {"dataset": name, **meta["statistics"], "source": filtering})
    log.info("preprocess[%s]: %s", name, meta["statistics"])
    warn_if_test_set_is_small(name, meta["statistics"])


# A test set whose AUC is known to no better than this cannot rank the paper's models, whose
# AUCs differ by about 0.01 to 0.02 in its Table II.
SMALL_TEST_SET_ERROR = 0.005


def warn_if_test_set_is_small(name: str, statistics: dict) -> None:
    error = statistics["test_auc_standard_error"]
    if error > SMALL_TEST_SET_ERROR:
        log.warning("preprocess[%s]: the test set has %d samples: an AUC measured on it is known to about ±%.3f "
                    "(standard error at AUC 0.8), while the paper's models differ by 0.01 to 0.02; seeds "
                    "average out training noise, not the test set's: give the dataset more test users "
                    "(protocol.split) before reading differences that small", name, statistics["test_samples"],
                    error)

