"""A user's own log: read, checked row by row, and bad input stopped with the file and line."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sarn.data.preprocess import preprocess
from sarn.data.raw import as_log, columns_of, read_log, read_user_log, write_log
from sarn.errors import DataError
from sarn.params import validate
from tests.conftest import ROOT

T0 = 1_500_000_000  # a plausible time in seconds (2017-07-14)


def _write(tmp_path, text: str):
    path = tmp_path / "clicks.csv"
    path.write_text(text)
    return path


def test_csv_and_parquet_logs_round_trip_through_the_stored_log(tmp_path) -> None:
    frame = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["i1", "i2"], "category_id": ["c", "c"],
                          "timestamp": [T0 + 5, T0 + 7], "label": [1, 0], "context": ["web", "app"]})
    frame.to_csv(tmp_path / "log.csv", index=False)
    frame.to_parquet(tmp_path / "log.parquet")
    for name in ("log.csv", "log.parquet"):
        write_log(tmp_path / "stored.npz", columns_of(read_user_log(tmp_path / name)[0]))
        back = read_log(tmp_path / "stored.npz")
        assert back.astype({c: str for c in ("user_id", "item_id", "category_id", "context")}).to_dict(
            "records") == frame.to_dict("records")
        assert back["label"].dtype == "int8" and back["timestamp"].dtype == "int64"


def test_labels_must_be_0_or_1_and_include_a_click(tmp_path) -> None:
    header = "user_id,item_id,category_id,timestamp,label\n"
    with pytest.raises(DataError, match=r"clicks.csv: line 3: label '2' is not 0 or 1"):
        read_user_log(_write(tmp_path, header + f"u,i,c,{T0},1\nu,i,c,{T0 + 1},2\n"))
    with pytest.raises(DataError, match="clicks.csv: no positive labels"):
        read_user_log(_write(tmp_path, header + f"u,i,c,{T0},0\nu,j,c,{T0 + 1},0\n"))


def test_parquet_errors_name_the_row(tmp_path) -> None:
    path = tmp_path / "log.parquet"
    pd.DataFrame({"user_id": ["u", "v"], "item_id": ["i", "j"], "category_id": ["c", "c"],
                  "timestamp": [str(T0), "soon"]}).to_parquet(path)
    with pytest.raises(DataError, match=r"log.parquet: row 2: timestamp 'soon' is not an integer"):
        read_user_log(path)
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="not a readable parquet file"):
        read_user_log(path)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(DataError, match="clicks.csv: click log not found"):
        read_user_log(tmp_path / "clicks.csv")


def test_empty_file(tmp_path) -> None:
    with pytest.raises(DataError, match="the file is empty"):
        read_user_log(_write(tmp_path, ""))


def test_header_only(tmp_path) -> None:
    with pytest.raises(DataError, match="clicks.csv: no rows"):
        read_user_log(_write(tmp_path, "user_id,item_id,category_id,timestamp\n"))


def test_missing_column(tmp_path) -> None:
    with pytest.raises(DataError, match=r"missing column\(s\) category_id; .* read 'user_id', 'item_id', 'timestamp'"):
        read_user_log(_write(tmp_path, "user_id,item_id,timestamp\nu,i,3\n"))
    with pytest.raises(DataError, match=r"missing column\(s\) item_id, category_id, timestamp; .* read 'user_id', ' item_id'"):
        read_user_log(_write(tmp_path, f"user_id, item_id, category_id, timestamp\nu,i,c,{T0}\n"))


def test_a_column_the_reader_does_not_know_is_refused(tmp_path) -> None:
    """A click label under another name would otherwise be dropped and every impression read as a click."""
    with pytest.raises(DataError, match=r"clicks.csv: unknown column\(s\) 'is_click'; .*must be named label"):
        read_user_log(_write(tmp_path, f"user_id,item_id,category_id,timestamp,is_click\nu,i,c,{T0},0\n"))


def test_non_numeric_timestamp_names_the_line(tmp_path) -> None:
    text = f"user_id,item_id,category_id,timestamp\nu,i,c,{T0}\nu,j,c,yesterday\n"
    with pytest.raises(DataError, match=r"clicks.csv: line 3: timestamp 'yesterday' is not an integer"):
        read_user_log(_write(tmp_path, text))


def test_empty_id_names_the_line(tmp_path) -> None:
    text = f"user_id,item_id,category_id,timestamp\nu,i,c,{T0}\nu,,c,{T0 + 1}\n"
    with pytest.raises(DataError, match="line 3: empty item_id"):
        read_user_log(_write(tmp_path, text))


def test_failed_preprocess_leaves_no_output(tmp_path, params_dict) -> None:
    spec = validate(params_dict).datasets["default"]
    raw = tmp_path / "raw"
    raw.mkdir()
    write_log(raw / "clicks.npz", columns_of(pd.DataFrame(
        {"user_id": ["u"], "item_id": ["i"], "category_id": ["c"], "timestamp": [3]})))
    with pytest.raises(DataError, match="no sample has at least"):
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
        read_user_log(_write(tmp_path, header + "u,i,c,3\nu,i,c,4,extra\n"))
    with pytest.raises(DataError, match="line 3: 3 values where the header has 4 "):
        read_user_log(_write(tmp_path, header + "u,i,c,3\nu,i,c\n"))
    with pytest.raises(DataError, match="line 3: empty timestamp"):
        read_user_log(_write(tmp_path, header + "u,i,c,3\nu,i,c,\n"))
    with pytest.raises(DataError, match="line 3: a blank line"):
        read_user_log(_write(tmp_path, header + "u,i,c,3\n\nu,i,c,5\n"))
    with pytest.raises(DataError, match="line 3: a blank line"):
        read_user_log(_write(tmp_path, header + "u,i,c,3\n   \nu,i,c,5\n"))
    packed = tmp_path / "clicks.csv.gz"  # pandas unpacks it; the short row is still named by its line
    packed.write_bytes(gzip.compress((header + "u,i,c,3\nu,i,c\n").encode()))
    with pytest.raises(DataError, match="line 3: empty timestamp"):
        read_user_log(packed)
    with pytest.raises(DataError, match="line 2: empty user_id"):
        read_user_log(_write(tmp_path, header + "  ,i,c,3\n"))
    path = tmp_path / "latin.csv"
    path.write_bytes(header.encode() + "u,caf\xe9,c,3\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8 text"):
        read_user_log(path)


def test_the_figure_stages_run_on_a_click_log_with_a_context_column(tmp_path, monkeypatch) -> None:
    """The figures rebuild the trained SARN with its context feature (its checkpoint has the
    context bias) and hand it the user's context, as training did."""
    import yaml

    from sarn.cli import main
    from tests.conftest import tiny_params

    rng = np.random.default_rng(1)
    n = 4000
    log = pd.DataFrame({"user_id": rng.integers(0, 200, n), "item_id": rng.integers(0, 60, n),
                        "timestamp": T0 + rng.integers(0, 100_000, n), "context": rng.choice(["web", "app"], n)})
    log["category_id"] = "C" + (log["item_id"] % 6).astype(str)
    log.to_csv(tmp_path / "clicks.csv", index=False)
    params = tiny_params()
    params["datasets"]["mine"] = {
        "source": {"kind": "log", "path": str(tmp_path / "clicks.csv"), "core": {"users": 1, "items": 1}},
        "protocol": {"min_history": 4, "max_len": 10, "split": {"by": "user", "train": 0.8, "valid": 0.1,
                                                                "test": 0.1}, "negative_drop": 0.0, "seed": 0},
        "training": {"max_len": 8, "eval_every_samples": None, "statistics_samples": 2560},
    }
    params["experiment"]["datasets"] = ["mine"]  # the figures draw a dataset the pipeline builds
    params["table3"]["datasets"] = ["mine"]
    params["figures"].update(dataset="mine", categories=["C0", "C1"], min_history=4)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    for argv in (["raw", "--dataset", "mine", "--out", "raw"],
                 ["preprocess", "--dataset", "mine", "--raw", "raw", "--out", "processed"],
                 ["snapshots", "--data", "processed", "--out", "snapshots"],
                 ["figure-data", "--data", "processed", "--snapshots", "snapshots", "--out", "figures"]):
        assert main(argv) == 0, argv
    assert json.loads((tmp_path / "processed/meta.json").read_text())["n_contexts"] == 3
    figures = json.loads((tmp_path / "figures/figures.json").read_text())
    assert 0 < figures["candidates"]["positive"]["click_probability"] < 1
    visited = pd.read_csv(tmp_path / "figures/fig5b.csv", index_col=0)
    assert 4 <= len(visited) <= 8  # the user's history, cut to the training length


