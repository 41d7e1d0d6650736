"""Turn a raw log into CTR samples, following the DIEN protocol as SARN's code uses it.

Steps (docs/protocol.md, "Samples", says where each departs from the reference scripts):
1. per user, rows sorted by time (ties keep file order);
2. a click log (no label column): each user's last click is the positive target, and a
   negative with the same history is drawn from all clicks of the log (so
   popularity-weighted), redrawn while it equals the positive; the negative comes
   first, as in the reference data files. A log with labels (the paper's online-ad
   data): every impression is a sample with its own label and context;
3. the history of a sample is the user's earlier clicks; samples with fewer than
   ``min_history`` are dropped;
4. split by user (seeded shares; the reference's split_by_user.py sends a tenth of the
   users to test and has no validation set), or by time: samples after the cutoff
   are the test set and the users of earlier ones are split into train and validation
   (the reference's time-split script instead emits every prefix of a sequence as a
   sample). With labels, a ``negative_drop`` share of the training negatives is dropped
   at random;
5. vocabularies come from the training part only (targets and whole histories, before the
   cut to ``max_len``, as the reference counts its training file), index 0 meaning padding
   or unknown;
6. histories keep the latest ``max_len`` clicks, and every history position also gets a
   sampled negative item (for the auxiliary losses of DIEN and SARN; training may draw
   them anew every epoch from ``negative_pool``, as the reference iterator does).

Everything is vectorised over integer codes: no Python loop runs per user or per row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sarn.data.processed import SPLITS
from sarn.data.raw import ID_COLUMNS, counts
from sarn.errors import DataError
from sarn.params import ProtocolSpec, TimeSplitSpec


class _SortedLog:
    """The log's columns as integer codes, sorted by (user, time, file order).

    Built column by column from ``columns`` (which it empties), so that the unsorted and
    the sorted copy of a column coexist one column at a time: 100 million rows stay
    within a few GB. Row numbers and counts are 32-bit.
    """

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        order = np.lexsort((columns["timestamp"], columns["user_id"]))  # stable: ties keep file order
        sort = {name: columns.pop(name)[order] for name in list(columns)}
        del order
        self.user: np.ndarray = sort["user_id"]
        self.item: np.ndarray = sort["item_id"]
        self.category: np.ndarray = sort["category_id"]
        self.timestamp: np.ndarray = sort["timestamp"]
        self.context: np.ndarray | None = sort.get("context")
        self.label: np.ndarray | None = sort.get("label")  # None: every row is a click
        if self.label is None:
            self._clicked = None
            self.clicks_before = None
            self.n_clicks = self.user.size
        else:
            self._clicked = np.flatnonzero(self.label == 1).astype(np.int32)
            self.clicks_before = (np.cumsum(self.label, dtype=np.int32) - self.label).astype(np.int32)
            self.n_clicks = self._clicked.size

    def click_rows(self, positions: np.ndarray) -> np.ndarray:
        """Log rows of the clicks at ``positions`` (0-based, in sorted order)."""
        return positions if self._clicked is None else self._clicked[positions]

    def clicks_before_row(self, rows: np.ndarray) -> np.ndarray:
        """How many clicks of the whole sorted log come before each of ``rows``."""
        return rows if self.clicks_before is None else self.clicks_before[rows]


@dataclass(frozen=True)
class _Samples:
    """Samples in raw codes; ``row`` is the log row whose earlier clicks are the history.

    A click-only log gives (negative, positive) pairs sharing one history: ``paired``
    samples ``2k`` and ``2k + 1`` use history unit ``k``; otherwise unit ``k`` is sample ``k``.
    """

    user: np.ndarray
    item: np.ndarray
    category: np.ndarray
    label: np.ndarray
    timestamp: np.ndarray
    context: np.ndarray | None
    row: np.ndarray  # per history unit
    length: np.ndarray  # per history unit: history length kept (at most max_len)
    full_length: np.ndarray  # per history unit: history length before the cut
    paired: bool

    def unit(self, index: np.ndarray) -> np.ndarray:
        return index // 2 if self.paired else index


def _candidates(log: _SortedLog, protocol: ProtocolSpec, rng: np.random.Generator) -> _Samples:
    user_start = np.flatnonzero(np.r_[True, log.user[1:] != log.user[:-1]]).astype(np.int32)
    user_end = np.r_[user_start[1:], np.int32(log.user.size)]
    if log.label is not None:  # every impression with enough earlier clicks (a log with labels)
        prior = log.clicks_before - np.repeat(log.clicks_before[user_start], user_end - user_start)
        rows = np.flatnonzero(prior >= protocol.min_history).astype(np.int32)
        prior = prior[rows]
    else:  # each user's last click, with a sampled negative
        last = user_end - 1
        prior = last - user_start
        keep = prior >= protocol.min_history
        rows, prior = last[keep], prior[keep]
    if rows.size == 0:
        raise DataError(f"no sample has at least {protocol.min_history} earlier clicks (protocol.min_history); "
                        f"the log has {user_start.size} users")
    full_length = prior.astype(np.int32)
    length = np.minimum(full_length, protocol.max_len)
    context = None if log.context is None else log.context[rows]
    if log.label is not None:
        return _Samples(user=log.user[rows], item=log.item[rows], category=log.category[rows],
                        label=log.label[rows].astype(np.int64), timestamp=log.timestamp[rows], context=context,
                        row=rows, length=length, full_length=full_length, paired=False)
    negatives = _draw_negatives(rng, log, log.item[rows])
    pair = np.repeat(np.arange(rows.size), 2)
    item, category = log.item[rows][pair], log.category[rows][pair]
    item[0::2], category[0::2] = log.item[negatives], log.category[negatives]
    return _Samples(user=log.user[rows][pair], item=item, category=category,
                    label=np.tile(np.array([0, 1], dtype=np.int64), rows.size),
                    timestamp=log.timestamp[rows][pair], context=None if context is None else context[pair],
                    row=rows, length=length, full_length=full_length, paired=True)


def _draw_negatives(rng: np.random.Generator, log: _SortedLog, avoid_items: np.ndarray) -> np.ndarray:
    """For each item to avoid, a random click's row (so popularity-weighted) whose item differs."""
    picks = log.click_rows(rng.integers(0, log.n_clicks, avoid_items.size).astype(np.int32))
    clash = log.item[picks] == avoid_items
    while clash.any():
        if np.all(log.item[log.click_rows(np.arange(log.n_clicks))] == avoid_items[clash][0]):
            raise DataError("the log has a single clicked item: no negative can be drawn")
        picks[clash] = log.click_rows(rng.integers(0, log.n_clicks, int(clash.sum())).astype(np.int32))
        clash = log.item[picks] == avoid_items
    return picks


