"""Metrics over a whole evaluation set, never averaged over batches."""

from __future__ import annotations

import numpy as np
import pandas as pd

METRICS = ("auc", "logloss", "gauc")  # what every evaluation reports, in this order


def log_loss_from_logits(labels: np.ndarray, logits: np.ndarray) -> float:
    """Binary cross-entropy of sigmoid(logits), computed stably in float64."""
    z = logits.astype(np.float64)
    return float(np.mean(np.logaddexp(0.0, np.where(labels > 0.5, -z, z))))


def constant_logloss(rate: float, labels: np.ndarray) -> float:
    """LogLoss of predicting the click probability ``rate`` for every sample: the score of a
    model that learned the click rate and nothing else."""
    return float(-np.mean(np.where(labels > 0.5, np.log(rate), np.log1p(-rate))))


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Exact ROC AUC over the whole set (ties count one half), in the rank-sum form that
    :func:`grouped_auc` uses per user. Written out rather than taken from scikit-learn, whose
    import cost every training process about a second (tests/test_metrics.py compares)."""
    if np.isnan(scores).any():
        raise ValueError(f"AUC of scores with {int(np.isnan(scores).sum())} NaN values")
    positive = labels > 0.5
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if not n_pos or not n_neg:
        raise ValueError(f"AUC needs both classes; the labels have {n_pos} positives and {n_neg} negatives")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # of each distinct score, from 1
    return float((average_rank[inverse.ravel()][positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def grouped_auc(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> float:
    """User-grouped AUC: per-user AUC weighted by the user's sample count.

    Per user, AUC = (rank sum of the positives − n⁺(n⁺+1)/2) / (n⁺·n⁻) with average
    ranks for ties, which is the exact ROC AUC. Users whose samples are all of one class
    have no AUC and are left out.
    """
    frame = pd.DataFrame({"g": groups, "y": labels.astype(np.float64), "s": scores})
    frame["rank"] = frame.groupby("g")["s"].rank(method="average")
    per_user = frame.assign(pos_rank=frame["rank"] * frame["y"]).groupby("g").agg(
        n=("y", "size"), n_pos=("y", "sum"), pos_rank=("pos_rank", "sum")
    )
    n_neg = per_user["n"] - per_user["n_pos"]
    usable = (per_user["n_pos"] > 0) & (n_neg > 0)
    if not usable.any():
        return float("nan")
    u = per_user[usable]
    user_auc = (u["pos_rank"] - u["n_pos"] * (u["n_pos"] + 1) / 2) / (u["n_pos"] * n_neg[usable])
    return float(np.average(user_auc, weights=u["n"]))


def evaluate(labels: np.ndarray, logits: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """AUC, LogLoss and user-grouped AUC of one evaluation set."""
    return {
        "auc": auc(labels, logits),
        "logloss": log_loss_from_logits(labels, logits),
        "gauc": grouped_auc(labels, logits, groups),
    }
