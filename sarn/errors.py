"""Errors the command line reports as a one-line message instead of a traceback."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path


class SarnError(Exception):
    """Base class for problems caused by input, configuration or a failed run."""


class ConfigError(SarnError):
    """params.yaml (or a value in it) is not what the project expects."""


class DataError(SarnError):
    """An input file is missing, malformed or inconsistent."""


class TrainingError(SarnError):
    """A training run cannot go on (for example its loss became NaN)."""


class OutputError(SarnError):
    """An output cannot be written: the disk is full, the folder is read-only or not ours."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what was under way (``where``: the run and seed being trained), so that the
    command line can say where it stopped; still a KeyboardInterrupt for every ``finally``."""

    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


def os_error_message(err: OSError, path: str | os.PathLike[str] | None = None) -> str:
    """``path: <errno text>`` for ``err`` (``path`` defaults to the file the error names); a full
    disk also says how much room is left on it, which neither torch's nor pandas' own errors say."""
    where = path if path is not None else err.filename
    text = err.strerror or str(err)
    if where is None:
        return text
    if err.errno == errno.ENOSPC:
        text += f" ({_free_space(Path(where))} free on that filesystem)"
    return f"{where}: {text}"


def _free_space(path: Path) -> str:
    existing = next(p for p in [path.absolute(), *path.absolute().parents] if p.exists())
    free = shutil.disk_usage(existing).free
    for power, unit in ((3, "GiB"), (2, "MiB"), (1, "KiB")):
        if free >= 1024**power:
            return f"{free / 1024**power:.1f} {unit}"
    return f"{free} bytes"
