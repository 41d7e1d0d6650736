"""Streaming parser of Taobao UserBehavior (``UserBehavior.csv`` inside its zip, data.md).

No header; columns user_id, item_id, category_id, behavior_type, timestamp; behavior_type
is pv (a click), buy, cart or fav. The file (100 million rows, 3.5 GB unzipped) is read
in chunks straight from the zip; each chunk is reduced at once to the kept behaviours
and time window, as 32-bit ids and 64-bit timestamps, so memory holds the kept rows as
integers only (about 20 bytes a row), never the text.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from sarn.data.raw import categorical
from sarn.errors import DataError

NAMES = ("user_id", "item_id", "category_id", "behavior_type", "timestamp")
BEHAVIORS = ("pv", "buy", "cart", "fav")
CHUNK_ROWS = 500_000  # rows parsed at a time: the parser holds several times their text
_ID_LIMIT = np.iinfo(np.int32).max


@contextmanager
def _open_text(path: Path) -> Iterator[IO[bytes]]:
    """The CSV bytes of ``path``: the single .csv member of a zip, or a plain CSV file."""
    if not path.is_file():
        raise DataError(f"{path}: not found")
    if path.suffix.lower() != ".zip":
        with path.open("rb") as handle:
            yield handle
        return
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise DataError(
            f"{path}: not a complete zip archive (a download cut short?). Delete it and run the stage "
            "again, or place the file from the official page by hand."
        ) from None
    with archive:
        members = [m for m in archive.namelist() if m.lower().endswith(".csv")]
        if len(members) != 1:
            raise DataError(f"{path}: expected exactly one .csv member, found {members or 'none'}")
        with archive.open(members[0]) as handle:
            yield handle


def _first_bad_line(path: Path, start: int) -> str:
    """Describe the first malformed line at or after line ``start`` (1-based)."""
    with _open_text(path) as handle:
        for number, raw in enumerate(io.TextIOWrapper(handle, encoding="utf-8", errors="replace"), start=1):
            if number < start:
                continue
            fields = raw.rstrip("\r\n").split(",")
            problem = None
            if len(fields) != len(NAMES):
                problem = f"{len(fields)} fields, expected {len(NAMES)} ({','.join(NAMES)})"
            elif not all(f.lstrip("-").isdigit() for f in (*fields[:3], fields[4])):
                problem = "user_id, item_id, category_id and timestamp must be integers"
            elif fields[3] not in BEHAVIORS:
                problem = f"behavior_type {fields[3]!r} is not one of {', '.join(BEHAVIORS)}"
            if problem:
                return f"{path}: line {number}: {problem} (got {raw.strip()[:80]!r})"
    return f"{path}: malformed CSV after line {start}"


def read_taobao(path: Path, behaviors: list[str], window: list[int],
                chunk_rows: int = CHUNK_ROWS) -> tuple[pd.DataFrame, dict[str, int]]:
    """The kept rows as a click log, and how many rows were read and dropped by each rule."""
    parts: list[tuple[np.ndarray, ...]] = []
    seen = wrong_behavior = outside = 0
    with _open_text(path) as handle:
        reader = pd.read_csv(
            handle, header=None, names=list(NAMES), chunksize=chunk_rows, engine="c",
            dtype={"user_id": np.int64, "item_id": np.int64, "category_id": np.int64,
                   "behavior_type": "category", "timestamp": np.int64},
        )
        while True:
            try:
                chunk = next(reader)
            except StopIteration:
                break
            except (ValueError, pd.errors.ParserError):
                raise DataError(_first_bad_line(path, seen + 1)) from None
            unknown = set(chunk["behavior_type"].cat.categories) - set(BEHAVIORS)
            if unknown or chunk.isna().to_numpy().any():
                raise DataError(_first_bad_line(path, seen + 1))
            seen += len(chunk)
            stamp = chunk["timestamp"].to_numpy()
            kind = chunk["behavior_type"].isin(behaviors).to_numpy()
            inside = (stamp >= window[0]) & (stamp <= window[1])
            wrong_behavior += int((~kind).sum())
            outside += int((kind & ~inside).sum())
            keep = kind & inside
            ids = [chunk[c].to_numpy()[keep] for c in NAMES[:3]]
            if any(a.size and (a.min() < 0 or a.max() > _ID_LIMIT) for a in ids):
                raise DataError(f"{path}: ids outside 0..{_ID_LIMIT} between lines {seen - len(chunk) + 1} "
                                f"and {seen}")
            parts.append((*(a.astype(np.int32) for a in ids), stamp[keep]))
    if seen == 0:
        raise DataError(f"{path}: no rows (expected lines {','.join(NAMES)})")
    if not any(p[0].size for p in parts):
        raise DataError(f"{path}: no row has behaviour {behaviors} inside the window {window}")
    columns = {}
    for k, name in enumerate(("user_id", "item_id", "category_id", "timestamp")):
        column = np.concatenate([p[k] for p in parts])
        parts = [(*p[:k], None, *p[k + 1:]) for p in parts]  # free the chunks of this column
        columns[name] = categorical(column) if k < 3 else column
        del column
    frame = pd.DataFrame(columns, copy=False)
    return frame, {"rows_read": seen, "dropped_behavior": wrong_behavior, "dropped_window": outside}