def test_a_labeled_log_with_context_runs_through_every_stage_and_reports_auc_only(tmp_path, monkeypatch) -> None:
    import json

    import numpy as np
    import yaml

    from sarn.cli import main
    from tests.conftest import tiny_params

    rng = np.random.default_rng(0)
    n = 6000
    log = pd.DataFrame({"user_id": rng.integers(0, 150, n), "item_id": rng.integers(0, 80, n),
                        "timestamp": T0 + rng.integers(0, 10_000, n), "context": rng.choice(["web", "app"], n)})
    log["category_id"] = log["item_id"] % 7
    log["label"] = (rng.random(n) < np.where(log["context"] == "web", 0.5, 0.2)).astype(int)
    log.to_parquet(tmp_path / "impressions.parquet")
    params = tiny_params()
    params["datasets"]["mine"] = {
        "source": {"kind": "log", "path": str(tmp_path / "impressions.parquet"), "core": {"users": 2, "items": 2}},
        "protocol": {"min_history": 1, "max_len": 10, "split": {"by": "time", "cutoff": T0 + 8000, "valid": 0.2},
                     "negative_drop": 0.5, "seed": 0},
        "training": {"max_len": 10, "eval_every_samples": None, "statistics_samples": 2560},
    }
    params["experiment"].update(datasets=["mine"], n_seeds=1)
    params["table3"]["datasets"] = ["mine"]  # the sweep and the figures use data the pipeline builds
    params["figures"].update(dataset="mine", categories=["C0"])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    from sarn.train import runner

    judged_by_auc: list[bool] = []  # how each seed's failure was judged
    real_failure = runner.failure
    monkeypatch.setattr(runner, "failure", lambda result, constant, biased_logloss=False: (
        judged_by_auc.append(biased_logloss), real_failure(result, constant, biased_logloss))[1])
    for argv in (["raw", "--dataset", "mine", "--out", "data/raw/mine"],
                 ["preprocess", "--dataset", "mine", "--raw", "data/raw/mine", "--out", "data/processed/mine"],
                 *(["train", "--dataset", "mine", "--model", model, "--data", "data/processed/mine",
                    "--out", f"results/table2/mine/{model}"] for model in params["experiment"]["models"]),
                 ["aggregate", "--results", "results/table2", "--table", "table2.csv", "--metrics", "metrics.json",
                  "--curves", "curves"]):
        assert main(argv) == 0, argv
    meta = json.loads((tmp_path / "data/processed/mine/meta.json").read_text())
    assert meta["labeled"] and meta["n_contexts"] == 3
    metrics = json.loads((tmp_path / "metrics.json").read_text())["mine"]["din"]
    assert 0.5 < metrics["auc_mean"] <= 1 and "logloss_mean" not in metrics and "gauc_mean" not in metrics
    runs = pd.read_csv(tmp_path / "results/table2/mine/din/runs.csv")
    assert runs["test_logloss"].isna().all() and runs["test_auc"].notna().all()
    assert runs["failed"].isna().all() and judged_by_auc and all(judged_by_auc)  # by the AUC: the LogLoss is shifted
    judged_by_auc.clear()
    # No negative dropped: nothing biases LogLoss and gAUC, which are then reported.
    params["datasets"]["mine"]["protocol"]["negative_drop"] = 0.0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for argv in (["preprocess", "--dataset", "mine", "--raw", "data/raw/mine", "--out", "data/processed/mine"],
                 ["train", "--dataset", "mine", "--model", "din", "--data", "data/processed/mine",
                  "--out", "results/table2/mine/din"]):
        assert main(argv) == 0, argv
    runs = pd.read_csv(tmp_path / "results/table2/mine/din/runs.csv")
    assert runs["test_logloss"].notna().all() and runs["test_gauc"].notna().all()
    assert judged_by_auc and not any(judged_by_auc)


