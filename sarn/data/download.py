"""Fetch the paper's published files into ``data/download/``, verified by SHA-256.

pooch does the verified, atomic part (a temporary name, the hash check, then the
rename); the downloader below adds what pooch lacks: retries that resume an interrupted
transfer with an HTTP Range request (the partial bytes live in ``<file>.part``, a name
that never looks complete), and a progress bar. A file already in the folder (placed by
hand, for instance on a machine without network) is verified and used as it is.

Checksums: a known one comes from params.yaml; for a file without one, the first
download records its SHA-256 in ``data/download/SHA256SUMS`` (``sha256sum -c`` format)
and every later run is held to it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import pooch
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


class DownloadError(DataError):
    """No URL of a file could be fetched."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def read_lock(folder: Path) -> dict[str, str]:
    """File name → recorded SHA-256, from ``folder/SHA256SUMS``."""
    path = folder / LOCK_FILE
    if not path.is_file():
        return {}
    recorded = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise DataError(f"{path}: line {number}: expected '<sha256>  <file name>', got {line!r}")
        recorded[name] = digest
    return recorded


def _record(folder: Path, name: str, digest: str) -> None:
    recorded = read_lock(folder) | {name: digest}
    write_text(folder / LOCK_FILE, "".join(f"{d}  {n}\n" for n, d in sorted(recorded.items())))


class ResumingDownloader:
    """A pooch downloader that retries and resumes where the server honours Range."""

    def __init__(self, part: Path, retries: int, timeout: float, backoff: float) -> None:
        self.part, self.retries, self.timeout, self.backoff = part, retries, timeout, backoff
        self.responded = False  # whether the current attempt got an HTTP answer

    def __call__(self, url: str, output_file: str, pooch_obj: object, check_only: bool = False) -> None:
        errors, unreachable = [], 0
        for attempt in range(self.retries + 1):
            self.responded = False
            try:
                self._transfer(url)
                os.replace(self.part, output_file)
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


def fetch(spec: RemoteFileSpec, key: str, folder: Path = DOWNLOAD_DIR, *, retries: int = 5,
          timeout: float = 60.0, backoff: float = 2.0) -> tuple[Path, str]:
    """The verified local copy of ``spec`` and its SHA-256; ``key`` is its params path,
    named in messages."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / spec.file
    recorded = read_lock(folder).get(spec.file)
    expected = spec.sha256 or recorded
    origin = f"{key}.sha256" if spec.sha256 else f"{folder / LOCK_FILE}"
    if target.exists():
        actual = sha256_of(target)
        if expected and actual != expected:
            raise DataError(
                f"{target}: SHA-256 {actual} does not match {expected} (from {origin}). The file is "
                "damaged or not the published one: delete it to download it again. If the publisher "
                f"really changed it, set {key}.sha256 to the new value (or remove its line from "
                f"{folder / LOCK_FILE})."
            )
        log.info("%s: present and verified (sha256 %s)", target, actual)
    else:
        _download(spec, key, folder, expected, retries, timeout, backoff)
        actual = sha256_of(target)
    if not expected:
        _record(folder, spec.file, actual)
        log.info("%s: no published checksum; recorded %s in %s", target, actual, folder / LOCK_FILE)
    return target, actual


def _download(spec: RemoteFileSpec, key: str, folder: Path, expected: str | None, retries: int,
              timeout: float, backoff: float) -> None:
    part = folder / f"{spec.file}.part"
    downloader = ResumingDownloader(part, retries, timeout, backoff)
    failures = []
    for url in spec.urls:
        log.info("downloading %s from %s", spec.file, url)
        try:
            pooch.retrieve(url, known_hash=f"sha256:{expected}" if expected else None, fname=spec.file,
                           path=folder, downloader=downloader)
            return
        except ValueError as err:  # pooch: the hash does not match
            part.unlink(missing_ok=True)
            raise DataError(
                f"{url}: the downloaded {spec.file} does not match its SHA-256 {expected} ({err}). "
                f"Nothing was kept. If the publisher changed the file, set {key}.sha256 to the new value."
            ) from None
        except requests.RequestException as err:
            failures.append(f"{url}: {err}")
    raise DownloadError(
        f"could not download {spec.file} ({key}):\n  " + "\n  ".join(failures) + "\n"
        f"If this machine is offline or the URLs are gone, fetch the file elsewhere and place it at "
        f"{folder / spec.file}; the stage verifies it and uses it without the network"
        + (f" (the partial {part.name} is kept and resumed next time)." if part.exists() else ".")
    )
