"""Fetch the paper's published files into ``data/download/``, checked before they are trusted.

A transfer goes to ``<file>.part``, a name that never looks complete; it is retried, and
an interrupted one resumes with an HTTP Range request. Only once its content passes is it
renamed to its own name. Content passes when it is not an HTML page (a login or error
page served in its place) and its SHA-256 matches the known one; a file without a known
one (params.yaml's ``sha256: null``) must pass the caller's verifier instead (the format's
parser reads it whole; this module knows no format), and only then is its SHA-256
recorded in ``data/download/SHA256SUMS`` (``sha256sum -c`` format), which holds every later
run to it. A transfer whose content fails is deleted and the next URL tried. A file placed in
the folder by hand (for instance on a machine without network) is checked the same way
and used as it is.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import requests
from tqdm import tqdm

from sarn.atomic import write_text
from sarn.errors import DataError
from sarn.params import RemoteFileSpec

log = logging.getLogger(__name__)

DOWNLOAD_DIR = Path("data") / "download"
LOCK_FILE = "SHA256SUMS"
_CHUNK = 1 << 14  # bytes a network read: a dropped connection loses at most this much of what it delivered
_HASH_BLOCK = 1 << 20
_HTML = (b"<!doctype html", b"<html")

# Raises DataError when the file at the path is not a whole, well-formed file of its format.
Verifier = Callable[[Path], None]


class DownloadError(DataError):
    """No URL of a file could be fetched."""


class Recorded(NamedTuple):
    """A SHA-256 recorded in SHA256SUMS, and its line there (named in messages)."""

    digest: str
    line: int


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def read_lock(folder: Path) -> dict[str, Recorded]:
    """File name → recorded SHA-256 and line, from ``folder/SHA256SUMS``."""
    path = folder / LOCK_FILE
    if not path.is_file():
        return {}
    recorded = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise DataError(f"{path}: line {number}: expected '<sha256>  <file name>', got {line!r}")
        recorded[name] = Recorded(digest, number)
    return recorded


def _record(folder: Path, name: str, digest: str) -> None:
    recorded = {n: r.digest for n, r in read_lock(folder).items()} | {name: digest}
    write_text(folder / LOCK_FILE, "".join(f"{d}  {n}\n" for n, d in sorted(recorded.items())))


class ResumingDownloader:
    """Transfers a URL into ``part``, retrying, and resuming where the server honours Range."""

    def __init__(self, part: Path, retries: int, timeout: float, backoff: float) -> None:
        self.part, self.retries, self.timeout, self.backoff = part, retries, timeout, backoff
        self.responded = False  # whether the current attempt got an HTTP answer

    def __call__(self, url: str) -> None:
        errors, unreachable = [], 0
        for attempt in range(self.retries + 1):
            self.responded = False
            try:
                self._transfer(url)
                return
            except requests.HTTPError as err:
                if err.response is not None and err.response.status_code < 500:
                    raise  # the server answered (404, 403...): asking again changes nothing
                errors.append(f"attempt {attempt + 1}: {err}")
            except (requests.RequestException, OSError, _ShortRead) as err:
                errors.append(f"attempt {attempt + 1}: {err}")
                kept = self.part.stat().st_size if self.part.exists() else 0
                log.warning("download of %s interrupted (%s); %d bytes kept", url, err, kept)
                unreachable += not self.responded
                if unreachable >= 2:  # no answer twice: offline or gone, say so without waiting
                    break
            if attempt < self.retries:
                time.sleep(self.backoff * (attempt + 1))
        raise requests.ConnectionError("; ".join(errors))

    def _transfer(self, url: str) -> None:
        have = self.part.stat().st_size if self.part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        with requests.get(url, headers=headers, stream=True, timeout=self.timeout) as response:
            self.responded = True
            if have and response.status_code == 416:  # nothing left to send: complete
                return
            response.raise_for_status()
            resumed = have > 0 and response.status_code == 206
            if have and not resumed:
                log.info("%s: the server ignores Range; starting again from byte 0", url)
                have = 0
            size = response.headers.get("Content-Length")
            total = have + int(size) if size is not None else None
            with self.part.open("ab" if resumed else "wb") as handle, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=self.part.name[:-5], disable=None
            ) as bar:
                for block in response.iter_content(_CHUNK):
                    handle.write(block)
                    bar.update(len(block))
        got = self.part.stat().st_size
        if total is not None and got != total:
            raise _ShortRead(f"got {got} of {total} bytes")


class _ShortRead(Exception):
    pass


class _Rejected(Exception):
    """A file's content is not the published file's."""


class _Mismatch(_Rejected):
    """A file's SHA-256 is not the expected one."""