def test_describe_says_what_preprocessing_keeps_and_warns_of_a_small_test_set(tmp_path, monkeypatch, capsys,
                                                                              caplog) -> None:
    import logging

    import yaml

    from sarn.cli import main
    from tests.conftest import tiny_params

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    monkeypatch.chdir(tmp_path)
    assert main(["describe", "--dataset", "default"]) == 0
    out = capsys.readouterr().out
    assert "datasets.default, read from its source (synthetic)" in out
    assert "  test: 48 samples (10.0%), 50.0% clicks" in out and "known to about ±0.065" in out
    assert not (tmp_path / "data").exists()  # nothing written
    with caplog.at_level(logging.WARNING, logger="sarn.data.preprocess"):
        assert main(["raw", "--dataset", "default", "--out", "raw"]) == 0
        assert main(["preprocess", "--dataset", "default", "--raw", "raw", "--out", "processed"]) == 0
    assert "the test set has 48 samples: an AUC measured on it is known to about ±0.065" in caplog.text
    assert main(["describe", "--dataset", "default", "--raw", "raw"]) == 0
    assert "read from raw/clicks.npz" in capsys.readouterr().out
    # A setting changed since the raw stage ran: described from the source, the raw log named stale.
    params = tiny_params()
    params["datasets"]["default"]["source"]["generator"]["n_users"] = 300
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["describe", "--dataset", "default", "--raw", "raw"]) == 0
    out = capsys.readouterr().out
    assert ("read from its source (synthetic); raw/clicks.npz was made from other settings, another file or an "
            "older version of the project and is out of date") in out
    assert "  test: 60 samples" in out


