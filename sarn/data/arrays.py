"""Arrays on disk (samples, raw logs): a versioned, byte-deterministic .npz container.

numpy's own savez stamps the current time into the zip, so two identical runs would
write different bytes and make DVC rerun everything downstream. Here every member
gets a fixed date, so the same arrays always give the same file.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sarn.atomic import atomic_path
from sarn.errors import DataError

SCHEMA_VERSION = 3  # 2: raw ids moved from meta.json to ids.npz; optional context; 3: full_length
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` plus the schema version to ``path`` atomically."""
    members = {"schema_version": np.array(SCHEMA_VERSION, dtype=np.int64), **arrays}
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for name in sorted(members):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_DATE)
            with zf.open(info, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.asarray(members[name], order="C"), allow_pickle=False)


def load_arrays(path: str | Path, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Read the arrays (only ``names`` where given) written by :func:`save_arrays`, refusing
    other schema versions."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: sample file not found (run the preprocess stage first)")
    try:
        with np.load(path, allow_pickle=False) as data:
            wanted = data.files if names is None else [*names, "schema_version"]
            arrays = {name: data[name] for name in wanted}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: not a readable sample file ({err})") from None
    version = arrays.pop("schema_version", None)
    if version is None or int(version) != SCHEMA_VERSION:
        raise DataError(
            f"{path}: sample schema version {None if version is None else int(version)}, "
            f"this code reads version {SCHEMA_VERSION}; rerun the preprocess stage"
        )
    return arrays
