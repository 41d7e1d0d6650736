"""Turn a raw click log into CTR samples, following the DIEN protocol as SARN's code uses it.

Steps (../shared/reference/data.md, "How samples are built"):
1. per user, clicks sorted by time (ties keep file order);
2. each user's last click is the positive target, and a negative with the same history
   is drawn from all clicks of the log (so popularity-weighted), redrawn while it equals
   the positive; the negative comes first, as in the reference data files;
3. the history is the user's earlier clicks; users with fewer than ``min_history`` are
   dropped;
4. users are split train/valid/test with a seed; vocabularies come from the training
   part only (targets, histories and their sampled negatives), index 0 meaning padding
   or unknown;
5. histories are cut to the latest ``max_len`` clicks, and every history position also
   gets a sampled negative item (for the auxiliary losses of DIEN and SARN).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sarn.errors import DataError
from sarn.params import ProtocolSpec

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Vocabulary:
    """Raw ids of the training part; position ``k`` holds the id mapped to ``k + 1``."""

    items: np.ndarray
    categories: np.ndarray

    def item_index(self, raw: np.ndarray) -> np.ndarray:
        return _lookup(self.items, raw)

    def category_index(self, raw: np.ndarray) -> np.ndarray:
        return _lookup(self.categories, raw)


def _lookup(sorted_ids: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Map raw ids to 1-based positions in ``sorted_ids``; unknown ids map to 0."""
    if sorted_ids.size == 0:
        return np.zeros(raw.shape, dtype=np.int64)
    pos = np.searchsorted(sorted_ids, raw).clip(max=sorted_ids.size - 1)
    return np.where(sorted_ids[pos] == raw, pos + 1, 0).astype(np.int64)


@dataclass(frozen=True)
class _UserSamples:
    """Raw-id samples, two per kept user (negative then positive)."""

    user: np.ndarray
    item: np.ndarray
    category: np.ndarray
    label: np.ndarray
    timestamp: np.ndarray
    history: list[np.ndarray]  # row indices into the sorted log, oldest first
    hist_neg: list[np.ndarray]  # row indices of sampled negatives, one per history position


def _draw_other(rng: np.random.Generator, pool: np.ndarray, avoid: np.ndarray) -> np.ndarray:
    """For each entry of ``avoid``, a random row of ``pool`` whose item differs from it."""
    picks = rng.integers(0, pool.size, avoid.size)
    clash = pool[picks] == avoid
    while clash.any():
        if np.all(pool == pool[0]):
            raise DataError("the log has a single item: no negative can be drawn")
        picks[clash] = rng.integers(0, pool.size, int(clash.sum()))
        clash = pool[picks] == avoid
    return picks


