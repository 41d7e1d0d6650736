"""The raw click-log schema every source is turned into before preprocessing.

One row per interaction: ``user_id, item_id, category_id, timestamp`` (the columns
Amazon reviews, Taobao UserBehavior and a user's own log share), plus ``label`` (1 for a
click, 0 for an impression without one) and ``context`` where a user's log has them.
Ids are categorical (integer codes over string categories): nothing about a source's id
format leaks into the samples, and a 100-million-row log fits in memory as integers.
The raw stage stores the log as ``clicks.npz`` (see :func:`write_log`).
"""

from __future__ import annotations

import csv
import itertools
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sarn.data.arrays import load_arrays, save_arrays
from sarn.errors import DataError
from sarn.params import CoreSpec

logger = logging.getLogger(__name__)

COLUMNS = ("user_id", "item_id", "category_id", "timestamp")
OPTIONAL = ("label", "context")
ID_COLUMNS = ("user_id", "item_id", "category_id", "context")
LOG_FILE = "clicks.npz"
SOURCE_FILE = "source.json"  # where the log came from and what each filter dropped
SECONDS = (631_152_000, 4_102_444_800)  # 1990-01-01 and 2100-01-01: a log's times lie between, as Unix seconds
CHUNK_ROWS = 200_000  # rows of a user's log parsed at a time: the parser holds several times their text


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
            else:
                used = np.zeros(values.cat.categories.size, dtype=bool)
                used[values.array.codes] = True  # a flag a category, no temporary a row
                if not used.all():
                    values = values.cat.remove_unused_categories()
            out[column] = values
        elif column == "label":
            out[column] = values.to_numpy(dtype=np.int8)
        else:
            out[column] = values.to_numpy(dtype=np.int64)
    return pd.DataFrame(out, copy=False)


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
    save_arrays(path, arrays, "raw")


def read_log(path: str | Path) -> pd.DataFrame:
    """Read a log written by :func:`write_log`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: raw click log not found (run the raw stage first)")
    arrays = load_arrays(path, "raw")
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


def read_user_log(path: str | Path, chunk_rows: int = CHUNK_ROWS) -> tuple[pd.DataFrame, dict[str, int]]:
    """Read a user's own log (CSV with a header, or parquet), checking it row by row; and
    how many rows were read and how many dropped as exact duplicates of an earlier row.

    The file is read ``chunk_rows`` rows at a time and each chunk's ids are dictionary
    encoded at once, so that memory holds the rows as integers and each chunk's distinct
    ids as Arrow strings, never the whole text (a Python dict of the ids would cost more
    than 100 bytes an id). Errors name the file and the line (CSV: 1-based with the
    header as line 1; parquet: the 1-based row). Timestamps must be Unix seconds between
    1990 and 2100: milliseconds sort the same, so they would pass unnoticed and put
    ATRank's time gaps and a time split's cutoff off by a factor of 1000. Exact duplicates
    go because a click read twice would be its own last history item.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: click log not found")
    parquet = path.suffix.lower() in (".parquet", ".pq")
    where = (lambda row: f"row {row + 1}") if parquet else (lambda row: f"line {row + 2}")
    expected = f"{','.join(COLUMNS)}[,label][,context]"
    parts: dict[str, list] = {}  # column → its chunks: pa.DictionaryArray for ids, np.ndarray for numbers
    rows = clicked = 0
    for chunk in (_parquet_chunks if parquet else _csv_chunks)(path, chunk_rows):
        if not parts:
            header = ", ".join(map(repr, chunk.columns))
            missing = [c for c in COLUMNS if c not in chunk.columns]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)}; expected columns {expected}, "
                                f"read {header}")
            # A click label or feature under another name would be dropped without a word, and
            # every impression read as a click.
            unknown = [c for c in chunk.columns if c not in (*COLUMNS, *OPTIONAL)]
            if unknown:
                raise DataError(f"{path}: unknown column(s) {', '.join(map(repr, unknown))}; expected columns "
                                f"{expected} (a 0/1 click label must be named label, one impression feature "
                                "context; drop any other column)")
            parts = {c: [] for c in (*COLUMNS, *OPTIONAL) if c in chunk.columns}
        text = {}
        for column in parts:
            values = chunk[column].astype(str).str.strip()
            blank = np.flatnonzero((values.str.len() == 0).to_numpy() | chunk[column].isna().to_numpy())
            if blank.size:
                short = None if parquet else _short_line(path, rows + int(blank[0]) + 2, len(chunk.columns))
                raise DataError(f"{path}: {where(rows + blank[0])}: {short or f'empty {column}'} (every row needs "
                                f"{expected})")
            text[column] = values
        for column, allowed in (("timestamp", None), ("label", (0, 1))):
            if column not in parts:
                continue
            numbers = pd.to_numeric(text[column], errors="coerce")
            bad = numbers.isna().to_numpy() | (numbers % 1 != 0).to_numpy()
            if allowed is not None:
                bad |= ~numbers.isin(allowed).to_numpy()
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                what = "an integer number of seconds" if allowed is None else "0 or 1"
                raise DataError(f"{path}: {where(rows + row)}: {column} {text[column].iloc[row]!r} is not {what}")
            if allowed is None:
                implausible = np.flatnonzero(((numbers < SECONDS[0]) | (numbers > SECONDS[1])).to_numpy())
                if implausible.size:
                    row = int(implausible[0])
                    raise DataError(f"{path}: {where(rows + row)}: timestamp {text[column].iloc[row]!r} "
                                    f"{_implausible(numbers.iloc[row])}")
            parts[column].append(numbers.to_numpy(dtype=np.int64 if allowed is None else np.int8))
        for column in [c for c in parts if c in ID_COLUMNS]:
            ids = pa.array(text[column], type=pa.large_string())  # pandas may hold it in pieces: join them,
            ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids  # one dictionary a chunk
            parts[column].append(ids.dictionary_encode())
        clicked += int((parts["label"][-1] == 1).sum()) if "label" in parts else 0
        rows += len(chunk)
        del chunk, text
        pa.default_memory_pool().release_unused()
    if rows == 0:
        raise DataError(f"{path}: no rows (expected columns {expected})")
    if "label" in parts and not clicked:
        raise DataError(f"{path}: no positive labels (label = 1): there is no click to learn from")
    columns = {}
    for column in list(parts):  # one column's chunks and its whole copy at a time
        chunks = parts.pop(column)
        columns[column] = _unified(chunks) if column in ID_COLUMNS else np.concatenate(chunks)
        del chunks
    repeated = _repeated(columns)
    dropped = int(repeated.sum())
    if dropped:
        logger.warning("%s: %d exact duplicate rows dropped (the first of each kept): a click read twice would "
                    "be its own last history item", path, dropped)
        for column in list(columns):
            columns[column] = columns.pop(column)[~repeated]
    return as_log(pd.DataFrame(columns, copy=False)), {"rows_read": rows, "dropped_duplicates": dropped}


