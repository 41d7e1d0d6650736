"""The data behind Figs. 5 and 6: SARN's relations and attention, as CSV files.

Composes processed data and a trained SARN (like training does); the figure notebooks
then only read these CSVs. R depends only on the two items' vectors (R_ij =
φ(x_i)·ϕ(x_j)), so Fig. 5a computes it directly for every pair of the chosen items
instead of averaging it over the dataset's histories as the paper describes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sarn.atomic import atomic_dir, write_json
from sarn.batch import Batch
from sarn.data.processed import load_meta, load_split
from sarn.errors import ConfigError
from sarn.models.sarn import SARN
from sarn.params import Params
from sarn.train.batching import BatchIndex, DeviceSamples
from sarn.train.checkpoint import load_trained

log = logging.getLogger(__name__)


def _load_sarn(snapshots_dir: Path, checkpoint: str, meta: dict) -> SARN:
    net = load_trained(snapshots_dir, checkpoint, meta)
    if not isinstance(net, SARN):
        raise ConfigError(f"{snapshots_dir}: the snapshots are of a {type(net).__name__}, not a SARN run")
    return net


def popular_items(meta: dict, train: dict[str, np.ndarray], categories: list[str], per_category: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Item and category indices of the most clicked training items of each category (every one
    a category of the training data: :func:`figure_choice`)."""
    valid = train["hist_item"][np.arange(train["hist_item"].shape[1])[None, :] < train["length"][:, None]]
    clicks = np.concatenate([valid, train["item"][train["label"] == 1]])
    counts = np.bincount(clicks, minlength=meta["n_items"])
    item_category = np.array([0, *meta["item_category"]])
    known = {str(raw): k + 1 for k, raw in enumerate(meta["category_ids"])}
    items, cats = [], []
    for raw in categories:
        members = np.flatnonzero(item_category == known[raw])
        top = members[np.argsort(-counts[members], kind="stable")[:per_category]]
        items += top.tolist()
        cats += [known[raw]] * len(top)
    return np.array(items), np.array(cats)


def _labels(meta: dict, items: np.ndarray, cats: np.ndarray) -> list[str]:
    return [f"{meta['item_ids'][i - 1]} ({meta['category_ids'][c - 1]})" for i, c in zip(items, cats, strict=True)]


def _matrix(values: torch.Tensor, labels: list[str]) -> pd.DataFrame:
    return pd.DataFrame(values.detach().double().numpy(), index=labels, columns=labels)


def _user_and_history(test: dict[str, np.ndarray], row: int) -> tuple:
    return (int(test["user"][row]), int(test["length"][row]),
            test["hist_item"][row].tobytes(), test["hist_category"][row].tobytes())


def candidate_pair(test: dict[str, np.ndarray], user: int | None, min_history: int, max_len: int
                   ) -> tuple[int, int] | None:
    """Rows of a test (negative, positive) pair of one user with one history, which Figs. 5b and 6
    set side by side: ``user``'s first such pair, or (``user`` None) the first pair whose history
    keeps at least ``min_history`` clicks. None when there is none. The pair is found by content,
    not by position: a log with its own labels has no pairs a click-only log's samples have."""
    negatives = test["label"] == 0
    negatives &= (test["user"] == user) if user is not None else np.minimum(test["length"], max_len) >= min_history
    candidates = np.flatnonzero(negatives)
    if candidates.size == 0:
        return None
    users = np.unique(test["user"][candidates])
    positives: dict[tuple, int] = {}  # the candidates' users' positives by user and history
    for row in np.flatnonzero((test["label"] == 1) & np.isin(test["user"], users)):
        positives.setdefault(_user_and_history(test, int(row)), int(row))
    for row in candidates:
        positive = positives.get(_user_and_history(test, int(row)))
        if positive is not None:
            return int(row), positive
    return None


