"""Arrays on disk (samples, raw logs): a versioned, byte-deterministic .npz container.

numpy's own savez stamps the current time into the zip, so two identical runs would
write different bytes and make DVC rerun everything downstream. Here every member
gets a fixed date, so the same arrays always give the same file.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from sarn.atomic import atomic_path
from sarn.errors import DataError

ArrayKind = Literal["raw", "samples"]
# Each kind's version moves when what its files hold changes, so that a stale file is refused
# with the stage that rewrites it named. raw 2: ids stored beside the codes, optional context;
# samples 3: full_length, each history's length before the cut.
SCHEMA_VERSIONS: dict[str, int] = {"raw": 2, "samples": 3}
_WRITTEN_BY = {"raw": "raw", "samples": "preprocess"}
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray], kind: ArrayKind) -> None:
    """Write ``arrays`` plus the schema version of ``kind`` to ``path`` atomically."""
    members = {"schema_version": np.array(SCHEMA_VERSIONS[kind], dtype=np.int64), **arrays}
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for name in sorted(members):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_DATE)
            with zf.open(info, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.asarray(members[name], order="C"), allow_pickle=False)


def load_arrays(path: str | Path, kind: ArrayKind, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Read the arrays (only ``names`` where given) written by :func:`save_arrays`, refusing
    other schema versions of ``kind``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {kind} file not found (run the {_WRITTEN_BY[kind]} stage first)")
    try:
        with np.load(path, allow_pickle=False) as data:
            wanted = data.files if names is None else [*names, "schema_version"]
            arrays = {name: data[name] for name in wanted}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: not a readable {kind} file ({err})") from None
    version = arrays.pop("schema_version", None)
    if version is None or int(version) != SCHEMA_VERSIONS[kind]:
        raise DataError(
            f"{path}: {kind} schema version {None if version is None else int(version)}, "
            f"this code reads version {SCHEMA_VERSIONS[kind]}; rerun the {_WRITTEN_BY[kind]} stage"
        )
    return arrays
