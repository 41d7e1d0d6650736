"""Parsers of the published formats, the core filter and the raw stage of each source.

Real rows cut from the published files come from the folder ``SARN_FIXTURES`` names (by default
the development machines' one); tests that need them skip where there is none. The rest use logs
written out here.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sarn.data.amazon import NO_CATEGORY, read_amazon, read_categories, read_reviews
from sarn.data.preprocess import preprocess
from sarn.data.raw import as_log, columns_of, counts, k_core, read_log
from sarn.data.sources import make_raw
from sarn.data.taobao import read_taobao
from sarn.errors import DataError
from sarn.params import CoreSpec, DatasetSpec
from tests.conftest import ROOT
from tests.http_server import Served, serve

FIXTURES = Path(os.environ.get("SARN_FIXTURES", ROOT.parent / "shared" / "fixtures"))
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason="no folder of rows cut from the published raw files (SARN_FIXTURES: one with "
    "amazon/reviews_Electronics_5.head290.json.gz, its .truncated copy and taobao/UserBehavior.tail10k.csv)")
WINDOW = [1511539200, 1512316799]


def _gzip(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)
    return path


def _review(user: str, item: str, time: int) -> str:
    return json.dumps({"reviewerID": user, "asin": item, "reviewerName": "x", "helpful": [0, 0],
                       "reviewText": "fine", "overall": 5.0, "summary": "ok", "unixReviewTime": time,
                       "reviewTime": "01 1, 2014"})


# Metadata lines are Python literals with single quotes, as in the published files.
META = [
    "{'asin': 'A1', 'title': 'Tablet', 'categories': [['Electronics', 'Computers', 'Tablets'], ['Sale']]}",
    "{'asin': 'A2', 'categories': [['Electronics', 'Headphones']], 'related': {'also_bought': ['A1']}}",
    "{'asin': 'A3', 'title': \"Kid's keyboard\", 'categories': []}",
    "{'asin': 'UNUSED', 'broken': [",  # never evaluated: no review names it
]


@needs_fixtures
def test_real_review_rows_are_read() -> None:
    frame = read_reviews(FIXTURES / "amazon" / "reviews_Electronics_5.head290.json.gz")
    assert len(frame) == 290 and frame["item_id"].nunique() == 6 and frame["user_id"].nunique() == 289
    last = frame.iloc[-1]
    assert (last["user_id"], last["item_id"], last["timestamp"]) == ("A28OZBLQKKYGOR", "1400501520", 1395273600)


@needs_fixtures
def test_a_download_cut_short_is_reported_as_such() -> None:
    path = FIXTURES / "amazon" / "reviews_Electronics_5.truncated.json.gz"
    with pytest.raises(DataError, match=r"truncated.json.gz: the file ends before its gzip end marker \(after "
                                        r"line 290\): a download cut short"):
        read_reviews(path)


def test_categories_are_the_last_element_of_the_first_path(tmp_path) -> None:
    meta = _gzip(tmp_path / "meta.json.gz", META)
    assert read_categories(meta, {"A1", "A2", "A3", "A4"}) == {
        "A1": "Tablets", "A2": "Headphones", "A3": NO_CATEGORY}
    reviews = _gzip(tmp_path / "reviews.json.gz", [_review("u", "A1", 5), _review("u", "A4", 6)])
    frame = read_amazon(reviews, meta)
    assert frame["category_id"].tolist() == ["Tablets", NO_CATEGORY]  # A4 has no metadata


def test_malformed_lines_name_file_and_line(tmp_path) -> None:
    reviews = _gzip(tmp_path / "reviews.json.gz", [_review("u", "A1", 5), '{"reviewerID": "u", "asin": '])
    with pytest.raises(DataError, match=r"reviews.json.gz: line 2: not a JSON object"):
        read_reviews(reviews)
    reviews = _gzip(tmp_path / "reviews.json.gz", [_review("u", "A1", 5), '{"reviewerID": "u", "asin": "A2"}'])
    with pytest.raises(DataError, match=r"line 2: expected keys reviewerID, asin and unixReviewTime"):
        read_reviews(reviews)
    meta = _gzip(tmp_path / "meta.json.gz", [META[0], "{'asin': 'A2', 'categories': [[}"])
    with pytest.raises(DataError, match=r"meta.json.gz: line 2: not a Python dict literal"):
        read_categories(meta, {"A2"})
    empty = _gzip(tmp_path / "empty.json.gz", [])
    with pytest.raises(DataError, match="empty.json.gz: no reviews"):
        read_reviews(empty)
    plain = tmp_path / "plain.json.gz"
    plain.write_text(_review("u", "A1", 5))
    with pytest.raises(DataError, match="plain.json.gz: not a readable gzip text file"):
        read_reviews(plain)


def _taobao_reference(path: Path) -> list[tuple[int, int, int, int]]:
    """The kept rows computed the plain way, row by row."""
    with path.open() as handle:
        return [(int(u), int(i), int(c), int(t)) for u, i, c, b, t in csv.reader(handle)
                if b == "pv" and WINDOW[0] <= int(t) <= WINDOW[1]]


@needs_fixtures
def test_real_taobao_rows_from_csv_and_zip_in_small_chunks(tmp_path) -> None:
    csv_path = FIXTURES / "taobao" / "UserBehavior.tail10k.csv"
    archive = tmp_path / "UserBehavior.csv.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(csv_path, "UserBehavior.csv")
    expected = _taobao_reference(csv_path)
    for path in (csv_path, archive):
        frame, dropped = read_taobao(path, ["pv"], WINDOW, chunk_rows=999)
        got = list(zip(*(frame[c].astype(str).astype(int) for c in ("user_id", "item_id", "category_id")),
                       frame["timestamp"], strict=True))
        assert got == expected
        assert dropped["rows_read"] == 10_000
        assert dropped["rows_read"] - dropped["dropped_behavior"] - dropped["dropped_window"] == len(expected)


@pytest.mark.parametrize(("text", "message"), [
    ("1,2,3,pv,1511539300\n1,2,3,pv,1511539301\n1,2,3,like,1511539302\n",
     r"UserBehavior.csv: line 3: behavior_type 'like' is not one of"),
    ("1,2,3,pv,1511539300\n1,x,3,pv,1511539301\n",
     r"UserBehavior.csv: line 2: user_id, item_id, category_id and timestamp"),
    ("1,2,3,pv,1511539300\n1,2,3,pv\n", r"line 2: 4 fields, expected 5"),
    ("1,2,3,buy,1511539300\n", r"no row has behaviour \['pv'\] inside the window"),
    ("", "UserBehavior.csv: no rows"),
])
def test_taobao_bad_rows(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "UserBehavior.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_taobao(path, ["pv"], WINDOW)


def test_taobao_archive_cut_short(tmp_path) -> None:
    archive = tmp_path / "UserBehavior.csv.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("UserBehavior.csv", "1,2,3,pv,1511539300\n" * 1000)
    archive.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(DataError, match="not a complete zip archive"):
        read_taobao(archive, ["pv"], WINDOW)


def _brute_force_core(rows: list[tuple[str, str]], users: int, items: int) -> list[int]:
    kept = list(range(len(rows)))
    while True:
        user_count = Counter(rows[k][0] for k in kept)
        item_count = Counter(rows[k][1] for k in kept)
        still = [k for k in kept if user_count[rows[k][0]] >= users and item_count[rows[k][1]] >= items]
        if still == kept:
            return kept
        kept = still


def test_core_filter_matches_a_brute_force_on_random_logs() -> None:
    rng = np.random.default_rng(7)
    rounds_seen = set()
    for trial in range(40):
        n = int(rng.integers(20, 400))
        user = rng.integers(0, int(rng.integers(3, 40)), n)
        item = rng.integers(0, int(rng.integers(3, 60)), n)
        frame = as_log(pd.DataFrame({"user_id": [f"u{u}" for u in user], "item_id": [f"i{i}" for i in item],
                                     "category_id": "c", "timestamp": np.arange(n)}))
        core = CoreSpec(users=int(rng.integers(1, 7)), items=int(rng.integers(1, 7)))
        rows = list(zip(frame["user_id"], frame["item_id"], strict=True))
        expected = _brute_force_core(rows, core.users, core.items)
        columns = columns_of(frame)
        if not expected:
            with pytest.raises(DataError, match="no interaction survives"):
                k_core(columns, core)
            continue
        rounds_seen.add(k_core(columns, core))
        assert columns["timestamp"].tolist() == expected, trial
        assert set(columns["user_id"].categories) == set(columns["user_id"])  # unused ids are gone
        assert counts(columns)["users"] == len({u for u, _ in (rows[k] for k in expected)})
    assert max(rounds_seen) >= 2  # the random logs do exercise repeated rounds


def _dataset(source: dict, split: dict | None = None) -> DatasetSpec:
    protocol = {"min_history": 2, "max_len": 5, "split": split or {"by": "user", "train": 0.6, "valid": 0.2,
                                                                     "test": 0.2}, "negative_drop": 0.0, "seed": 3}
    return DatasetSpec.model_validate({"source": source, "protocol": protocol,
                                       "training": {"max_len": protocol["max_len"], "eval_every_samples": None, "statistics_samples": 2560}})


def test_amazon_raw_stage_downloads_parses_and_filters(tmp_path) -> None:
    reviews, meta = [], []
    for u in range(6):
        reviews += [_review(f"U{u}", f"A{(u + k) % 7}", 100 * u + k) for k in range(5)]
    reviews.append(_review("U9", "A1", 50))  # a user with one review: the 5-core drops it
    meta = [f"{{'asin': 'A{k}', 'categories': [['Electronics', 'C{k % 3}']]}}" for k in range(7)]
    files = {"r.json.gz": _gzip(tmp_path / "r.json.gz", reviews).read_bytes(),
             "m.json.gz": _gzip(tmp_path / "m.json.gz", meta).read_bytes()}
    with serve(Served(files)) as url:
        spec = _dataset({"kind": "amazon", "core": {"users": 5, "items": 1},
                         "reviews": {"file": "r.json.gz", "urls": [f"{url}/r.json.gz"], "sha256": None},
                         "meta": {"file": "m.json.gz", "urls": [f"{url}/m.json.gz"], "sha256": None}})
        make_raw("shop", spec, tmp_path / "raw", tmp_path / "download")
    frame = read_log(tmp_path / "raw" / "clicks.npz")
    assert len(frame) == 30 and "U9" not in set(frame["user_id"])
    assert dict(zip(frame["item_id"], frame["category_id"], strict=True))["A4"] == "C1"
    described = json.loads((tmp_path / "raw" / "source.json").read_text())
    assert described["before_core"]["interactions"] == 31 and described["core_rounds"] == 1
    assert set(described["files"]) == {"r.json.gz", "m.json.gz"}
    assert (tmp_path / "download" / "SHA256SUMS").read_text().count("json.gz") == 2
    preprocess("shop", spec, tmp_path / "raw", tmp_path / "processed")
    stats = json.loads((tmp_path / "processed" / "stats.json").read_text())
    assert stats["users"] == 6 and stats["interactions"] == 30 and stats["source"]["kind"] == "amazon"


@needs_fixtures
def test_taobao_raw_stage_from_a_file_placed_by_hand(tmp_path) -> None:
    downloads = tmp_path / "download"
    downloads.mkdir()
    with zipfile.ZipFile(downloads / "UserBehavior.csv.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(FIXTURES / "taobao" / "UserBehavior.tail10k.csv", "UserBehavior.csv")
    spec = _dataset({"kind": "taobao", "behaviors": ["pv"], "window": WINDOW, "core": {"users": 5, "items": 1},
                     "archive": {"file": "UserBehavior.csv.zip", "urls": ["http://127.0.0.1:9/none"], "sha256": None}})
    make_raw("taobao", spec, tmp_path / "raw", downloads)  # no network: the placed file is used
    expected = _taobao_reference(FIXTURES / "taobao" / "UserBehavior.tail10k.csv")
    per_user = Counter(u for u, *_ in expected)
    assert len(read_log(tmp_path / "raw" / "clicks.npz")) == sum(n for n in per_user.values() if n >= 5)
    preprocess("taobao", spec, tmp_path / "raw", tmp_path / "processed")
    stats = json.loads((tmp_path / "processed" / "stats.json").read_text())
    assert stats["users"] == sum(1 for n in per_user.values() if n >= 5)


def test_a_log_entry_pointing_at_a_missing_file(tmp_path) -> None:
    spec = _dataset({"kind": "log", "path": str(tmp_path / "nope.csv"), "core": {"users": 1, "items": 1}})
    with pytest.raises(DataError, match=r"datasets.mine.source.path: .*nope.csv does not exist"):
        make_raw("mine", spec, tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


@needs_fixtures
def test_real_rows_served_over_http_survive_a_dropped_connection(tmp_path) -> None:
    import hashlib

    from sarn.data.amazon import verify_reviews
    from sarn.data.download import DownloadError, fetch
    from sarn.params import RemoteFileSpec

    body = (FIXTURES / "amazon" / "reviews_Electronics_5.head290.json.gz").read_bytes()
    cut = (FIXTURES / "amazon" / "reviews_Electronics_5.truncated.json.gz").read_bytes()
    served = Served({"reviews.json.gz": body, "cut.json.gz": cut}, drop_after=30_000, drops=1)
    with serve(served) as url:
        spec = RemoteFileSpec(file="reviews.json.gz", urls=[f"{url}/reviews.json.gz"],
                              sha256=hashlib.sha256(body).hexdigest())
        path, _ = fetch(spec, "datasets.e.source.reviews", tmp_path, backoff=0.0)
        # A server that sends a cut file as if it were whole, for a file without a known
        # checksum: the bytes arrive, the verifier finds no gzip end marker, nothing is kept.
        cut_spec = RemoteFileSpec(file="cut.json.gz", urls=[f"{url}/cut.json.gz"], sha256=None)
        with pytest.raises(DownloadError, match=r"cut.json.gz.part: the file ends before its gzip end marker "
                                                r"\(after line 290\): a download cut short; deleted"):
            fetch(cut_spec, "datasets.e.source.meta", tmp_path, backoff=0.0, verify=verify_reviews)
    assert served.requests[1][1] is not None  # the second request resumed with a Range
    assert len(read_reviews(path)) == 290
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reviews.json.gz"]  # no cut file, no SHA256SUMS


def _zip(rows: str, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as zf:
        zf.writestr("UserBehavior.csv", rows)
    return buffer.getvalue()


ROWS = "".join(f"{u},{u % 7},{u % 3},pv,{WINDOW[0] + u}\n" for u in range(3000))
_GOOD = _zip(ROWS)
_STORED = _zip(ROWS, zipfile.ZIP_STORED)
_DAMAGED = _STORED.replace(b"2999,3,2,pv", b"2999,3,2,PV")  # the last row: past the rows parsed first


@pytest.mark.parametrize(("body", "reason"), [
    (_GOOD[:-200], "not a complete zip archive"),
    (_DAMAGED, "damaged zip member UserBehavior.csv"),
    (_zip("user_id,item_id,category_id,behavior_type,timestamp\n" + ROWS),
     "line 1: user_id, item_id, category_id and timestamp must be integers"),
    (_zip("1,2,3,pv\n" * 10), "line 1: 4 fields, expected 5"),
], ids=["cut-short", "crc-mismatch", "a-header-line", "four-columns"])
def test_a_bad_taobao_archive_is_never_recorded(tmp_path, body: bytes, reason: str) -> None:
    from sarn.data.download import DownloadError
    from sarn.data.sources import download

    def spec(url: str) -> DatasetSpec:
        return _dataset({"kind": "taobao", "behaviors": ["pv"], "window": WINDOW, "core": {"users": 1, "items": 1},
                         "archive": {"file": "UserBehavior.csv.zip", "urls": [url], "sha256": None}})

    assert _DAMAGED != _STORED
    with serve(Served({"a.zip": body, "b.zip": _GOOD})) as url:
        with pytest.raises(DownloadError, match=f"{url}/a.zip: .*{reason}"):
            download("taobao", spec(f"{url}/a.zip"), tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == []
        download("taobao", spec(f"{url}/b.zip"), tmp_path)
    assert (tmp_path / "UserBehavior.csv.zip").read_bytes() == _GOOD
    assert (tmp_path / "SHA256SUMS").read_text().endswith("  UserBehavior.csv.zip\n")


def test_amazon_metadata_that_is_not_python_literals_is_never_recorded(tmp_path) -> None:
    from sarn.data.download import DownloadError
    from sarn.data.sources import download

    reviews = _gzip(tmp_path / "r.json.gz", [_review("U1", "A1", 1_300_000_000)]).read_bytes()
    meta = _gzip(tmp_path / "m.json.gz", ['{"asin": "A1", "categories": [["E"]], "imUrl": null}']).read_bytes()
    downloads = tmp_path / "download"
    with serve(Served({"r.json.gz": reviews, "m.json.gz": meta})) as url:
        spec = _dataset({"kind": "amazon", "core": {"users": 1, "items": 1},
                         "reviews": {"file": "r.json.gz", "urls": [f"{url}/r.json.gz"], "sha256": None},
                         "meta": {"file": "m.json.gz", "urls": [f"{url}/m.json.gz"], "sha256": None}})
        with pytest.raises(DownloadError, match=r"m.json.gz.part: line 1: not a Python dict literal"):
            download("shop", spec, downloads)
    assert sorted(p.name for p in downloads.iterdir()) == ["SHA256SUMS", "r.json.gz"]
    assert "m.json.gz" not in (downloads / "SHA256SUMS").read_text()


def test_the_raw_command_takes_its_download_folder(tmp_path, monkeypatch) -> None:
    import yaml

    from sarn.cli import main
    from tests.conftest import tiny_params

    downloads = tmp_path / "mirror"
    downloads.mkdir()
    reviews = [_review(f"U{u}", f"A{(u + k) % 4}", 10 * u + k) for u in range(5) for k in range(5)]
    _gzip(downloads / "r.json.gz", reviews)
    _gzip(downloads / "m.json.gz", [f"{{'asin': 'A{k}', 'categories': [['E', 'C{k}']]}}" for k in range(4)])
    params = tiny_params()
    params["datasets"]["shop"] = {
        "source": {"kind": "amazon", "core": {"users": 5, "items": 5},
                   "reviews": {"file": "r.json.gz", "urls": ["http://127.0.0.1:9/r"], "sha256": None},
                   "meta": {"file": "m.json.gz", "urls": ["http://127.0.0.1:9/m"], "sha256": None}},
        "protocol": params["datasets"]["default"]["protocol"],
        "training": params["datasets"]["default"]["training"],
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    assert main(["raw", "--dataset", "shop", "--out", "raw", "--downloads", str(downloads)]) == 0
    assert len(read_log(tmp_path / "raw" / "clicks.npz")) == 25
    assert main(["raw", "--dataset", "shop", "--out", "raw2"]) == 2  # data/download/ is empty: offline
    assert not (tmp_path / "raw2").exists()
    files = {name: (downloads / name).read_bytes() for name in ("r.json.gz", "m.json.gz")}
    with serve(Served(files)) as url:
        for entry, name in (("reviews", "r.json.gz"), ("meta", "m.json.gz")):
            params["datasets"]["shop"]["source"][entry]["urls"] = [f"{url}/{name}"]
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
        assert main(["download", "--dataset", "shop"]) == 0  # fetched ahead, e.g. on a login node
    assert (tmp_path / "data" / "download" / "r.json.gz").read_bytes() == files["r.json.gz"]
    assert main(["raw", "--dataset", "shop", "--out", "raw3"]) == 0  # now offline is fine
    assert main(["download", "--dataset", "default"]) == 0  # nothing to fetch for generated data


def test_the_recorded_source_settings_leave_out_mirrors_and_expected_checksums(params_dict) -> None:
    """A new mirror or a checksum written into params.yaml changes no byte of the log: recording
    them would change source.json, then stats.json, and retrain every run on the dataset."""
    from sarn.data.sources import source_settings
    from sarn.params import validate

    spec = validate(params_dict).datasets["electronics"]
    settings = source_settings(spec)
    assert settings["reviews"] == {"file": "reviews_Electronics_5.json.gz"} and settings["core"] == {"users": 5, "items": 5}
    params_dict["datasets"]["electronics"]["source"]["reviews"]["urls"] = ["http://127.0.0.1:1/mirror.json.gz"]
    params_dict["datasets"]["electronics"]["source"]["reviews"]["sha256"] = None
    assert source_settings(validate(params_dict).datasets["electronics"]) == settings
    params_dict["datasets"]["electronics"]["source"]["core"]["users"] = 10
    assert source_settings(validate(params_dict).datasets["electronics"]) != settings
