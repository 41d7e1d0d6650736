"""Sample construction on a hand-made log whose expected samples are written out here."""

from __future__ import annotations

import io
import textwrap

import numpy as np
import pandas as pd
import pytest

from sarn.data.arrays import load_arrays, save_arrays
from sarn.data.raw import COLUMNS, as_log
from sarn.data.samples import build_samples
from sarn.errors import DataError
from sarn.params import ProtocolSpec

# Rows are deliberately out of time order; "eve" has two clicks at t=40 (file order
# wins), "bob" has too short a history, "zed" clicks items nobody else clicks.
LOG = textwrap.dedent(
    """\
    user_id,item_id,category_id,timestamp
    ann,i6,c1,60
    ann,i1,c1,10
    ann,i2,c1,20
    ann,i3,c2,30
    ann,i4,c2,40
    ann,i5,c3,50
    bob,i1,c1,10
    bob,i2,c1,20
    bob,i3,c2,30
    bob,i4,c2,40
    cat,i2,c1,5
    cat,i4,c2,6
    cat,i6,c1,7
    cat,i1,c1,8
    cat,i3,c2,9
    dan,i5,c3,1
    dan,i1,c1,2
    dan,i2,c1,3
    dan,i3,c2,4
    dan,i4,c2,5
    dan,i6,c1,6
    eve,i3,c2,10
    eve,i2,c1,20
    eve,i4,c2,40
    eve,i1,c1,40
    eve,i5,c3,50
    zed,i7,c4,1
    zed,i8,c4,2
    zed,i9,c4,3
    zed,i7,c4,4
    zed,i8,c4,5
    """
)

# Expected (history of raw items, oldest first, cut to max_len=4; positive target).
EXPECTED = {
    "ann": (["i2", "i3", "i4", "i5"], "i6", 60),
    "cat": (["i2", "i4", "i6", "i1"], "i3", 9),
    "dan": (["i1", "i2", "i3", "i4"], "i6", 6),
    "eve": (["i3", "i2", "i4", "i1"], "i5", 50),
    "zed": (["i7", "i8", "i9", "i7"], "i8", 5),
}
CATEGORY = {f"i{k}": c for k, c in [(1, "c1"), (2, "c1"), (3, "c2"), (4, "c2"), (5, "c3"), (6, "c1"),
                                     (7, "c4"), (8, "c4"), (9, "c4")]}


def _log() -> pd.DataFrame:
    frame = pd.read_csv(io.StringIO(LOG), dtype=str)
    frame["timestamp"] = frame["timestamp"].astype(np.int64)
    return as_log(frame)


def _protocol(**over) -> ProtocolSpec:
    spec = {"min_history": 4, "max_len": 4, "split": {"by": "user", "train": 0.6, "valid": 0.2, "test": 0.2},
            "negative_drop": 0.0, "seed": 5}
    spec.update(over)
    return ProtocolSpec.model_validate(spec)


def _decode(meta: dict, index: np.ndarray, key: str) -> list[str | None]:
    ids = meta["ids"][key]
    return [ids[i - 1] if i > 0 else None for i in index]


def test_samples_follow_the_protocol() -> None:
    splits, meta = build_samples(_log(), _protocol())
    seen_users: list[int] = []
    for name, arrays in splits.items():
        for row in range(arrays["label"].size):
            seen_users.append(int(arrays["user"][row]))
    # bob (3 earlier clicks) is dropped; every kept user gives exactly two samples and
    # users are numbered in sorted order of their raw ids.
    kept = sorted(EXPECTED)
    assert sorted(seen_users) == sorted(np.repeat(range(len(kept)), 2).tolist())
    train_items = set(meta["ids"]["item_ids"])  # test_vocabulary_comes_from_training_users_only
    for name, arrays in splits.items():
        for row in range(arrays["label"].size):
            user = kept[arrays["user"][row]]
            history, positive, time = EXPECTED[user]
            n = arrays["length"][row]
            assert n == len(history)
            assert (arrays["hist_item"][row, n:] == 0).all() and (arrays["neg_item"][row, n:] == 0).all()
            decoded = _decode(meta, arrays["hist_item"][row, :n], "item_ids")
            if name == "train":
                assert decoded == history
            else:  # items never seen in training map to index 0 (unknown)
                assert decoded == [h if h in train_items else None for h in history]
            assert arrays["timestamp"][row] == time
            label = arrays["label"][row]
            # negative first, then positive, for each user
            assert label == row % 2
            target = _decode(meta, arrays["item"][row : row + 1], "item_ids")[0]
            if label == 1:
                assert target == (positive if name == "train" or positive in train_items else None)
            else:
                assert target != positive
            cat = _decode(meta, arrays["category"][row : row + 1], "category_ids")[0]
            if target is not None:
                assert cat == CATEGORY[target]
    assert splits["train"]["label"].size == 6 and splits["valid"]["label"].size == 2
    assert splits["test"]["label"].size == 2
    assert {k: meta["statistics"][k] for k in ("users", "items", "categories", "interactions")} == {
        "users": 6, "items": 9, "categories": 4, "interactions": 31
    }


