"""Write outputs under a temporary name and rename them into place.

A stage killed halfway (``kill -9``) must never leave a file or folder that looks
complete, so that both DVC and Snakemake rerun it instead of trusting it. Any other end
(an error, a full disk, Ctrl-C) removes the temporary first. A write that fails for a
reason of the machine (a full disk, a read-only or foreign folder) is reported as one
:class:`~sarn.errors.OutputError` naming the output, however deep in torch or pandas it failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sarn.errors import OutputError, os_error_message

_TMP_MARK = ".tmp-"


def _umask() -> int:
    """The process umask (mkstemp/mkdtemp ignore it and create private files)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _tmp_prefix(target: Path) -> str:
    return f".{target.name}{_TMP_MARK}"


def remove_stale_temporaries(target: Path) -> None:
    """Delete leftovers of an earlier, interrupted write of ``target``."""
    parent = target.parent
    if not parent.is_dir():
        return
    for leftover in parent.glob(_tmp_prefix(target) + "*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _fsync_tree(path: Path) -> None:
    """Flush a file, or every file below a folder, to disk before it is renamed into place,
    so that a power cut cannot leave an empty file under the final name."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for file in files:
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _concerns(err: OSError, target: Path) -> bool:
    """Whether ``err`` is about writing ``target`` (its folder, its temporary), not, say, about
    an input read meanwhile. pandas and Python's file writes name no file: those are."""
    if err.filename is None:
        return True
    failed, folder = Path(os.path.abspath(err.filename)), Path(os.path.abspath(target.parent))
    return failed.is_relative_to(folder) or folder.is_relative_to(failed)


@contextlib.contextmanager
def _writing(target: Path) -> Iterator[None]:
    """Turn an OSError about writing ``target`` into an OutputError that names it."""
    try:
        yield
    except OSError as err:
        if not _concerns(err, target):
            raise
        raise OutputError(f"cannot write {os_error_message(err, target)}") from err


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary file path beside ``target``; rename it over ``target`` on success."""
    target = Path(target)
    with _writing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target)
        fd, tmp_name = tempfile.mkstemp(prefix=_tmp_prefix(target), suffix=target.suffix, dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            tmp.chmod(0o666 & ~_umask())
            yield tmp
            _fsync_tree(tmp)
            os.replace(tmp, target)
            _fsync_dir(target.parent)
        finally:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces the folder ``target``.

    The old folder is moved aside before the new one is renamed in, so at no moment
    does ``target`` hold a mixture of old and new files.
    """
    target = Path(target)
    with _writing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target)
        tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(target), dir=target.parent))
        try:
            tmp.chmod(0o777 & ~_umask())
            yield tmp
            _fsync_tree(tmp)
            if target.exists():
                old = Path(tempfile.mkdtemp(prefix=_tmp_prefix(target), dir=target.parent))
                os.replace(target, old / "old")
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
            _fsync_dir(target.parent)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def dumps_json(data: Any) -> str:
    """Serialise deterministically: sorted keys, fixed indentation, trailing newline."""
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_json(target: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as JSON to ``target`` atomically."""
    write_text(target, dumps_json(data))