def test_describe_sees_a_users_log_edited_after_the_raw_stage(tmp_path, monkeypatch, capsys) -> None:
    import yaml

    from sarn.cli import main

    log = pd.DataFrame({"user_id": np.repeat(np.arange(60), 8), "item_id": np.tile(np.arange(8), 60),
                        "timestamp": T0 + np.arange(480)})
    log["category_id"] = log["item_id"] % 3
    log.to_csv(tmp_path / "mine.csv", index=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_params_with_log(tmp_path / "mine.csv")))
    monkeypatch.chdir(tmp_path)
    assert main(["raw", "--dataset", "mine", "--out", "raw"]) == 0
    assert main(["describe", "--dataset", "mine", "--raw", "raw"]) == 0
    assert "read from raw/clicks.npz" in capsys.readouterr().out
    log[log.user_id < 40].to_csv(tmp_path / "mine.csv", index=False)  # fixed in place
    assert main(["describe", "--dataset", "mine", "--raw", "raw"]) == 0
    out = capsys.readouterr().out
    assert "read from its source (log); raw/clicks.npz was made from other settings, another file" in out
    assert "log: 40 users" in out


def test_a_missing_or_foreign_stored_log_is_refused(tmp_path) -> None:
    from sarn.data.arrays import save_arrays

    with pytest.raises(DataError, match="clicks.npz: raw click log not found \\(run the raw stage first\\)"):
        read_log(tmp_path / "clicks.npz")
    save_arrays(tmp_path / "clicks.npz", {"user_id": np.zeros(2, dtype=np.int32)}, "raw")
    with pytest.raises(DataError, match=r"clicks.npz: missing column\(s\) item_id, category_id, timestamp"):
        read_log(tmp_path / "clicks.npz")


