"""``python -m sarn describe``: what preprocessing would keep of a dataset, before any run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sarn.data.download import DOWNLOAD_DIR
from sarn.data.processed import SPLITS
from sarn.data.raw import LOG_FILE, read_log
from sarn.data.samples import build_samples
from sarn.data.sources import made_from, raw_log
from sarn.params import DatasetSpec


def describe(name: str, spec: DatasetSpec, raw_dir: Path, downloads: Path = DOWNLOAD_DIR) -> str:
    """What preprocessing would keep of dataset ``name``, as text, without writing anything:
    the log's counts, the samples of each split and how precisely the test set measures an
    AUC. Reads the raw stage's log where ``raw_dir`` holds one made from the source as it is
    now, else the source itself (so that a fixed file or a changed setting shows at once)."""
    source = made_from(raw_dir, spec)
    if source is not None:
        log_frame, where = read_log(raw_dir / LOG_FILE), str(raw_dir / LOG_FILE)
    else:
        stale = (f"; {raw_dir / LOG_FILE} was made from other settings, another file or an older version "
                 "of the project and is out of date"
                 if (raw_dir / LOG_FILE).is_file() else "")
        columns, source = raw_log(name, spec, downloads)
        log_frame, where = pd.DataFrame(columns), f"its source ({spec.source.kind}){stale}"
        del columns
    _, meta = build_samples(log_frame, spec.protocol, on_split=lambda split, arrays: None)
    stats = meta["statistics"]
    total = sum(stats[f"{split}_samples"] for split in SPLITS)
    lines = [f"datasets.{name}, read from {where}:",
             (f"  log: {stats['users']:,} users, {stats['items']:,} items, {stats['categories']:,} categories, "
             f"{stats['interactions']:,} interactions")]
    before = source.get("before_core")
    if before and before["interactions"] != stats["interactions"]:
        lines.append(f"  before the core filter: {before['users']:,} users, {before['interactions']:,} interactions")
    for split in SPLITS:
        lines.append(f"  {split}: {stats[f'{split}_samples']:,} samples ({stats[f'{split}_samples'] / total:.1%}), "
                     f"{stats[f'{split}_positive_share']:.1%} clicks, mean history {stats[f'{split}_mean_history']:.1f}")
    lines.append(f"  an AUC on this test set is known to about ±{stats['test_auc_standard_error']:.3f} "
                 f"(standard error at AUC 0.8)")
    return "\n".join(lines)