def _user_samples(
    log: pd.DataFrame, protocol: ProtocolSpec, target_rng: np.random.Generator, history_rng: np.random.Generator
) -> _UserSamples:
    items = log["item_id"].to_numpy()
    users = log["user_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(log)]
    counts = ends - starts
    keep = counts - 1 >= protocol.min_history
    if not keep.any():
        raise DataError(
            f"no user has at least {protocol.min_history} clicks before the last one "
            f"(protocol.min_history); the log has {len(starts)} users"
        )
    starts, ends = starts[keep], ends[keep]
    last = ends - 1

    neg_rows = _draw_other(target_rng, items, items[last])
    n = last.size
    order = np.empty(2 * n, dtype=np.int64)  # which log row supplies item and category
    order[0::2], order[1::2] = neg_rows, last
    histories, hist_negs = [], []
    for s, e in zip(starts, last, strict=True):
        rows = np.arange(max(s, e - protocol.max_len), e)
        negs = _draw_other(history_rng, items, items[rows])
        histories += [rows, rows]
        hist_negs += [negs, negs]
    return _UserSamples(
        user=np.repeat(users[last], 2),
        item=items[order],
        category=log["category_id"].to_numpy()[order],
        label=np.tile(np.array([0, 1], dtype=np.int64), n),
        timestamp=np.repeat(log["timestamp"].to_numpy()[last], 2),
        history=histories,
        hist_neg=hist_negs,
    )


def _split_users(users: np.ndarray, protocol: ProtocolSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Seeded split of the distinct users by the shares of ``protocol.split``."""
    distinct = np.unique(users)
    shuffled = rng.permutation(distinct)
    n_train = int(round(protocol.split.train * distinct.size))
    n_valid = int(round(protocol.split.valid * distinct.size))
    parts = {
        "train": shuffled[:n_train],
        "valid": shuffled[n_train : n_train + n_valid],
        "test": shuffled[n_train + n_valid :],
    }
    empty = [name for name, part in parts.items() if part.size == 0]
    if empty:
        raise DataError(
            f"{distinct.size} usable users are too few for the split "
            f"{protocol.split.train}/{protocol.split.valid}/{protocol.split.test}: "
            f"{', '.join(empty)} would be empty"
        )
    return parts


def build_samples(log: pd.DataFrame, protocol: ProtocolSpec) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """Build the three sample sets and the metadata (vocabulary, statistics).

    Returns ``(splits, meta)`` where ``splits[name]`` maps array names to arrays and
    ``meta`` holds vocabulary sizes, the raw ids behind each index and Table I's counts.
    """
    # Independent random streams, so that e.g. changing max_len (how many history
    # negatives are drawn) never moves users between the splits.
    split_rng, target_rng, history_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(protocol.seed).spawn(3)
    )
    log = log.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)
    raw = _user_samples(log, protocol, target_rng, history_rng)
    parts = _split_users(raw.user, protocol, split_rng)

    log_items = log["item_id"].to_numpy()
    log_cats = log["category_id"].to_numpy()
    log_times = log["timestamp"].to_numpy()
    in_part = {name: np.isin(raw.user, ids) for name, ids in parts.items()}

    train_idx = np.flatnonzero(in_part["train"])
    # The training part: its targets, its histories and their sampled negatives.
    train_hist = np.concatenate([raw.history[i] for i in train_idx] + [raw.hist_neg[i] for i in train_idx])
    vocab = Vocabulary(
        items=np.unique(np.concatenate([raw.item[train_idx], log_items[train_hist]])),
        categories=np.unique(np.concatenate([raw.category[train_idx], log_cats[train_hist]])),
    )
    user_ids = np.unique(raw.user)

    splits = {}
    for name in SPLITS:
        idx = np.flatnonzero(in_part[name])
        lengths = np.array([raw.history[i].size for i in idx], dtype=np.int64)
        width = protocol.max_len
        hist = {key: np.zeros((idx.size, width), dtype=np.int64) for key in
                ("hist_item", "hist_category", "hist_timestamp", "neg_item", "neg_category")}
        for row, i in enumerate(idx):
            h, g, k = raw.history[i], raw.hist_neg[i], raw.history[i].size
            hist["hist_item"][row, :k] = vocab.item_index(log_items[h])
            hist["hist_category"][row, :k] = vocab.category_index(log_cats[h])
            hist["hist_timestamp"][row, :k] = log_times[h]
            hist["neg_item"][row, :k] = vocab.item_index(log_items[g])
            hist["neg_category"][row, :k] = vocab.category_index(log_cats[g])
        splits[name] = {
            "user": np.searchsorted(user_ids, raw.user[idx]).astype(np.int64),
            "item": vocab.item_index(raw.item[idx]),
            "category": vocab.category_index(raw.category[idx]),
            "label": raw.label[idx],
            "timestamp": raw.timestamp[idx].astype(np.int64),
            "length": lengths,
            **hist,
        }

    meta = {
        "n_items": int(vocab.items.size + 1),
        "n_categories": int(vocab.categories.size + 1),
        "user_ids": user_ids.tolist(),  # the raw id behind each sample's ``user`` index
        "item_ids": vocab.items.tolist(),
        "category_ids": vocab.categories.tolist(),
        "item_category": vocab.category_index(
            log.drop_duplicates("item_id").set_index("item_id").loc[vocab.items, "category_id"].to_numpy()
        ).tolist(),
        "statistics": statistics(log, splits),
    }
    return splits, meta


def statistics(log: pd.DataFrame, splits: dict[str, dict[str, np.ndarray]]) -> dict:
    """Table I's columns for the log, plus what the sample construction kept."""
    stats = {
        "users": int(log["user_id"].nunique()),
        "items": int(log["item_id"].nunique()),
        "categories": int(log["category_id"].nunique()),
        "interactions": int(len(log)),
    }
    for name, arrays in splits.items():
        stats[f"{name}_samples"] = int(arrays["label"].size)
        stats[f"{name}_mean_history"] = round(float(arrays["length"].mean()), 4)
    return stats
