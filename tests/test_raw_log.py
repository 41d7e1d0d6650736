"""Bad raw click logs stop with an error naming the file and line."""

from __future__ import annotations

import pandas as pd
import pytest

from sarn.data.prepare import preprocess
from sarn.data.raw import read_clicks, write_clicks
from sarn.errors import DataError
from sarn.params import validate


def _write(tmp_path, text: str):
    path = tmp_path / "clicks.csv"
    path.write_text(text)
    return path


def test_round_trip(tmp_path) -> None:
    frame = pd.DataFrame({"user_id": ["u1"], "item_id": ["i1"], "category_id": ["c"], "timestamp": [5]})
    write_clicks(tmp_path / "c.csv", frame)
    back = read_clicks(tmp_path / "c.csv")
    assert back.to_dict("records") == [{"user_id": "u1", "item_id": "i1", "category_id": "c", "timestamp": 5}]


def test_missing_file(tmp_path) -> None:
    with pytest.raises(DataError, match="clicks.csv: click log not found"):
        read_clicks(tmp_path / "clicks.csv")


def test_empty_file(tmp_path) -> None:
    with pytest.raises(DataError, match="the file is empty"):
        read_clicks(_write(tmp_path, ""))


def test_header_only(tmp_path) -> None:
    with pytest.raises(DataError, match="no rows after the header"):
        read_clicks(_write(tmp_path, "user_id,item_id,category_id,timestamp\n"))


def test_missing_column(tmp_path) -> None:
    with pytest.raises(DataError, match=r"missing column\(s\) category_id"):
        read_clicks(_write(tmp_path, "user_id,item_id,timestamp\nu,i,3\n"))


def test_non_numeric_timestamp_names_the_line(tmp_path) -> None:
    text = "user_id,item_id,category_id,timestamp\nu,i,c,3\nu,j,c,yesterday\n"
    with pytest.raises(DataError, match=r"clicks.csv: line 3: timestamp 'yesterday' is not an integer"):
        read_clicks(_write(tmp_path, text))


def test_empty_id_names_the_line(tmp_path) -> None:
    text = "user_id,item_id,category_id,timestamp\nu,i,c,3\nu,,c,4\n"
    with pytest.raises(DataError, match="line 3: empty item_id"):
        read_clicks(_write(tmp_path, text))


def test_failed_preprocess_leaves_no_output(tmp_path, params_dict) -> None:
    spec = validate(params_dict).datasets["default"]
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "clicks.csv").write_text("user_id,item_id,category_id,timestamp\nu,i,c,3\n")
    with pytest.raises(DataError, match="no user has at least"):
        preprocess("default", spec, raw, tmp_path / "processed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_cli_rejects_unknown_names_with_exit_code_2(tmp_path, capsys) -> None:
    import yaml

    from sarn.cli import main
    from tests.conftest import tiny_params

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params()))
    args = ["--params", str(params), "train", "--data", str(tmp_path), "--out", str(tmp_path / "o")]
    assert main([*args, "--dataset", "default", "--model", "bert"]) == 2
    assert "unknown model 'bert'" in capsys.readouterr().err
    assert main([*args, "--dataset", "movielens", "--model", "din"]) == 2
    assert "unknown dataset 'movielens'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_wrong_field_counts_and_blank_lines_name_the_line(tmp_path) -> None:
    header = "user_id,item_id,category_id,timestamp\n"
    with pytest.raises(DataError, match="malformed CSV"):
        read_clicks(_write(tmp_path, header + "u,i,c,3\nu,i,c,4,extra\n"))
    with pytest.raises(DataError, match="line 3: empty timestamp"):
        read_clicks(_write(tmp_path, header + "u,i,c,3\nu,i,c\n"))
    with pytest.raises(DataError, match="line 3: empty user_id"):
        read_clicks(_write(tmp_path, header + "u,i,c,3\n\nu,i,c,5\n"))
    with pytest.raises(DataError, match="line 2: empty user_id"):
        read_clicks(_write(tmp_path, header + "  ,i,c,3\n"))
    path = tmp_path / "latin.csv"
    path.write_bytes(header.encode() + "u,caf\xe9,c,3\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8 text"):
        read_clicks(path)