def _repeated(columns: LogColumns) -> np.ndarray:
    """Which rows equal an earlier row in every column: one sort of all the columns
    (stable, so that the first of equal rows comes first), then neighbours compared."""
    keys = [values.codes if column in ID_COLUMNS else values for column, values in columns.items()]
    order = np.lexsort(keys[::-1])  # the last key sorts first: users, then items...
    same = np.ones(max(order.size - 1, 0), dtype=bool)
    for key in keys:
        ordered = key[order]
        same &= ordered[1:] == ordered[:-1]
        del ordered
    repeated = np.zeros(order.size, dtype=bool)
    repeated[order[1:][same]] = True
    return repeated


def _implausible(stamp: float) -> str:
    """Why ``stamp`` is refused as Unix seconds, and the unit it looks like if one fits."""
    expected = f"expected Unix seconds from 1990-01-01 ({SECONDS[0]}) to 2100-01-01 ({SECONDS[1]})"
    if stamp < 0:
        return f"is negative; {expected}"
    for unit, per_second in (("milliseconds", 10**3), ("microseconds", 10**6), ("nanoseconds", 10**9)):
        if SECONDS[0] <= stamp / per_second <= SECONDS[1]:
            return f"is not plausible as seconds ({expected}); it looks like {unit}: divide by {per_second:,}"
    return f"is not plausible as seconds ({expected})"


def _unified(chunks: list[pa.DictionaryArray]) -> pd.Categorical:
    """One id column from its dictionary-encoded chunks (emptied), with the categories
    :func:`categorical` gives: the distinct ids in sorted order (Arrow sorts strings by
    their UTF-8 bytes, which is the code point order Python sorts them in)."""
    unified = pa.chunked_array(chunks, type=pa.dictionary(pa.int32(), pa.large_string())).unify_dictionaries()
    chunks.clear()
    pa.default_memory_pool().release_unused()  # Arrow's allocator keeps what it freed unless asked
    names = unified.chunk(0).dictionary  # every chunk's now
    order = pc.array_sort_indices(names).to_numpy()
    rank = np.empty(order.size, dtype=np.int32)
    rank[order] = np.arange(order.size, dtype=np.int32)
    codes = np.empty(len(unified), dtype=np.int32)
    start = 0
    for chunk in unified.iterchunks():
        codes[start:start + len(chunk)] = rank[chunk.indices.to_numpy()]
        start += len(chunk)
    del unified
    pa.default_memory_pool().release_unused()
    categories = pd.Index(names.take(order).to_numpy(zero_copy_only=False), dtype=object)
    return pd.Categorical.from_codes(codes, categories=categories)


def _csv_chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    """The CSV's rows as text, ``rows`` at a time (a file with a header only: one empty chunk)."""
    try:
        with pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False, chunksize=rows) as reader:
            yield from reader
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (expected a header {','.join(COLUMNS)})") from None
    except pd.errors.ParserError as err:
        problem = str(err).strip().removeprefix("Error tokenizing data. C error: ")
        raise DataError(f"{path}: malformed CSV ({problem}); expected one value per header column a line") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err})") from None


def _short_line(path: Path, line: int, width: int) -> str | None:
    """What is wrong with CSV ``line`` (1-based) if it is blank or has fewer values than the
    header's ``width`` (pandas fills the missing ones with empty text); read on the error path
    only. Lines are counted as the error messages count them, one a row (a quoted value holding
    a line break shifts both); a file pandas reads compressed is not looked into (None)."""
    try:
        with path.open(encoding="utf-8", newline="") as lines:
            text = next(itertools.islice(lines, line - 1, None), "")
    except (UnicodeDecodeError, OSError):
        return None
    values = next(csv.reader([text]), [])
    if not any(value.strip() for value in values):
        return "a blank line"
    return f"{len(values)} values where the header has {width}" if len(values) < width else None


def _parquet_chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    """The parquet file's rows, ``rows`` at a time, after an empty chunk with its columns."""
    try:
        reader = pq.ParquetFile(path)
        yield reader.schema_arrow.empty_table().to_pandas()
        for batch in reader.iter_batches(batch_size=rows):
            yield batch.to_pandas()
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"{path}: not a readable parquet file ({err})") from None
