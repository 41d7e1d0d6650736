"""A run folder's record, ``run.json``: what produced the run (written by the train stage), read
by the stages that rebuild its model and by the report, which must not load torch for it."""

from __future__ import annotations

import json
from pathlib import Path

from sarn.errors import DataError

RUN_FILE = "run.json"


def read_run_record(folder: Path) -> dict:
    """The record of the run in ``folder``; a missing or unreadable one named with its path."""
    path = folder / RUN_FILE
    if not path.is_file():
        raise DataError(f"{path}: not found (written with runs.csv by the train stage: train the run first)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a run record ({err}): train the run again") from None
