"""Outputs appear complete or not at all."""

from __future__ import annotations

import pytest

from sarn.atomic import atomic_dir, atomic_path, write_json

# An error, or Ctrl-C (which is no Exception): either way the temporary goes.
FAILURES = [RuntimeError, KeyboardInterrupt]


@pytest.mark.parametrize("failure", FAILURES)
def test_failed_directory_write_keeps_the_old_folder(tmp_path, failure) -> None:
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(failure), atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("half")
        raise failure("killed")
    assert (target / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("failure", FAILURES)
def test_failed_file_write_leaves_nothing(tmp_path, failure) -> None:
    target = tmp_path / "x.json"
    with pytest.raises(failure), atomic_path(target) as tmp:
        tmp.write_text("{")
        raise failure("killed")
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_are_removed(tmp_path) -> None:
    stale = tmp_path / ".out.tmp-abc"
    stale.mkdir()
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "f").write_text("x")
    assert not stale.exists()
    assert (tmp_path / "out" / "f").read_text() == "x"


def test_json_is_deterministic_and_rejects_nan(tmp_path) -> None:
    write_json(tmp_path / "a.json", {"b": 1.5, "a": [1, 2]})
    assert (tmp_path / "a.json").read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1.5\n}\n'
    with pytest.raises(ValueError):
        write_json(tmp_path / "n.json", {"x": float("nan")})
    assert not (tmp_path / "n.json").exists()