def test_vocabulary_comes_from_training_users_only() -> None:
    """The items of the training targets (positives and sampled negatives) and of the training
    users' whole histories, the part cut off by ``max_len`` included, as the reference counts
    its training file; not the history negatives, which are drawn from every user's clicks."""
    log = pd.read_csv(io.StringIO(LOG), dtype=str).astype({"timestamp": np.int64})
    for max_len in (4, 2):
        splits, meta = build_samples(_log(), _protocol(max_len=max_len))
        train = splits["train"]
        users = {meta["ids"]["user_ids"][u] for u in train["user"]}
        earlier = log[log.user_id.isin(users)].sort_values("timestamp", kind="stable").groupby("user_id").head(-1)
        expected = set(_decode(meta, train["item"], "item_ids")) | set(earlier.item_id)
        assert set(meta["ids"]["item_ids"]) == expected
        assert meta["n_items"] == len(expected) + 1
        assert (train["full_length"] == [len(earlier[earlier.user_id == meta["ids"]["user_ids"][u]])
                                         for u in train["user"]]).all()
        assert (train["length"] == np.minimum(train["full_length"], max_len)).all()


def test_history_negatives_do_not_enter_the_vocabulary(monkeypatch) -> None:
    """Every history negative drawn at preprocessing is made one of zed's items that no training
    target is (zed, alone in clicking i7 to i9, is a test user under seed 5): it stays unknown,
    as in the reference, whose vocabulary counts no history negative."""
    import sarn.data.samples as samples_module

    splits, meta = build_samples(_log(), _protocol())
    assert "zed" in {meta["ids"]["user_ids"][u] for u in splits["test"]["user"]}
    targets = set(_decode(meta, splits["train"]["item"], "item_ids"))
    item = min({"i7", "i8", "i9"} - targets)
    real, calls = samples_module._draw_negatives, []

    def history_negatives_are_zeds(rng, log, avoid_items):
        calls.append(avoid_items.size)
        rows = real(rng, log, avoid_items)
        if len(calls) == 2:  # the first draw is the targets' negatives, the second the histories'
            rows[:] = np.flatnonzero(log.item == _log()["item_id"].cat.categories.get_loc(item))[0]
        return rows

    monkeypatch.setattr(samples_module, "_draw_negatives", history_negatives_are_zeds)
    splits, meta = build_samples(_log(), _protocol())
    assert len(calls) == 2 and item not in set(meta["ids"]["item_ids"])
    train = splits["train"]
    filled = np.arange(train["neg_item"].shape[1])[None, :] < train["length"][:, None]
    assert (train["neg_item"][filled] == 0).all()  # every history negative is the unknown index


def test_the_same_seed_gives_the_same_samples_and_another_seed_another_split() -> None:
    a, _ = build_samples(_log(), _protocol())
    b, _ = build_samples(_log(), _protocol())
    for name in a:
        for key in a[name]:
            np.testing.assert_array_equal(a[name][key], b[name][key])
    splits = {seed: tuple(sorted(set(build_samples(_log(), _protocol(seed=seed))[0]["test"]["user"])))
              for seed in range(6)}
    assert len(set(splits.values())) > 1


def test_history_negatives_differ_from_the_clicked_item() -> None:
    splits, _ = build_samples(_log(), _protocol())
    for arrays in splits.values():
        valid = arrays["hist_item"] > 0
        both = valid & (arrays["neg_item"] > 0)
        assert (arrays["neg_item"][both] != arrays["hist_item"][both]).all()


