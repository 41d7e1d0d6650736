"""Streaming parser of Taobao UserBehavior (``UserBehavior.csv`` inside its zip, data.md).

No header; columns user_id, item_id, category_id, behavior_type, timestamp; behavior_type
is pv (a click), buy, cart or fav. The file (100 million rows, 3.5 GB unzipped) is read
in chunks straight from the zip; each chunk is reduced at once to the kept behaviours
and time window, as 32-bit ids and 64-bit timestamps, so memory holds the kept rows as
integers only (about 20 bytes a row), never the text. :func:`verify_archive` checks a
new download before its checksum is recorded.
"""

from __future__ import annotations

import io
import itertools
import zipfile
import zlib
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
VERIFIED_ROWS = 1000  # first rows of a new download that must parse (the rest is read for integrity)


def _zipped(path: Path) -> bool:
    """Whether ``path`` is a zip: by its name, or by its first bytes (a download being
    verified is still named ``<file>.part``)."""
    with path.open("rb") as handle:
        return path.suffix.lower() == ".zip" or handle.read(4) == b"PK\x03\x04"


def _archive(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise DataError(f"{path}: not a complete zip archive (a download cut short?)") from None


@contextmanager
def _open_text(path: Path) -> Iterator[IO[bytes]]:
    """The CSV bytes of ``path``: the single .csv member of a zip, or a plain CSV file."""
    if not path.is_file():
        raise DataError(f"{path}: not found")
    if not _zipped(path):
        with path.open("rb") as handle:
            yield handle
        return
    with _archive(path) as archive:
        members = [m for m in archive.namelist() if m.lower().endswith(".csv")]
        if len(members) != 1:
            raise DataError(f"{path}: expected exactly one .csv member, found {members or 'none'}")
        with archive.open(members[0]) as handle:
            yield handle


def _bad_line(path: Path, start: int = 1, stop: int | None = None) -> str | None:
    """Describe the first malformed line among lines ``start`` to ``stop`` (1-based,
    inclusive; None: to the end), or a range without any line; None if all are well formed."""
    number = start - 1
    with _open_text(path) as handle:
        lines = io.TextIOWrapper(handle, encoding="utf-8", errors="replace")
        for number, raw in enumerate(itertools.islice(lines, start - 1, stop), start=start):
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
    return None if number >= start else f"{path}: no rows from line {start} on (expected {','.join(NAMES)})"


def verify_archive(path: Path) -> None:
    """Refuse an archive that is not a whole zip (``testzip`` reads every member and checks
    its CRC) or whose first rows are not UserBehavior rows."""
    problem = _bad_line(path, stop=VERIFIED_ROWS)
    if problem:
        raise DataError(problem)
    if _zipped(path):
        with _archive(path) as archive:
            try:
                damaged = archive.testzip()
            except (zipfile.BadZipFile, zlib.error, EOFError) as err:
                damaged = f"({err})"
        if damaged:
            raise DataError(f"{path}: damaged zip member {damaged} (a download cut short or corrupted)")


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
                chunk = None  # a field the parser could not convert: described below
            if (chunk is None or set(chunk["behavior_type"].cat.categories) - set(BEHAVIORS)
                    or chunk.isna().to_numpy().any()):
                raise DataError(_bad_line(path, seen + 1) or f"{path}: malformed CSV after line {seen}")
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