def _tricky_log(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Ids with spaces around them, digits that sort as text ("10" < "9"), accents; no two rows alike."""
    rng = np.random.default_rng(seed)
    pool = np.array(["u1", " u10", "u9 ", "10", "9", "007", "é", "Zoë", "ａ", "x y"], dtype=object)
    return pd.DataFrame({
        "user_id": pool[rng.integers(0, pool.size, n)], "item_id": [f"i{k}" for k in rng.integers(0, 50, n)],
        "category_id": rng.choice([" c1", "c2", "c10"], n), "timestamp": T0 + np.arange(n) * 7,
        "label": rng.integers(0, 2, n), "context": rng.choice(["web", " app ", "tv"], n),
    })


def test_reading_in_chunks_gives_the_log_read_whole(tmp_path) -> None:
    frame = _tricky_log()
    whole = frame.astype(str).apply(lambda column: column.str.strip())
    expected = as_log(whole.astype({"timestamp": np.int64, "label": np.int8}))  # coded by categorical()
    assert list(expected["user_id"].cat.categories)[:3] == ["007", "10", "9"]
    frame.to_csv(tmp_path / "log.csv", index=False)
    frame.to_parquet(tmp_path / "log.parquet", row_group_size=64)
    for name, chunk_rows in (("log.csv", 1), ("log.csv", 7), ("log.csv", 10_000), ("log.parquet", 5)):
        pd.testing.assert_frame_equal(read_user_log(tmp_path / name, chunk_rows=chunk_rows)[0], expected)


@pytest.mark.parametrize("chunk_rows", [3, 8])
@pytest.mark.parametrize(("row", "text", "message"), [
    (22, "u,,c,{t}", "line 24: empty item_id"),
    (17, "u,i,c", "line 19: 3 values where the header has 4"),
    (30, "u,i,c,soon", "line 32: timestamp 'soon' is not an integer"),
    (35, "u,i,c,{t},extra", r"malformed CSV \(Expected 4 fields in line 37, saw 5\); expected one value"),
    (12, "u,i,c,{t}000", r"line 14: timestamp '\d+000' is not plausible as seconds .* looks like milliseconds"),
])
def test_errors_name_the_right_line_across_chunk_boundaries(tmp_path, chunk_rows: int, row: int, text: str,
                                                             message: str) -> None:
    lines = [f"u{k % 7},i{k % 5},c{k % 3},{T0 + k}" for k in range(40)]
    lines[row] = text.format(t=T0 + row)
    path = _write(tmp_path, "user_id,item_id,category_id,timestamp\n" + "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"clicks.csv: {message}"):
        read_user_log(path, chunk_rows=chunk_rows)
    frame = pd.DataFrame({"user_id": "u", "item_id": "i", "category_id": "c", "timestamp": [str(T0 + k) for k in range(40)]})
    frame.loc[30, "timestamp"] = "soon"
    frame.to_parquet(tmp_path / "log.parquet", row_group_size=chunk_rows)
    with pytest.raises(DataError, match=r"log.parquet: row 31: timestamp 'soon' is not an integer"):
        read_user_log(tmp_path / "log.parquet", chunk_rows=chunk_rows)


SECONDS = r"\(expected Unix seconds from 1990-01-01 \(631152000\) to 2100-01-01 \(4102444800\)\)"


@pytest.mark.parametrize(("stamp", "message"), [
    ("1700000000123", rf"is not plausible as seconds {SECONDS}; it looks like milliseconds: divide by 1,000$"),
    ("1700000000123456", rf"is not plausible as seconds {SECONDS}; it looks like microseconds: divide by 1,000,000$"),
    ("-1700000000", r"is negative; expected Unix seconds from 1990-01-01"),
    ("631151999", rf"is not plausible as seconds {SECONDS}$"),  # a second before 1990
    ("4102444801", rf"is not plausible as seconds {SECONDS}$"),  # a second after 2100 begins
    ("86400", rf"is not plausible as seconds {SECONDS}$"),  # 1970-01-02, or a day counted from 0
])
def test_timestamps_must_be_plausible_unix_seconds(tmp_path, stamp: str, message: str) -> None:
    from sarn.data.sources import make_raw

    path = _write(tmp_path, f"user_id,item_id,category_id,timestamp\nu,i,c,{T0}\nu,j,c,{stamp}\n")
    with pytest.raises(DataError, match=rf"clicks.csv: line 3: timestamp '{stamp}' {message}"):
        read_user_log(path)
    with pytest.raises(DataError, match=rf"clicks.csv: line 3: timestamp '{stamp}' {message}"):
        make_raw("mine", validate(_params_with_log(path)).datasets["mine"], tmp_path / "raw")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clicks.csv"]  # no raw folder, whole or half
    pd.DataFrame({"user_id": ["u", "v"], "item_id": "i", "category_id": "c",
                  "timestamp": [T0, int(stamp)]}).to_parquet(tmp_path / "log.parquet")
    with pytest.raises(DataError, match=rf"log.parquet: row 2: timestamp '{stamp}' {message}"):
        read_user_log(tmp_path / "log.parquet")


def test_the_first_and_last_plausible_seconds_are_accepted(tmp_path) -> None:
    frame, _ = read_user_log(_write(tmp_path, "user_id,item_id,category_id,timestamp\nu,i,c,631152000\n"
                                              "u,j,c,4102444800\n"))
    assert frame["timestamp"].tolist() == [631_152_000, 4_102_444_800]


def test_exact_duplicates_go_and_rows_differing_in_any_column_stay(tmp_path) -> None:
    header = "user_id,item_id,category_id,timestamp,label\n"
    rows = [f"a,i,c,{T0},1", f"b,i,c,{T0},1", f"a,i,c,{T0},1", f"a,i,c,{T0},0", f" a ,i,c, {T0},1", f"a,i,d,{T0},1",
            f"a,i,c,{T0 + 1},1"]
    frame, counted = read_user_log(_write(tmp_path, header + "\n".join(rows) + "\n"), chunk_rows=2)
    assert counted == {"rows_read": 7, "dropped_duplicates": 2}  # the third row and the fifth (once stripped)
    assert list(zip(frame["user_id"], frame["category_id"], frame["timestamp"] - T0, frame["label"], strict=True)) == [
        ("a", "c", 0, 1), ("b", "c", 0, 1), ("a", "c", 0, 0), ("a", "d", 0, 1), ("a", "c", 1, 1)]


def test_no_history_holds_its_own_target_click_when_rows_repeat(tmp_path, caplog) -> None:
    import json

    from sarn.data.processed import load_split
    from sarn.data.sources import make_raw

    rng = np.random.default_rng(4)
    clicks = pd.DataFrame({"user_id": np.repeat([f"u{u}" for u in range(300)], 8),
                           "item_id": [f"i{k}" for k in rng.integers(0, 60, 2400)],
                           "timestamp": T0 + rng.permutation(2400) * 60})
    clicks["category_id"] = clicks["item_id"].str.len().astype(str)
    again = clicks.sample(n=800, random_state=5)  # repeated rows, as a log exported twice over a day
    pd.concat([clicks, again]).sample(frac=1.0, random_state=6).to_csv(tmp_path / "clicks.csv", index=False)
    spec = validate(_params_with_log(tmp_path / "clicks.csv")).datasets["mine"]
    make_raw("mine", spec, tmp_path / "raw")
    described = json.loads((tmp_path / "raw" / "source.json").read_text())
    assert (described["rows_read"], described["dropped_duplicates"]) == (3200, 800)
    assert "clicks.csv: 800 exact duplicate rows dropped" in caplog.text
    assert len(read_log(tmp_path / "raw" / "clicks.npz")) == 2400
    preprocess("mine", spec, tmp_path / "raw", tmp_path / "processed")
    positives = 0
    for split in ("train", "valid", "test"):
        arrays = load_split(tmp_path / "processed", split)
        clicked = arrays["label"] == 1
        filled = np.arange(arrays["hist_item"].shape[1]) < arrays["length"][:, None]
        itself = (arrays["hist_timestamp"] == arrays["timestamp"][:, None]) & filled  # times are distinct per row
        assert not itself[clicked].any(), split  # no history holds the click it is the target of
        positives += int(clicked.sum())
    assert positives == 300


def _params_with_log(path: Path) -> dict:
    from tests.conftest import tiny_params

    params = tiny_params()
    params["datasets"]["mine"] = {
        "source": {"kind": "log", "path": str(path), "core": {"users": 1, "items": 1}},
        "protocol": {"min_history": 1, "max_len": 20, "split": {"by": "user", "train": 0.8, "valid": 0.1,
                                                                "test": 0.1}, "negative_drop": 0.0, "seed": 0},
        "training": {"max_len": 20, "eval_every_samples": None, "statistics_samples": 2560},
    }
    return params


def _taobao_shaped_log(path: Path, rows: int, seed: int = 0) -> None:
    """A CSV click log shaped like Taobao UserBehavior (as benchmarks/preprocess_speed.py
    makes it: about 100 time-ordered clicks a user, popularity ∝ item rank^-0.9, items and
    categories scaled from the full file), 7-digit ids, no two rows alike. Written as
    fixed-width digits straight from numpy: a few seconds for 200 MB."""
    rng = np.random.default_rng(seed)
    scale = rows / 100_150_807
    n_users, n_items = max(int(987_994 * scale), 10), max(int(4_162_024 * scale), 100)
    items = rng.choice(9_000_000, n_items, replace=False) + 1_000_000
    powers = 10 ** np.arange(9, -1, -1, dtype=np.int64)
    with path.open("wb") as handle:
        handle.write(b"user_id,item_id,category_id,timestamp\n")
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            user = np.sort(rng.integers(0, n_users, n)) + 1_000_000
            rank = ((n_items ** 0.1 - 1) * rng.random(n) + 1) ** 10
            item = items[np.minimum(rank.astype(np.int64), n_items) - 1]
            stamp = 1_511_539_200 + (start + np.arange(n)) % 777_600  # a user's clicks: distinct seconds
            line = np.empty((n, 35), dtype=np.uint8)
            for offset, (values, width) in zip((0, 8, 16, 24), ((user, 7), (item, 7), (item % 9_439 + 1_000_000, 7),
                                                                (stamp, 10)), strict=True):
                line[:, offset:offset + width] = values[:, None] // powers[-width:] % 10 + ord("0")
                line[:, offset + width] = ord(",")
            line[:, -1] = ord("\n")
            handle.write(line.tobytes())


# Run in a fresh process and measured there, the baseline taken after the libraries are
# imported (as benchmarks/preprocess_speed.py measures). The meter is the process's peak
# resident memory as Linux keeps it for its address space (VmHWM): ru_maxrss would start
# from pytest's own high-water mark, which a child inherits across fork and exec.
_PEAK = """
import json, sys
import pandas, pyarrow.parquet
import sarn.data.sources
from sarn.data.raw import read_user_log

def peak_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

base = peak_kib()
rows = len(read_user_log(sys.argv[1])[0])
print(json.dumps({"base_kib": base, "peak_kib": peak_kib(), "rows": rows}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="the meter reads Linux's /proc/self/status")
def test_reading_a_200_mb_log_needs_less_than_twice_its_size_in_memory(tmp_path) -> None:
    path = tmp_path / "clicks.csv"
    try:
        _taobao_shaped_log(path, 6_000_000)
        size = path.stat().st_size
        done = subprocess.run([sys.executable, "-c", _PEAK, str(path)], cwd=ROOT, capture_output=True, text=True,
                              check=True)
    finally:
        path.unlink(missing_ok=True)
    result = json.loads(done.stdout.splitlines()[-1])
    held = (result["peak_kib"] - result["base_kib"]) * 1024
    assert size > 200 * 10**6 and result["rows"] == 6_000_000
    assert held < 2 * size, f"{held / 2**20:.0f} MiB above the libraries for a {size / 2**20:.0f} MiB file"