def test_no_user_with_enough_history_is_an_error() -> None:
    with pytest.raises(DataError, match="no sample has at least 10 earlier clicks"):
        build_samples(_log(), _protocol(min_history=10))


def test_too_few_users_for_the_split_is_an_error() -> None:
    with pytest.raises(DataError, match="too few for the split"):
        build_samples(_log(), _protocol(split={"by": "user", "train": 0.98, "valid": 0.01, "test": 0.01}))


def test_a_time_cutoff_after_the_log_says_when_the_samples_are() -> None:
    frame = as_log(pd.read_csv(io.StringIO(LABELED), dtype={"user_id": str, "item_id": str}))
    with pytest.raises(DataError, match=r"\(cutoff 1000, valid share 0.5; the samples' targets run from 15 to 60\): "
                                        "test would be empty"):
        build_samples(frame, _labeled_protocol(split={"by": "time", "cutoff": 1000, "valid": 0.5}))


def test_sample_files_round_trip_and_are_byte_deterministic(tmp_path) -> None:
    splits, _ = build_samples(_log(), _protocol())
    save_arrays(tmp_path / "a.npz", splits["train"], "samples")
    save_arrays(tmp_path / "b.npz", splits["train"], "samples")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    back = load_arrays(tmp_path / "a.npz", "samples")
    assert set(back) == set(splits["train"])


def test_wrong_schema_version_and_garbage_are_refused(tmp_path, monkeypatch) -> None:
    import sarn.data.arrays as arrays_mod

    splits, _ = build_samples(_log(), _protocol())
    path = tmp_path / "old.npz"
    save_arrays(path, splits["train"], "samples")
    with pytest.raises(DataError, match="raw schema version 3, this code reads version 2; rerun the raw stage"):
        load_arrays(path, "raw")
    monkeypatch.setitem(arrays_mod.SCHEMA_VERSIONS, "samples", 4)
    with pytest.raises(DataError, match="samples schema version 3, this code reads version 4; "
                                        "rerun the preprocess stage"):
        load_arrays(path, "samples")
    garbage = tmp_path / "cut.npz"
    garbage.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="not a readable samples file"):
        load_arrays(garbage, "samples")


def test_columns_are_the_raw_schema() -> None:
    assert tuple(_log().columns) == COLUMNS


# A log with labels and a context (the paper's online-ad data), split by time at 45.
LABELED = textwrap.dedent(
    """\
    user_id,item_id,category_id,timestamp,label,context
    a,i1,c1,10,1,web
    a,i2,c1,20,0,app
    a,i3,c2,30,1,web
    a,i4,c2,40,1,web
    a,i5,c1,50,0,app
    a,i6,c1,60,1,web
    b,i3,c2,15,1,app
    b,i1,c1,5,1,app
    b,i2,c1,25,0,web
    b,i4,c2,35,1,web
    b,i6,c1,47,1,app
    """
)
# (user, item, label, context, history): every impression with at least one earlier
# click; histories hold earlier *clicks* only, the latest two.
LABELED_EXPECTED = {
    "early": {
        ("a", "i2", 0, "app", ("i1",)), ("a", "i3", 1, "web", ("i1",)), ("a", "i4", 1, "web", ("i1", "i3")),
        ("b", "i3", 1, "app", ("i1",)), ("b", "i2", 0, "web", ("i1", "i3")), ("b", "i4", 1, "web", ("i1", "i3")),
    },
    "test": {("a", "i5", 0, "app", ("i3", "i4")), ("a", "i6", 1, "web", ("i3", "i4")),
             ("b", "i6", 1, "app", ("i3", "i4"))},
}


def _labeled_protocol(**over) -> ProtocolSpec:
    spec = {"min_history": 1, "max_len": 2, "split": {"by": "time", "cutoff": 45, "valid": 0.5},
            "negative_drop": 0.0, "seed": 1}
    return ProtocolSpec.model_validate(spec | over)


def _decoded(meta: dict, arrays: dict[str, np.ndarray]) -> set[tuple]:
    ids = meta["ids"]
    users = ids["user_ids"]

    def name(key: str, index: int) -> str | None:
        return ids[key][index - 1] if index > 0 else None

    return {(users[arrays["user"][r]], name("item_ids", arrays["item"][r]), int(arrays["label"][r]),
             name("context_ids", arrays["context"][r]),
             tuple(name("item_ids", i) for i in arrays["hist_item"][r, : arrays["length"][r]]))
            for r in range(arrays["label"].size)}