def _split(samples: _Samples, protocol: ProtocolSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Sample indices of each part."""
    split = protocol.split
    if isinstance(split, TimeSplitSpec):
        late = samples.timestamp > split.cutoff  # the reference's `if int(dt) > cutoff`
        early_users = np.unique(samples.user[~late])
        valid_users = rng.permutation(early_users)[: round(split.valid * early_users.size)]
        in_valid = ~late & np.isin(samples.user, valid_users)
        parts = {"train": np.flatnonzero(~late & ~in_valid), "valid": np.flatnonzero(in_valid),
                 "test": np.flatnonzero(late)}
        shares = (f"cutoff {split.cutoff}, valid share {split.valid}; the samples' targets run from "
                  f"{samples.timestamp.min()} to {samples.timestamp.max()}")
    else:
        distinct = np.unique(samples.user)
        shuffled = rng.permutation(distinct)
        n_train = round(split.train * distinct.size)
        n_valid = round(split.valid * distinct.size)
        part_of = np.empty(shuffled.size, dtype=np.int8)
        part_of[np.searchsorted(distinct, shuffled)] = np.repeat(
            [0, 1, 2], [n_train, n_valid, distinct.size - n_train - n_valid])
        where = part_of[np.searchsorted(distinct, samples.user)]
        parts = {name: np.flatnonzero(where == k) for k, name in enumerate(SPLITS)}
        shares = f"{split.train}/{split.valid}/{split.test} of {distinct.size} users"
    empty = [name for name, idx in parts.items() if idx.size == 0]
    if empty:
        raise DataError(f"{samples.user.size} samples are too few for the split ({shares}): "
                        f"{', '.join(empty)} would be empty")
    return parts


def _history_rows(log: _SortedLog, samples: _Samples, width: int) -> np.ndarray:
    """(units, width) log rows of each history unit, oldest first, -1 where padded."""
    end = log.clicks_before_row(samples.row)  # position, among all clicks, just after the history
    offset = np.arange(width, dtype=np.int32)[None, :]
    valid = offset < samples.length[:, None]
    position = np.where(valid, end[:, None] - samples.length[:, None] + offset, 0)
    return np.where(valid, log.click_rows(position), -1).astype(np.int32)


def _history_codes(log: _SortedLog, samples: _Samples, units: np.ndarray, n_items: int, n_categories: int,
                   chunk: int = 1 << 24) -> tuple[np.ndarray, np.ndarray]:
    """Which item and category codes occur in the whole history of some unit in ``units``,
    before any cut (the reference's vocabulary counts the training file's full history lines).

    A user's histories all start at its first click, so their union runs from there to the
    latest one's end: one interval per user, marked on the clicks in one int8 array. Units
    number their log rows in ascending order (and ``units`` is sorted), so a user's histories
    are consecutive and their ends ascend."""
    end = log.clicks_before_row(samples.row[units]).astype(np.int64)
    begin = end - samples.full_length[units]
    latest = np.r_[begin[1:] != begin[:-1], True] & (end > begin)
    edges = np.zeros(log.n_clicks + 1, dtype=np.int8)
    edges[begin[latest]] += 1  # distinct: one interval per user, users' intervals disjoint
    edges[end[latest]] -= 1
    covered = np.cumsum(edges[:-1], dtype=np.int8, out=edges[:-1]).view(bool)
    items, categories = np.zeros(n_items, dtype=bool), np.zeros(n_categories, dtype=bool)
    for start in range(0, covered.size, chunk):  # bounded memory on a Taobao-sized log
        rows = log.click_rows(np.flatnonzero(covered[start : start + chunk]).astype(np.int32) + np.int32(start))
        items[log.item[rows]] = True
        categories[log.category[rows]] = True
    return items, categories


def _index(vocab: np.ndarray, size: int) -> np.ndarray:
    """code → 1-based index in ``vocab`` (sorted codes), 0 for codes outside it."""
    lookup = np.zeros(size, dtype=np.int32)
    lookup[vocab] = np.arange(1, vocab.size + 1)
    return lookup


def _gather(rows: np.ndarray, values: np.ndarray, lookup: np.ndarray | None = None) -> np.ndarray:
    """``values`` (mapped through ``lookup``) at history ``rows``, 0 where padded (-1)."""
    padded = rows < 0
    picked = values[np.where(padded, 0, rows)]
    if lookup is not None:
        picked = lookup[picked]
    picked[padded] = 0
    return picked


def _first_category(log: _SortedLog, n_item_codes: int) -> np.ndarray:
    """Category code of each item code's first row in the sorted log."""
    first = np.full(n_item_codes, log.item.size, dtype=np.int64)
    np.minimum.at(first, log.item, np.arange(log.item.size, dtype=np.int32))
    return log.category[np.minimum(first, log.item.size - 1)]


SplitSink = Callable[[str, dict[str, np.ndarray]], None]


def build_samples(log: pd.DataFrame, protocol: ProtocolSpec, on_split: SplitSink | None = None
                  ) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """Build the three sample sets and the metadata (vocabulary, statistics).

    Returns ``(splits, meta)`` where ``splits[name]`` maps array names to arrays and
    ``meta`` holds vocabulary sizes, the raw ids behind each index, Table I's counts and
    the distribution history negatives are drawn from (``negative_pool``).
    With ``on_split``, each split is handed to it as soon as it is built and not kept
    (``splits`` is then empty): only one split's arrays are in memory at a time. The
    caller should not keep ``log``: its columns are released as they are sorted.
    """
    labeled = "label" in log.columns
    if labeled and not isinstance(protocol.split, TimeSplitSpec):
        raise DataError("a log with labels is split by time (protocol.split.by: time), as the paper's "
                        "online-ad data; split by user applies to click-only logs")
    if not labeled and protocol.negative_drop:
        raise DataError("protocol.negative_drop applies to logs with a label column; this log has none")
    log_counts = counts({c: log[c].array for c in ID_COLUMNS if c in log.columns})
    ids = {c: np.asarray(log[c].cat.categories).astype(str) for c in ID_COLUMNS if c in log.columns}
    columns = {c: (log[c].cat.codes.to_numpy() if c in ids else log[c].to_numpy()) for c in log.columns}
    del log
    # Independent random streams, so that e.g. changing max_len (how many history
    # negatives are drawn) never moves users between the splits.
    split_rng, target_rng, history_rng, drop_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(protocol.seed).spawn(4)
    )
    sorted_log = _SortedLog(columns)
    samples = _candidates(sorted_log, protocol, target_rng)
    parts = _split(samples, protocol, split_rng)
    if protocol.negative_drop:
        train = parts["train"]
        dropped = (samples.label[train] == 0) & (drop_rng.random(train.size) < protocol.negative_drop)
        parts["train"] = train[~dropped]

    hist_rows = _history_rows(sorted_log, samples, protocol.max_len)
    neg_rows = np.full(hist_rows.shape, -1, dtype=np.int32)
    filled = hist_rows >= 0
    neg_rows[filled] = _draw_negatives(history_rng, sorted_log, sorted_log.item[hist_rows[filled]])
    del filled

    train = parts["train"]
    seen_items, seen_cats = _history_codes(sorted_log, samples, np.unique(samples.unit(train)),
                                           ids["item_id"].size, ids["category_id"].size)
    vocab_items = np.union1d(samples.item[train], np.flatnonzero(seen_items))
    vocab_cats = np.union1d(samples.category[train], np.flatnonzero(seen_cats))
    del seen_items, seen_cats
    item_index, cat_index = _index(vocab_items, ids["item_id"].size), _index(vocab_cats, ids["category_id"].size)
    vocab_contexts = np.unique(samples.context[train]) if samples.context is not None else None
    user_codes = np.unique(samples.user)

    item_category = cat_index[_first_category(sorted_log, ids["item_id"].size)[vocab_items]]
    pool = _negative_pool(sorted_log, item_index, cat_index)
    splits, split_stats = {}, {}
    for name in SPLITS:
        idx = parts[name]
        units = samples.unit(idx)
        h, g = hist_rows[units], neg_rows[units]
        arrays = {
            "user": np.searchsorted(user_codes, samples.user[idx]).astype(np.int64),
            "item": item_index[samples.item[idx]],
            "category": cat_index[samples.category[idx]],
            "label": samples.label[idx],
            "timestamp": samples.timestamp[idx].astype(np.int64),
            "length": samples.length[units].astype(np.int64),
            "full_length": samples.full_length[units].astype(np.int64),
            "hist_item": _gather(h, sorted_log.item, item_index),
            "hist_category": _gather(h, sorted_log.category, cat_index),
            "hist_timestamp": _gather(h, sorted_log.timestamp).astype(np.int64),
            "neg_item": _gather(g, sorted_log.item, item_index),
            "neg_category": _gather(g, sorted_log.category, cat_index),
        }
        if vocab_contexts is not None:
            arrays["context"] = _index(vocab_contexts, ids["context"].size)[samples.context[idx]]
        split_stats |= _split_statistics(name, arrays)
        size, positives = split_stats[f"{name}_samples"], split_stats[f"{name}_positives"]
        if size and positives in (0, size):
            raise DataError(f"the {name} split's {size} samples are all "
                            f"{'clicks (label 1)' if positives else 'non-clicks (label 0)'}: an AUC needs both "
                            "in every split (check the log's label column, protocol.split and, for train, "
                            "protocol.negative_drop)")
        if on_split is None:
            splits[name] = arrays
        else:
            on_split(name, arrays)
        del arrays, h, g

    meta = {
        "n_items": int(vocab_items.size + 1),
        "n_categories": int(vocab_cats.size + 1),
        "n_contexts": int(vocab_contexts.size + 1) if vocab_contexts is not None else 0,
        "labeled": labeled,
        "negative_drop": protocol.negative_drop,  # > 0: training negatives dropped, LogLoss biased
        "ids": {
            "user_ids": ids["user_id"][user_codes],
            "item_ids": ids["item_id"][vocab_items],
            "category_ids": ids["category_id"][vocab_cats],
            "item_category": item_category.astype(np.int64),
            **({"context_ids": ids["context"][vocab_contexts]} if vocab_contexts is not None else {}),
        },
        "statistics": {**log_counts, "labeled": labeled, **split_stats,
                       "test_auc_standard_error": round(auc_standard_error(split_stats["test_positives"],
                                                                           split_stats["test_samples"]), 4)},
        "negative_pool": pool,
    }
    return splits, meta


