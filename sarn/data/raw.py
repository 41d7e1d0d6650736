"""The raw click-log schema every source is turned into before preprocessing.

One row per click: ``user_id, item_id, category_id, timestamp`` (the columns shared by
Amazon reviews, Taobao UserBehavior and a user's own log). Ids stay as raw strings so
that nothing about the source's id format leaks into the samples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sarn.atomic import atomic_path
from sarn.errors import DataError

COLUMNS = ("user_id", "item_id", "category_id", "timestamp")


def write_clicks(path: str | Path, clicks: pd.DataFrame) -> None:
    """Write a click log as CSV with a header, atomically."""
    missing = [c for c in COLUMNS if c not in clicks.columns]
    if missing:
        raise ValueError(f"click log lacks columns {missing}")
    with atomic_path(path) as tmp:
        clicks.loc[:, list(COLUMNS)].to_csv(tmp, index=False, lineterminator="\n")


def read_clicks(path: str | Path) -> pd.DataFrame:
    """Read a click log written by :func:`write_clicks`, checking its schema row by row.

    Errors name the file and the line (1-based, the header being line 1).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: click log not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (expected a header {','.join(COLUMNS)})") from None
    except pd.errors.ParserError as err:
        raise DataError(f"{path}: malformed CSV ({err}); expected {len(COLUMNS)} fields a line") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; expected header {','.join(COLUMNS)}"
        )
    if frame.empty:
        raise DataError(f"{path}: no rows after the header")
    for column in COLUMNS:
        values = frame[column].fillna("").str.strip()
        blank = np.flatnonzero(values.str.len().to_numpy() == 0)
        if blank.size:
            raise DataError(
                f"{path}: line {blank[0] + 2}: empty {column} (every line needs {','.join(COLUMNS)})"
            )
    timestamps = pd.to_numeric(frame["timestamp"], errors="coerce")
    bad = np.flatnonzero(timestamps.isna().to_numpy() | (timestamps % 1 != 0).to_numpy())
    if bad.size:
        raise DataError(
            f"{path}: line {bad[0] + 2}: timestamp {frame['timestamp'].iloc[bad[0]]!r} "
            "is not an integer number of seconds"
        )
    frame["timestamp"] = timestamps.astype(np.int64)
    return frame.loc[:, list(COLUMNS)]
