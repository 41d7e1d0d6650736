"""The raw stage: a dataset's click log from its source (published files, the generator, a
user's own log), filtered to its k-core, stored in the raw schema.

Layout of a raw dataset folder: ``clicks.npz`` (see :mod:`sarn.data.raw`) and
``source.json`` (which files it came from, their checksums, and how many rows each
filter dropped).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from sarn.atomic import atomic_dir, write_json
from sarn.data.amazon import read_amazon, verify_meta, verify_reviews
from sarn.data.download import DOWNLOAD_DIR, fetch, sha256_of
from sarn.data.raw import (
    LOG_FILE,
    SOURCE_FILE,
    LogColumns,
    columns_of,
    counts,
    k_core,
    read_user_log,
    write_log,
)
from sarn.data.synthetic import generate_clicks
from sarn.data.taobao import read_taobao, verify_archive
from sarn.errors import DataError
from sarn.params import AmazonSource, DatasetSpec, LogSource, SyntheticSource, TaobaoSource

log = logging.getLogger(__name__)


def download(name: str, spec: DatasetSpec, downloads: Path = DOWNLOAD_DIR) -> dict[str, tuple[Path, str]]:
    """Fetch and verify the published files of dataset ``name`` (none for a generated or a
    user's own log): params key under ``source`` → (local path, SHA-256). The raw stage
    calls this first; on its own it fetches ahead, e.g. on a cluster's login node."""
    source = spec.source
    files = {}  # params key → (the file, what a new download of it must parse as)
    if isinstance(source, AmazonSource):
        files = {"reviews": (source.reviews, verify_reviews), "meta": (source.meta, verify_meta)}
    elif isinstance(source, TaobaoSource):
        files = {"archive": (source.archive, verify_archive)}
    return {key: fetch(remote, f"datasets.{name}.source.{key}", downloads, verify=verify)
            for key, (remote, verify) in files.items()}


def _read_source(name: str, spec: DatasetSpec, downloads: Path) -> tuple[pd.DataFrame, dict]:
    """The source's log before the core filter, and what describes where it came from."""
    source = spec.source
    fetched = download(name, spec, downloads)
    described: dict = {"kind": source.kind, "files": {path.name: digest for path, digest in fetched.values()}}
    if isinstance(source, SyntheticSource):
        log.info("raw[%s]: generating the embedded click log (%s users)", name, source.generator.n_users)
        return generate_clicks(source.generator), described
    if isinstance(source, AmazonSource):
        log.info("raw[%s]: parsing %s and %s", name, fetched["reviews"][0], fetched["meta"][0])
        return read_amazon(fetched["reviews"][0], fetched["meta"][0]), described
    if isinstance(source, TaobaoSource):
        log.info("raw[%s]: parsing %s", name, fetched["archive"][0])
        frame, dropped = read_taobao(fetched["archive"][0], source.behaviors, source.window)
        return frame, described | dropped
    if isinstance(source, LogSource):
        path = Path(source.path)
        if not path.is_file():
            raise DataError(f"datasets.{name}.source.path: {path} does not exist "
                            "(expected a CSV or parquet click log)")
        frame, counted = read_user_log(path)
        return frame, {"kind": "log", "files": {str(path): sha256_of(path)}} | counted
    raise AssertionError(f"unhandled source {source!r}")  # pragma: no cover - the schema is closed


def source_settings(spec: DatasetSpec) -> dict:
    """What of the ``source`` entry of ``params.yaml`` decides a raw log's content, as
    ``source.json`` keeps it: not where a published file is fetched from nor its expected
    checksum (``files`` records the bytes read), so that a new mirror or a recorded checksum
    changes nothing downstream of the raw stage."""
    def kept(value: object) -> object:
        if isinstance(value, dict):
            return {k: kept(v) for k, v in value.items() if k not in ("urls", "sha256")}
        return value
    return kept(json.loads(json.dumps(spec.source.model_dump(mode="json"))))


def made_from(raw_dir: Path, spec: DatasetSpec) -> dict | None:
    """``source.json`` of the raw log in ``raw_dir`` when it was made from ``spec``'s source as it
    is now (its settings and, for a user's log, the file's bytes); None when there is no raw
    log or it was made from something else."""
    if not (raw_dir / LOG_FILE).is_file() or not (raw_dir / SOURCE_FILE).is_file():
        return None
    described = json.loads((raw_dir / SOURCE_FILE).read_text(encoding="utf-8"))
    if described.get("settings") != source_settings(spec):
        return None
    if isinstance(spec.source, LogSource):
        for path, digest in described.get("files", {}).items():
            if not Path(path).is_file() or sha256_of(Path(path)) != digest:
                return None
    return described


def raw_log(name: str, spec: DatasetSpec, downloads: Path = DOWNLOAD_DIR) -> tuple[LogColumns, dict]:
    """The raw click log of dataset ``name`` (its columns, after the core filter) and what
    describes where it came from and what each filter dropped (``source.json``)."""
    frame, described = _read_source(name, spec, downloads)
    described["settings"] = source_settings(spec)
    columns = columns_of(frame)
    del frame  # the columns alone hold the data now: the core filter frees them one by one
    before = counts(columns)
    core = getattr(spec.source, "core", None)
    rounds = k_core(columns, core) if core is not None else 0
    return columns, described | {"before_core": before, "core_rounds": rounds, "after_core": counts(columns)}


def make_raw(name: str, spec: DatasetSpec, out_dir: Path, downloads: Path = DOWNLOAD_DIR) -> None:
    """Produce the raw click log of dataset ``name`` in ``out_dir``."""
    columns, described = raw_log(name, spec, downloads)
    before = described["before_core"]
    with atomic_dir(out_dir) as tmp:
        write_log(tmp / LOG_FILE, columns)
        write_json(tmp / SOURCE_FILE, described)
    log.info("raw[%s]: %d rows written to %s (%s)", name, before["interactions"], out_dir / LOG_FILE, described)