def auc_standard_error(positives: int, samples: int, auc: float = 0.8) -> float:
    """The standard error of an AUC of about ``auc`` measured on ``samples`` of which ``positives``
    are clicks (Hanley and McNeil, Radiology 143, 1982): how far apart two models' AUCs on this
    test set must be before the difference means anything."""
    negatives = samples - positives
    if min(positives, negatives) < 1:
        return float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2))
    return float(np.sqrt(variance / (positives * negatives)))


def _negative_pool(log: _SortedLog, item_index: np.ndarray, cat_index: np.ndarray) -> dict[str, np.ndarray]:
    """The distribution history negatives are drawn from: every distinct (item, category) index
    pair of the log's clicks with its number of clicks (a negative is a random click, so
    popularity-weighted; items outside the vocabulary are index 0). Training draws from it
    when negatives are drawn anew for every epoch (sarn.train.negatives)."""
    clicks = log.click_rows(np.arange(log.n_clicks, dtype=np.int32))
    width = np.int64(cat_index.max()) + 1
    pairs = item_index[log.item[clicks]].astype(np.int64) * width + cat_index[log.category[clicks]]
    del clicks
    unique, count = np.unique(pairs, return_counts=True)
    return {"item": unique // width, "category": unique % width, "clicks": count.astype(np.int64)}


def _split_statistics(name: str, arrays: dict[str, np.ndarray]) -> dict:
    """What the sample construction kept in one split (beside Table I's columns)."""
    return {
        f"{name}_samples": int(arrays["label"].size),
        f"{name}_positives": int(arrays["label"].sum()),
        f"{name}_positive_share": round(float(arrays["label"].mean()), 4),
        f"{name}_mean_history": round(float(arrays["length"].mean()), 4),
    }
