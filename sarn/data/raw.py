"""The raw click-log schema every source is turned into before preprocessing.

One row per interaction: ``user_id, item_id, category_id, timestamp`` (the columns
Amazon reviews, Taobao UserBehavior and a user's own log share), plus ``label`` (1 for a
click, 0 for an impression without one) and ``context`` where a user's log has them.
Ids are categorical (integer codes over string categories): nothing about a source's id
format leaks into the samples, and a 100-million-row log fits in memory as integers.
The raw stage stores the log as ``clicks.npz`` (see :func:`write_log`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sarn.data.arrays import load_arrays, save_arrays
from sarn.errors import DataError
from sarn.params import CoreSpec

COLUMNS = ("user_id", "item_id", "category_id", "timestamp")
OPTIONAL = ("label", "context")
ID_COLUMNS = ("user_id", "item_id", "category_id", "context")
LOG_FILE = "clicks.npz"


def categorical(values: np.ndarray) -> pd.Categorical:
    """Integer-coded ids whose categories are the distinct values as strings, in sorted
    order of the values (so numeric ids sort numerically, string ids lexicographically).

    Non-negative integer ids of moderate range (Taobao's) go through a lookup table
    instead of a sort: linear time, and 4 bytes a row beyond the input.
    """
    if values.dtype.kind in "iu" and values.size and values.min() >= 0 and values.max() < 4 * values.size + (1 << 20):
        present = np.zeros(int(values.max()) + 1, dtype=bool)
        present[values] = True
        uniques = np.flatnonzero(present)
        del present
        lookup = np.zeros(int(uniques[-1]) + 1, dtype=np.int32)
        lookup[uniques] = np.arange(uniques.size, dtype=np.int32)
        codes = lookup[values]
    else:
        uniques, codes = np.unique(values, return_inverse=True)
    return pd.Categorical.from_codes(codes.astype(np.int32, copy=False),
                                     categories=pd.Index(uniques.astype(str), dtype=object))


def sorted_categorical(codes: np.ndarray, names: list[str]) -> pd.Categorical:
    """Ids coded in order of first appearance (``names[code]``), recoded so that the
    categories are sorted, as :func:`categorical` makes them."""
    order = np.argsort(np.asarray(names, dtype=object), kind="stable")
    rank = np.empty(order.size, dtype=np.int32)
    rank[order] = np.arange(order.size, dtype=np.int32)
    return pd.Categorical.from_codes(rank[codes], categories=pd.Index([names[k] for k in order], dtype=object))


def as_log(frame: pd.DataFrame) -> pd.DataFrame:
    """The canonical in-memory log: categorical ids, int64 timestamps, int8 labels."""
    out = {}
    for column in (*COLUMNS, *OPTIONAL):
        if column not in frame.columns:
            continue
        values = frame[column]
        if column in ID_COLUMNS:
            if not isinstance(values.dtype, pd.CategoricalDtype):
                values = categorical(values.to_numpy())
            elif not np.bincount(values.cat.codes, minlength=values.cat.categories.size).all():
                values = values.cat.remove_unused_categories()
            out[column] = values
        elif column == "label":
            out[column] = values.to_numpy(dtype=np.int8)
        else:
            out[column] = values.to_numpy(dtype=np.int64)
    return pd.DataFrame(out)


LogColumns = dict[str, "pd.Categorical | np.ndarray"]


def columns_of(frame: pd.DataFrame) -> LogColumns:
    """The canonical log's columns as arrays (ids as ``pd.Categorical``), sharing memory
    with ``frame``: once the frame is dropped, a column can be released on its own."""
    return {column: values.array if column in ID_COLUMNS else values.to_numpy()
            for column, values in as_log(frame).items()}


def write_log(path: str | Path, log: LogColumns) -> None:
    """Store a canonical log atomically and byte-deterministically: each id column as
    32-bit codes plus its distinct ids once (``<column>.ids``), the rest as they are.

    (Parquet would store an id column's dictionary once per row group: for Taobao's four
    million items, gigabytes when read back.)
    """
    arrays: dict[str, np.ndarray] = {}
    for column, values in log.items():
        if column in ID_COLUMNS:
            arrays[column] = values.codes.astype(np.int32)
            arrays[f"{column}.ids"] = np.asarray(values.categories, dtype=str)
        else:
            arrays[column] = np.asarray(values)
    save_arrays(path, arrays)


def read_log(path: str | Path) -> pd.DataFrame:
    """Read a log written by :func:`write_log`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: raw click log not found (run the raw stage first)")
    arrays = load_arrays(path)
    missing = [c for c in COLUMNS if c not in arrays]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; rerun the raw stage")
    frame = {}
    for column in (*COLUMNS, *OPTIONAL):
        if column not in arrays:
            continue
        values = arrays.pop(column)
        if column in ID_COLUMNS:
            ids = pd.Index(arrays.pop(f"{column}.ids").astype(object), dtype=object)
            values = pd.Categorical.from_codes(values, categories=ids)
        frame[column] = values
    return as_log(pd.DataFrame(frame))


def k_core(log: LogColumns, core: CoreSpec) -> int:
    """Drop users with fewer than ``core.users`` and items with fewer than ``core.items``
    interactions, repeatedly until no more rows go. Filters ``log`` in place, one column
    at a time (so that 100 million rows never exist twice); returns the rounds taken."""
    users, items = log["user_id"].codes, log["item_id"].codes
    keep = np.ones(users.size, dtype=bool)
    rounds = 0
    while True:  # per-code flags, so that no 8-byte temporary a row is made
        few_users = np.bincount(users[keep], minlength=log["user_id"].categories.size) < core.users
        few_items = np.bincount(items[keep], minlength=log["item_id"].categories.size) < core.items
        drop = few_users[users]
        drop |= few_items[items]
        drop &= keep
        if not drop.any():
            break
        keep &= ~drop
        rounds += 1
    del users, items, drop
    if not keep.any():
        raise DataError(f"no interaction survives the {core.users}-user/{core.items}-item core filter")
    if rounds:
        for column in list(log):
            values = log.pop(column)[keep]
            log[column] = values.remove_unused_categories() if column in ID_COLUMNS else values
    return rounds


def counts(log: LogColumns) -> dict[str, int]:
    """Table I's columns of a canonical log (whose id categories are all used)."""
    return {"users": log["user_id"].categories.size, "items": log["item_id"].categories.size,
            "categories": log["category_id"].categories.size, "interactions": len(log["user_id"])}


def read_user_log(path: str | Path) -> pd.DataFrame:
    """Read a user's own log (CSV with a header, or parquet), checking it row by row.

    Errors name the file and the line (CSV: 1-based with the header as line 1;
    parquet: the 1-based row).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: click log not found")
    parquet = path.suffix.lower() in (".parquet", ".pq")
    frame = _read_parquet(path) if parquet else _read_csv(path)
    where = (lambda row: f"row {row + 1}") if parquet else (lambda row: f"line {row + 2}")
    expected = f"{','.join(COLUMNS)}[,label][,context]"
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; expected columns {expected}")
    if frame.empty:
        raise DataError(f"{path}: no rows (expected columns {expected})")
    present = [c for c in (*COLUMNS, *OPTIONAL) if c in frame.columns]
    for column in present:
        values = frame[column].astype(str).str.strip()
        blank = np.flatnonzero((values.str.len() == 0).to_numpy() | frame[column].isna().to_numpy())
        if blank.size:
            raise DataError(f"{path}: {where(blank[0])}: empty {column} (every row needs {expected})")
        frame[column] = values
    for column, allowed in (("timestamp", None), ("label", (0, 1))):
        if column not in frame.columns:
            continue
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = numbers.isna().to_numpy() | (numbers % 1 != 0).to_numpy()
        if allowed is not None:
            bad |= ~numbers.isin(allowed).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            what = "an integer number of seconds" if allowed is None else "0 or 1"
            raise DataError(f"{path}: {where(row)}: {column} {frame[column].iloc[row]!r} is not {what}")
        frame[column] = numbers.astype(np.int64)
    if "label" in frame.columns and not (frame["label"] == 1).any():
        raise DataError(f"{path}: no positive labels (label = 1): there is no click to learn from")
    return as_log(frame.loc[:, present])


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (expected a header {','.join(COLUMNS)})") from None
    except pd.errors.ParserError as err:
        raise DataError(f"{path}: malformed CSV ({err}); expected one value per header column a line") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err})") from None


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"{path}: not a readable parquet file ({err})") from None