class _Expected(NamedTuple):
    """The SHA-256 a file must have (None: unknown, then recorded), where it comes from and
    how a publisher's new version is accepted (both named in messages)."""

    digest: str | None
    origin: str
    accept: str


def _expected(spec: RemoteFileSpec, key: str, folder: Path) -> _Expected:
    if spec.sha256:
        return _Expected(spec.sha256, f"{key}.sha256", f"set {key}.sha256 to the new value")
    recorded, lock = read_lock(folder).get(spec.file), folder / LOCK_FILE
    if recorded is None:
        return _Expected(None, "", "")
    return _Expected(recorded.digest, f"{lock}, line {recorded.line}, recorded at its first download",
                     f"delete line {recorded.line} of {lock}: the file is then verified and recorded anew")


def _checked(path: Path, expected: _Expected, verify: Verifier | None) -> str:
    """The SHA-256 of ``path`` once its content passes; raises _Rejected saying why not."""
    with path.open("rb") as handle:
        head = handle.read(256).lstrip().lower()
    if head.startswith(_HTML):
        raise _Rejected("an HTML page, not the file (a login or error page?)")
    actual = sha256_of(path)
    if expected.digest and actual != expected.digest:
        raise _Mismatch(f"SHA-256 {actual} does not match {expected.digest} (from {expected.origin})")
    if not expected.digest and verify is not None:
        try:
            verify(path)
        except DataError as err:
            raise _Rejected(str(err)) from None
    return actual


def fetch(spec: RemoteFileSpec, key: str, folder: Path = DOWNLOAD_DIR, *, verify: Verifier | None = None,
          retries: int = 5, timeout: float = 60.0, backoff: float = 2.0) -> tuple[Path, str]:
    """The checked local copy of ``spec`` and its SHA-256; ``key`` is its params path,
    named in messages. ``verify`` checks a file without a known SHA-256 before that is
    recorded: a first download that is cut short or not the format is never pinned."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / spec.file
    expected = _expected(spec, key, folder)
    failures = []
    if target.exists():
        try:
            actual = _checked(target, expected, verify)
        except _Rejected as err:
            if expected.digest:  # maybe the publisher's new version: the user decides
                raise DataError(f"{target}: {err}. The file is damaged or not the published one: delete it "
                                f"to download it again. If the publisher really changed it, "
                                f"{expected.accept}.") from None
            target.unlink()  # unusable (placed by hand?): download it instead
            failures.append(f"{target} (already in the folder, not recorded): {err}; deleted")
            log.warning("%s", failures[-1])
        else:
            log.info("%s: present and verified (sha256 %s)", target, actual)
    if not target.exists():
        actual = _download(spec, key, target, expected, verify, failures,
                           ResumingDownloader(folder / f"{spec.file}.part", retries, timeout, backoff))
    if not expected.digest:
        _record(folder, spec.file, actual)
        log.info("%s: no published checksum; recorded %s in %s", target, actual, folder / LOCK_FILE)
    return target, actual


def _download(spec: RemoteFileSpec, key: str, target: Path, expected: _Expected, verify: Verifier | None,
              failures: list[str], downloader: ResumingDownloader) -> str:
    """Try each URL in turn until one's content passes: its file is renamed to ``target``;
    returns its SHA-256. ``failures`` holds what failed before, for the message."""
    part = downloader.part
    mismatched = False
    for url in spec.urls:
        log.info("downloading %s from %s", spec.file, url)
        try:
            downloader(url)
            actual = _checked(part, expected, verify)
        except requests.RequestException as err:
            failures.append(f"{url}: {err}")
        except _Rejected as err:
            part.unlink()
            mismatched |= isinstance(err, _Mismatch)
            failures.append(f"{url}: {err}; deleted")
            log.warning("%s", failures[-1])
        else:
            os.replace(part, target)
            return actual
    raise DownloadError(
        f"could not download {spec.file} ({key}):\n  " + "\n  ".join(failures) + "\n"
        + (f"If the publisher changed the file, {expected.accept}.\n" if mismatched else "")
        + f"If this machine is offline or the URLs are gone, fetch the file elsewhere and place it at "
        f"{target}; the stage verifies it and uses it without the network"
        + (f" (the partial {part.name} is kept and resumed next time)." if part.exists() else ".")
    )