def test_a_log_with_labels_gives_every_impression_split_by_time() -> None:
    frame = as_log(pd.read_csv(io.StringIO(LABELED), dtype={"user_id": str, "item_id": str}))
    splits, meta = build_samples(frame, _labeled_protocol())
    assert meta["labeled"] and meta["n_contexts"] == 3
    early_users = [{meta["ids"]["user_ids"][u] for u in splits[s]["user"]} for s in ("train", "valid")]
    assert sorted(map(sorted, early_users)) == [["a"], ["b"]]  # one user each, by the valid share
    train = _decoded(meta, splits["train"])
    assert train | _decoded(meta, splits["valid"]) == LABELED_EXPECTED["early"]
    # Ids outside the training vocabulary (targets and histories) are unknown (None) in the
    # test set; the rest decode exactly.
    known_items = set(meta["ids"]["item_ids"])
    assert {i for s in train for i in (s[1], *s[4])} <= known_items
    expected_test = {(u, i if i in known_items else None, y, c, tuple(h if h in known_items else None for h in hist))
                     for u, i, y, c, hist in LABELED_EXPECTED["test"]}
    assert _decoded(meta, splits["test"]) == expected_test
    assert (splits["test"]["timestamp"] > 45).all() and (splits["train"]["timestamp"] <= 45).all()


def test_negative_drop_thins_training_negatives_only() -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    frame = as_log(pd.DataFrame({
        "user_id": rng.integers(0, 300, n).astype(str), "item_id": rng.integers(0, 500, n).astype(str),
        "category_id": "c", "timestamp": rng.integers(0, 1000, n), "label": (rng.random(n) < 0.3).astype(int),
    }))
    full, _ = build_samples(frame, _labeled_protocol(split={"by": "time", "cutoff": 800, "valid": 0.1}))
    thin, _ = build_samples(frame, _labeled_protocol(split={"by": "time", "cutoff": 800, "valid": 0.1},
                                                     negative_drop=0.99))
    for name in ("valid", "test"):
        np.testing.assert_array_equal(full[name]["label"], thin[name]["label"])
    assert (thin["train"]["label"] == 1).sum() == (full["train"]["label"] == 1).sum()
    kept = (thin["train"]["label"] == 0).sum() / (full["train"]["label"] == 0).sum()
    assert 0.003 < kept < 0.02


def test_labels_need_a_time_split_and_click_logs_no_negative_drop() -> None:
    frame = as_log(pd.read_csv(io.StringIO(LABELED), dtype={"user_id": str, "item_id": str}))
    with pytest.raises(DataError, match="a log with labels is split by time"):
        build_samples(frame, _protocol())
    with pytest.raises(DataError, match="negative_drop applies to logs with a label column"):
        build_samples(_log(), _protocol(negative_drop=0.5))


def test_a_split_of_clicks_only_is_refused_by_name() -> None:
    """An AUC needs clicks and non-clicks: a split of one class stops preprocessing with a message,
    not a NaN that breaks the statistics' file."""
    no_late_negative = LABELED.replace("a,i5,c1,50,0,app", "a,i5,c1,50,1,app")
    frame = as_log(pd.read_csv(io.StringIO(no_late_negative), dtype={"user_id": str, "item_id": str}))
    with pytest.raises(DataError, match=r"the test split's 3 samples are all clicks \(label 1\)"):
        build_samples(frame, _labeled_protocol())


def test_split_by_time_sends_late_targets_to_test() -> None:
    splits, meta = build_samples(_log(), _protocol(split={"by": "time", "cutoff": 50, "valid": 0.25}))
    users = meta["ids"]["user_ids"]
    # Targets after 50, strictly (the reference compares with >): ann (60); eve's at 50 and the
    # others (cat 9, dan 6, zed 5) are early.
    assert sorted({users[u] for u in splits["test"]["user"]}) == ["ann"]
    early = [users[u] for s in ("train", "valid") for u in splits[s]["user"]]
    assert sorted(set(early)) == ["cat", "dan", "eve", "zed"] and splits["valid"]["label"].size == 2
