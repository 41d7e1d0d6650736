"""Downloads against a local HTTP server: verified, atomic, retried and resumed."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import socket

import numpy as np
import pytest

from sarn.data.amazon import verify_reviews
from sarn.data.download import LOCK_FILE, DownloadError, fetch, read_lock
from sarn.errors import DataError
from sarn.params import RemoteFileSpec
from tests.http_server import Served, serve

BODY = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
DIGEST = hashlib.sha256(BODY).hexdigest()
KEY = "datasets.x.source.reviews"
# A reviews file in the published format, for downloads checked by its verifier.
REVIEWS = gzip.compress("".join(
    json.dumps({"reviewerID": f"U{k % 97}", "asin": f"A{k % 31}", "unixReviewTime": 1_300_000_000 + k}) + "\n"
    for k in range(20_000)).encode(), mtime=0)
REVIEWS_DIGEST = hashlib.sha256(REVIEWS).hexdigest()
HTML = b"<!DOCTYPE html>\n<html><body>Please log in to download this file.</body></html>\n"


def _spec(url: str, sha256: str | None = DIGEST) -> RemoteFileSpec:
    return RemoteFileSpec(file="reviews.json.gz", urls=[f"{url}/reviews.json.gz"], sha256=sha256)


def _listing(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _fetch(spec: RemoteFileSpec, folder, **kw):
    return fetch(spec, KEY, folder, backoff=0.0, timeout=5.0, **kw)


def test_download_is_verified_and_leaves_only_the_file(tmp_path) -> None:
    served = Served({"reviews.json.gz": BODY})
    with serve(served) as url:
        path, digest = _fetch(_spec(url), tmp_path)
    assert path.read_bytes() == BODY and digest == DIGEST
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reviews.json.gz"]


def test_a_dropped_connection_is_resumed_with_range_requests(tmp_path) -> None:
    served = Served({"reviews.json.gz": BODY}, drop_after=100_000, drops=2)
    with serve(served) as url:
        path, _ = _fetch(_spec(url), tmp_path)
    assert path.read_bytes() == BODY
    first, *resumed = [r for _, r in served.requests]
    starts = [int(r.removeprefix("bytes=").rstrip("-")) for r in resumed]
    assert first is None and len(starts) == 2 and 0 < starts[0] < starts[1] < len(BODY)


def test_a_server_without_range_support_restarts_from_zero(tmp_path) -> None:
    served = Served({"reviews.json.gz": BODY}, ranges=False, drop_after=100_000, drops=1)
    with serve(served) as url:
        path, _ = _fetch(_spec(url), tmp_path)
    assert path.read_bytes() == BODY and len(served.requests) == 2


def test_exhausted_retries_keep_the_part_under_a_name_that_is_not_the_file(tmp_path) -> None:
    served = Served({"reviews.json.gz": BODY}, drop_after=100_000, drops=2)
    with serve(served) as url:
        with pytest.raises(DownloadError, match="partial reviews.json.gz.part is kept"):
            _fetch(_spec(url), tmp_path, retries=1)
        assert not (tmp_path / "reviews.json.gz").exists()
        kept = (tmp_path / "reviews.json.gz.part").stat().st_size
        assert 0 < kept < len(BODY)
        path, _ = _fetch(_spec(url), tmp_path)  # the next run resumes where the part ends
    assert path.read_bytes() == BODY and served.requests[-1][1] == f"bytes={kept}-"


def test_checksum_mismatch_keeps_nothing_and_says_how_to_override(tmp_path) -> None:
    with (serve(Served({"reviews.json.gz": BODY})) as url,
          pytest.raises(DataError, match=rf"(?s)does not match {'0' * 64} \(from {KEY}.sha256\).*set {KEY}.sha256")):
        _fetch(_spec(url, sha256="0" * 64), tmp_path)
    assert _listing(tmp_path) == []


def test_unknown_checksum_is_recorded_then_enforced(tmp_path) -> None:
    with serve(Served({"reviews.json.gz": BODY})) as url:
        _fetch(_spec(url, sha256=None), tmp_path)
    assert read_lock(tmp_path) == {"reviews.json.gz": (DIGEST, 1)}
    assert (tmp_path / LOCK_FILE).read_text() == f"{DIGEST}  reviews.json.gz\n"
    (tmp_path / "reviews.json.gz").write_bytes(BODY[:-1] + b"\0")
    with pytest.raises(DataError, match=rf"does not match {DIGEST} \(from .*{LOCK_FILE}, line 1\b"):
        _fetch(_spec(_closed_port_url(), sha256=None), tmp_path)


def test_a_mismatch_against_a_recorded_checksum_names_its_line_in_the_lock_file(tmp_path) -> None:
    lock = tmp_path / LOCK_FILE
    lock.write_text(f"{'1' * 64}  a.gz\n{DIGEST}  reviews.json.gz\n")
    (tmp_path / "reviews.json.gz").write_bytes(REVIEWS)
    where = re.escape(f"(from {lock}, line 2, recorded at its first download)")
    with pytest.raises(DataError, match=rf"reviews.json.gz: SHA-256 \w+ does not match {DIGEST} {where}. .*"
                                        rf"delete line 2 of {re.escape(str(lock))}"):
        _fetch(_spec(_closed_port_url(), sha256=None), tmp_path, verify=verify_reviews)
    (tmp_path / "reviews.json.gz").unlink()  # deleted to be downloaded again: held to the same line
    with serve(Served({"reviews.json.gz": REVIEWS})) as url, pytest.raises(DownloadError) as err:
        _fetch(_spec(url, sha256=None), tmp_path, verify=verify_reviews)
    assert re.search(rf"does not match {DIGEST} {where}; deleted\n.*delete line 2 of", str(err.value))
    assert "sha256 to the new value" not in str(err.value)  # params.yaml is not where the value comes from
    assert _listing(tmp_path) == [LOCK_FILE] and lock.read_text().endswith(f"{DIGEST}  reviews.json.gz\n")


@pytest.mark.parametrize(("served", "reason"), [
    (Served({"reviews.json.gz": REVIEWS[: len(REVIEWS) // 2]}), "ends before its gzip end marker"),
    (Served({"reviews.json.gz": REVIEWS}, length=False, drop_after=len(REVIEWS) // 2, drops=1),
     "ends before its gzip end marker"),
    (Served({"reviews.json.gz": HTML}), "an HTML page, not the file"),
    (Served({"reviews.json.gz": gzip.compress(b"<html>a mirror's error page</html>\n")}),
     "line 1: not a JSON object"),
], ids=["truncated-gzip", "cut-without-content-length", "html-page", "not-reviews"])
def test_a_bad_first_download_is_deleted_and_never_recorded(tmp_path, served: Served, reason: str) -> None:
    with serve(served) as url, pytest.raises(DownloadError, match=f"{url}/reviews.json.gz: .*{reason}.*; deleted"):
        _fetch(_spec(url, sha256=None), tmp_path, verify=verify_reviews)
    assert _listing(tmp_path) == []  # no file, no part, no checksum recorded
    with serve(Served({"reviews.json.gz": REVIEWS})) as url:
        _fetch(_spec(url, sha256=None), tmp_path, verify=verify_reviews)  # the next run gets the good file
    assert (tmp_path / "reviews.json.gz").read_bytes() == REVIEWS
    assert read_lock(tmp_path)["reviews.json.gz"].digest == hashlib.sha256(REVIEWS).hexdigest()


def test_an_unrecorded_file_in_the_folder_is_verified_before_it_is_recorded(tmp_path) -> None:
    (tmp_path / "reviews.json.gz").write_bytes(REVIEWS[:-100])
    url = _closed_port_url()
    with pytest.raises(DownloadError, match=r"reviews.json.gz \(already in the folder, not recorded\): .*"
                                            r"ends before its gzip end marker.*; deleted"):
        _fetch(_spec(url, sha256=None), tmp_path, retries=0, verify=verify_reviews)
    assert _listing(tmp_path) == []
    (tmp_path / "reviews.json.gz").write_bytes(REVIEWS)
    _fetch(_spec(url, sha256=None), tmp_path, verify=verify_reviews)  # placed by hand, whole: used offline
    assert read_lock(tmp_path) == {"reviews.json.gz": (hashlib.sha256(REVIEWS).hexdigest(), 1)}


def test_a_file_placed_by_hand_is_verified_without_the_network(tmp_path) -> None:
    (tmp_path / "reviews.json.gz").write_bytes(BODY)
    path, digest = _fetch(_spec(_closed_port_url()), tmp_path)
    assert path.read_bytes() == BODY and digest == DIGEST
    (tmp_path / "reviews.json.gz").write_bytes(BODY[:1000])
    with pytest.raises(DataError, match="damaged or not the published one: delete it"):
        _fetch(_spec(_closed_port_url()), tmp_path)


def test_unreachable_network_names_the_url_and_what_to_do(tmp_path) -> None:
    url = _closed_port_url()
    with pytest.raises(DownloadError) as err:
        _fetch(_spec(url), tmp_path, retries=0)
    message = str(err.value)
    assert f"{url}/reviews.json.gz" in message and KEY in message
    assert f"place it at {tmp_path / 'reviews.json.gz'}" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_next_mirror_is_tried_when_the_first_fails(tmp_path) -> None:
    with serve(Served({"reviews.json.gz": BODY})) as url:
        spec = RemoteFileSpec(file="reviews.json.gz", sha256=DIGEST,
                              urls=[f"{url}/missing.json.gz", f"{url}/reviews.json.gz"])
        path, _ = _fetch(spec, tmp_path, retries=0)
    assert path.read_bytes() == BODY


@pytest.mark.parametrize(("first", "sha256", "reason"), [
    (HTML, REVIEWS_DIGEST, "an HTML page, not the file"),
    (BODY, REVIEWS_DIGEST, f"SHA-256 {DIGEST} does not match {REVIEWS_DIGEST}"),
    (HTML, None, "an HTML page, not the file"),
    (REVIEWS[:-100], None, "ends before its gzip end marker"),
    (None, REVIEWS_DIGEST, "404 Client Error"),
], ids=["html-page", "checksum-mismatch", "html-page-unknown-checksum", "failed-verification", "http-error"])
def test_a_url_whose_content_fails_gives_way_to_the_next(tmp_path, caplog, first: bytes | None,
                                                         sha256: str | None, reason: str) -> None:
    files = {"good.json.gz": REVIEWS} | ({} if first is None else {"first.json.gz": first})
    with serve(Served(files)) as url:
        spec = RemoteFileSpec(file="reviews.json.gz", sha256=sha256,
                              urls=[f"{url}/first.json.gz", f"{url}/good.json.gz"])
        path, digest = _fetch(spec, tmp_path, verify=verify_reviews)
    assert path.read_bytes() == REVIEWS and digest == REVIEWS_DIGEST
    assert _listing(tmp_path) == (["reviews.json.gz"] if sha256 else [LOCK_FILE, "reviews.json.gz"])
    assert sha256 or read_lock(tmp_path)["reviews.json.gz"].digest == REVIEWS_DIGEST
    if first is not None:  # the failed URL was reported before the next was tried
        assert re.search(rf"{url}/first.json.gz: .*{reason}.*; deleted", caplog.text)


def test_when_every_url_fails_each_is_named_with_its_reason(tmp_path) -> None:
    with serve(Served({"page": HTML, "other": BODY})) as url:
        spec = RemoteFileSpec(file="reviews.json.gz", sha256=REVIEWS_DIGEST,
                              urls=[f"{url}/page", f"{url}/other", f"{url}/gone"])
        with pytest.raises(DownloadError) as err:
            _fetch(spec, tmp_path, verify=verify_reviews)
    lines = str(err.value).splitlines()
    assert lines[0] == f"could not download reviews.json.gz ({KEY}):"
    assert lines[1] == f"  {url}/page: an HTML page, not the file (a login or error page?); deleted"
    assert lines[2] == (f"  {url}/other: SHA-256 {DIGEST} does not match {REVIEWS_DIGEST} (from {KEY}.sha256); "
                        "deleted")
    assert lines[3].startswith(f"  {url}/gone: 404 Client Error")
    assert lines[4] == f"If the publisher changed the file, set {KEY}.sha256 to the new value."
    assert _listing(tmp_path) == []


def test_a_malformed_lock_file_names_its_line(tmp_path) -> None:
    (tmp_path / LOCK_FILE).write_text(f"{DIGEST}  a.gz\nnot a checksum line\n")
    with pytest.raises(DataError, match=rf"{LOCK_FILE}: line 2: expected '<sha256>  <file name>'"):
        read_lock(tmp_path)


def test_an_http_error_is_not_retried_and_no_answer_is_given_up_quickly(tmp_path) -> None:
    served = Served({})
    with serve(served) as url, pytest.raises(DownloadError, match="404"):
        _fetch(_spec(url), tmp_path, retries=5)
    assert len(served.requests) == 1
    with pytest.raises(DownloadError) as err:
        _fetch(_spec(_closed_port_url()), tmp_path, retries=5)
    assert "attempt 2" in str(err.value) and "attempt 3" not in str(err.value)  # two unanswered tries, not six
