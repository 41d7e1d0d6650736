"""Metrics are computed once over the whole set and agree with brute force."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from sarn.train.metrics import auc, grouped_auc, log_loss_from_logits


@pytest.mark.parametrize("distinct", [None, 7])
def test_auc_matches_sklearn(distinct: int | None) -> None:
    """Continuous scores, and scores of a few values (many ties, which count one half)."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 2000)
    scores = rng.normal(labels * 0.7, 1.0) if distinct is None else rng.integers(0, distinct, 2000) + labels
    assert np.isclose(auc(labels, scores), roc_auc_score(labels, scores), rtol=0, atol=1e-12)
    assert auc(labels, scores.astype(np.float32)) == pytest.approx(roc_auc_score(labels, scores.astype(np.float32)))


def test_auc_refuses_nan_scores_and_a_single_class() -> None:
    with pytest.raises(ValueError, match="1 NaN"):
        auc(np.array([0, 1, 1]), np.array([0.1, np.nan, 0.3]))
    with pytest.raises(ValueError, match="3 positives and 0 negatives"):
        auc(np.array([1, 1, 1]), np.array([0.1, 0.2, 0.3]))


def test_grouped_auc_matches_per_user_brute_force() -> None:
    rng = np.random.default_rng(3)
    groups = rng.integers(0, 40, 600)
    labels = rng.integers(0, 2, 600)
    scores = rng.integers(0, 6, 600).astype(float)  # many ties
    total = weight = 0.0
    for g in np.unique(groups):
        sel = groups == g
        if 0 < labels[sel].sum() < sel.sum():
            total += roc_auc_score(labels[sel], scores[sel]) * sel.sum()
            weight += sel.sum()
    assert np.isclose(grouped_auc(labels, scores, groups), total / weight, rtol=0, atol=1e-12)


def test_grouped_auc_of_one_pair_per_user() -> None:
    groups = np.array([0, 0, 1, 1, 2, 2])
    labels = np.array([0, 1, 0, 1, 0, 1])
    scores = np.array([0.1, 0.9, 0.8, 0.2, 0.5, 0.5])
    assert grouped_auc(labels, scores, groups) == 0.5  # one right, one wrong, one tie


def test_log_loss_from_logits_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, 500)
    labels = rng.integers(0, 2, 500)
    expected = log_loss(labels, 1 / (1 + np.exp(-logits)))
    assert np.isclose(log_loss_from_logits(labels, logits), expected, rtol=1e-9)
