"""Streaming parsers of the Amazon 2014 review files and their metadata (data.md).

Reviews are strict JSON, one object per line; metadata lines are Python literals
(single quotes), read with ``ast.literal_eval``, and only for the items the reviews
name. Both are read line by line from gzip: memory grows with users and items, never
with the file. A file cut short (no gzip end marker) is reported as a broken download.
:func:`verify_reviews` and :func:`verify_meta` check a new download the same way before
its checksum is recorded.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
import zlib
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from sarn.data.raw import categorical, sorted_categorical
from sarn.errors import DataError

# Items without metadata, or whose metadata has no category path, get this category.
NO_CATEGORY = "(no category)"
_ASIN = re.compile(r"""['"]asin['"]\s*:\s*['"]([^'"]+)['"]""")
VERIFIED_RECORDS = 1000  # first records of a new download that must parse (the rest is read for integrity)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of a gzip text file, with clear errors for broken files."""
    if not path.is_file():
        raise DataError(f"{path}: not found")
    number = 0
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                yield number, line
    except EOFError:
        raise DataError(
            f"{path}: the file ends before its gzip end marker (after line {number}): a download cut short"
        ) from None
    except (gzip.BadGzipFile, zlib.error, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a readable gzip text file near line {number + 1} ({err})") from None


def _review(path: Path, number: int, line: str) -> tuple[str, str, int]:
    """reviewerID, asin and unixReviewTime of one review line."""
    try:
        review = json.loads(line)
        user, item, stamp = review["reviewerID"], review["asin"], review["unixReviewTime"]
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: line {number}: not a JSON object ({err.msg} at column {err.colno})") from None
    except (KeyError, TypeError) as err:
        raise DataError(
            f"{path}: line {number}: expected keys reviewerID, asin and unixReviewTime, missing {err}"
        ) from None
    if not isinstance(stamp, int) or not isinstance(user, str) or not isinstance(item, str):
        raise DataError(f"{path}: line {number}: reviewerID/asin must be strings and unixReviewTime "
                        f"an integer (got {user!r}, {item!r}, {stamp!r})")
    return user, item, stamp


def _meta(path: Path, number: int, line: str) -> dict:
    """One metadata line as a dict with an 'asin' key."""
    try:
        entry = ast.literal_eval(line)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as err:
        raise DataError(f"{path}: line {number}: not a Python dict literal ({type(err).__name__})") from None
    if not isinstance(entry, dict) or "asin" not in entry:
        raise DataError(f"{path}: line {number}: expected a dict with an 'asin' key")
    return entry


def read_reviews(path: Path) -> pd.DataFrame:
    """user_id (reviewerID), item_id (asin) and timestamp (unixReviewTime) of every review.

    Ids are coded as they come (a dictionary per column), so memory holds each distinct
    id once and 16 bytes a review, whatever the file's size.
    """
    user_codes, item_codes = array("i"), array("i")
    times = array("q")
    users: dict[str, int] = {}
    items: dict[str, int] = {}
    for number, line in _lines(path):
        if not line.strip():
            continue
        user, item, stamp = _review(path, number, line)
        user_codes.append(users.setdefault(user, len(users)))
        item_codes.append(items.setdefault(item, len(items)))
        times.append(stamp)
    if not users:
        raise DataError(f"{path}: no reviews in the file")
    return pd.DataFrame({
        "user_id": sorted_categorical(np.frombuffer(user_codes, dtype=np.int32), list(users)),
        "item_id": sorted_categorical(np.frombuffer(item_codes, dtype=np.int32), list(items)),
        "timestamp": np.frombuffer(times, dtype=np.int64).copy(),
    })


def read_categories(path: Path, wanted: set[str]) -> dict[str, str]:
    """asin → category (the last element of its first category path) for the ``wanted`` asins."""
    found = {}
    for number, line in _lines(path):
        if not line.strip():
            continue
        match = _ASIN.search(line)
        if match is not None and match.group(1) not in wanted:
            continue
        entry = _meta(path, number, line)
        asin = entry["asin"]
        if asin not in wanted:
            continue
        paths = entry.get("categories") or []
        first = paths[0] if paths and isinstance(paths[0], list) else []
        found[asin] = str(first[-1]) if first else NO_CATEGORY
    return found


def _verify(path: Path, parse: Callable[[Path, int, str], object], what: str) -> None:
    """Read ``path`` to its gzip end marker, parsing its first records with ``parse``."""
    parsed = 0
    for number, line in _lines(path):
        if parsed < VERIFIED_RECORDS and line.strip():
            parse(path, number, line)
            parsed += 1
    if not parsed:
        raise DataError(f"{path}: no records (expected {what})")


def verify_reviews(path: Path) -> None:
    """Refuse a reviews file that is not whole gzip or does not start with reviews."""
    _verify(path, _review, "JSON reviews with reviewerID, asin and unixReviewTime")


def verify_meta(path: Path) -> None:
    """Refuse a metadata file that is not whole gzip or does not start with item metadata."""
    _verify(path, _meta, "Python dict literals with an 'asin' key")


def read_amazon(reviews: Path, meta: Path) -> pd.DataFrame:
    """The click log of one Amazon category: every review is a click."""
    frame = read_reviews(reviews)
    items = frame["item_id"].cat.categories
    categories = read_categories(meta, set(items))
    per_item = np.array([categories.get(item, NO_CATEGORY) for item in items], dtype=object)
    frame["category_id"] = categorical(per_item)[frame["item_id"].cat.codes.to_numpy()]
    return frame