def figure_choice(params: Params, meta: dict, test: dict[str, np.ndarray]
                  ) -> tuple[list[str], tuple[int, int] | None]:
    """What of ``params.figures`` does not fit a processed dataset (``meta`` with its ids, its
    test split), known before any training: ``python -m sarn check`` says it, the figure stage
    refuses it; and the rows of the chosen test user's negative and positive samples
    (``figures.user``, or the first user with ``figures.min_history`` clicks) when they exist."""
    figures = params.figures
    known = set(map(str, meta["category_ids"]))
    problems = [f"figures.categories: {raw!r} is not a category of the training data"
                for raw in figures.categories if raw not in known]
    user = None
    if figures.user is not None:
        index = np.flatnonzero(meta["user_ids"].astype(str) == figures.user)
        if index.size == 0:
            return [*problems, f"figures.user: {figures.user!r} is not a user of the processed data"], None
        if not np.any(test["user"] == index[0]):
            return [*problems, f"figures.user: {figures.user!r} is not a test user"], None
        user = int(index[0])
    pair = candidate_pair(test, user, figures.min_history, params.datasets[figures.dataset].training.max_len)
    if pair is None:
        who = (f"figures.user: {figures.user!r} has" if user is not None
               else f"figures.min_history: no test user with {figures.min_history} clicks of history has")
        problems.append(f"{who} no negative and positive test sample sharing one history "
                        "(Figs. 5b and 6 compare the two)")
    return problems, pair


def _user_batch(test: dict[str, np.ndarray], rows: tuple[int, int], max_len: int) -> Batch:
    """The user's negative and positive samples (same history, cut to the latest ``max_len``
    clicks) as one batch, made as training makes its batches (context feature included). It has
    no padding: with ``max_pool_zero: padded`` no zero joins its max-pools, as in the code's
    batch of these two samples alone."""
    samples = DeviceSamples(test, torch.device("cpu"), max_len)
    width = int(min(test["length"][rows[0]], max_len))
    return samples.batch(BatchIndex(torch.tensor(rows), width))


@torch.no_grad()
def figure_data(params: Params, data_dir: Path, snapshots_dir: Path, out_dir: Path) -> None:
    """Write Fig. 5a's matrices (one per snapshot), Fig. 5b's and Fig. 6's, with a manifest."""
    meta = load_meta(data_dir, with_ids=True)
    train, test = load_split(data_dir, "train"), load_split(data_dir, "test")
    problems, rows = figure_choice(params, meta, test)
    if problems or rows is None:
        raise ConfigError(f"{data_dir}: " + "; ".join(problems))
    manifest = json.loads((snapshots_dir / "snapshots.json").read_text(encoding="utf-8"))
    items, cats = popular_items(meta, train, params.figures.categories, params.figures.items_per_category)
    labels = _labels(meta, items, cats)
    batch = _user_batch(test, rows, params.datasets[params.figures.dataset].training.max_len)
    # Numbered by position: a user may click the same item twice.
    visited = [f"{k + 1}. {label}" for k, label in
               enumerate(_labels(meta, batch.hist_item[0].numpy(), batch.hist_category[0].numpy()))]
    with atomic_dir(out_dir) as tmp:
        snapshots = []
        for k, snap in enumerate(manifest["snapshots"]):
            net = _load_sarn(snapshots_dir, snap["file"], meta)
            x = net.embedding(torch.as_tensor(items), torch.as_tensor(cats))
            _matrix(net.relation(x.unsqueeze(0))[0], labels).to_csv(tmp / f"fig5a_{k}.csv")
            snapshots.append({**snap, "csv": f"fig5a_{k}.csv"})
        net = _load_sarn(snapshots_dir, "best.pt", meta)
        view = net.relational_view(batch)
        _matrix(view.relation[0], visited).to_csv(tmp / "fig5b.csv")
        probability = torch.sigmoid(net(batch).logit)
        candidates = {}
        for k, kind in enumerate(("negative", "positive")):
            _matrix(view.scores[k], visited).to_csv(tmp / f"fig6_{kind}.csv")
            target = _labels(meta, batch.item[k : k + 1].numpy(), batch.category[k : k + 1].numpy())[0]
            candidates[kind] = {"item": target, "click_probability": float(probability[k])}
        user = str(meta["user_ids"][int(test["user"][rows[0]])])
        write_json(tmp / "figures.json", {
            "snapshots": snapshots, "categories": params.figures.categories,
            "user": user, "candidates": candidates,
        })
    log.info("figure data: %d items for Fig. 5a, user %s with %d clicks", len(items), user, len(visited))
