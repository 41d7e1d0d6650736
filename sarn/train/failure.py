"""Runs that failed yet stayed finite: flagged, not reported as if they were results.

A learning rate far too high can leave every loss finite (a test LogLoss of 1e14) and an
AUC near chance, which the NaN check of the training loop never sees; a run too short for
its model can end having learned nothing. A run counts as failed when its best validation
LogLoss is worse than that of predicting the training click rate for every sample (nothing
learned that the LogLoss sees), or when its reported test LogLoss is more than ``EXPLODED``
times that constant predictor's (the run blew up). Where training negatives were dropped
(``protocol.negative_drop``), the LogLoss is shifted and says nothing of this: a run then
counts as failed when its best validation AUC (test, without a validation set) is no better
than chance.
"""

from __future__ import annotations

import numpy as np

from sarn.train.loop import RunResult
from sarn.train.metrics import constant_logloss

EXPLODED = 10.0


def constant_loglosses(labels: dict[str, np.ndarray]) -> dict[str, float]:
    """Per evaluated split, the LogLoss of predicting the training click rate for every sample
    (from the labels of each split alone: computed once per stage, not per seed)."""
    rate = float(labels["train"].mean())
    return {split: constant_logloss(rate, split_labels)
            for split, split_labels in labels.items() if split != "train"}


def failure(result: RunResult, constant: dict[str, float], biased_logloss: bool = False) -> str:
    """Why ``result`` counts as failed ('' when it does not). ``not x <= bound`` also
    flags a NaN."""
    if biased_logloss:
        split = "valid" if "valid" in constant else "test"
        best = max(row[f"{split}_auc"] for row in result.history)
        return "" if best > 0.5 else f"best {'validation' if split == 'valid' else split} AUC {best:.4g} is no better than chance"
    reasons = []
    if "valid" in constant:
        best = min(row["valid_logloss"] for row in result.history)
        if not best <= constant["valid"]:
            reasons.append(f"best validation LogLoss {best:.4g} is worse than predicting the training "
                           f"click rate ({constant['valid']:.4g})")
    test = result.best["test_logloss"]
    if not test <= EXPLODED * constant["test"]:
        reasons.append(f"test LogLoss {test:.4g} is over {EXPLODED:g} times that of predicting the training "
                       f"click rate ({constant['test']:.4g})")
    return "; ".join(reasons)
