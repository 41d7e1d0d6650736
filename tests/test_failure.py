"""A run that fails yet stays finite is flagged (runs.csv, the log), not taken for a result."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from sarn.data.preprocess import preprocess
from sarn.data.sources import make_raw
from sarn.params import validate
from sarn.train import runner
from sarn.train.metrics import constant_logloss
from tests.conftest import tiny_params


def _params() -> dict:
    """The tiny settings on 2,000 users: with 240, six steps leave DIN's validation LogLoss above
    the constant predictor's, and a run that learns could not be told from one that failed."""
    raw = tiny_params()
    raw["datasets"]["default"]["source"]["generator"]["n_users"] = 2000
    return raw


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    params = validate(_params())
    root = tmp_path_factory.mktemp("failure")
    make_raw("default", params.datasets["default"], root / "raw")
    preprocess("default", params.datasets["default"], root / "raw", root / "processed")
    return root / "processed"


def test_the_constant_predictor_scores_the_entropy_of_the_click_rate() -> None:
    labels = np.array([1.0, 0.0, 0.0, 0.0])
    assert constant_logloss(0.25, labels) == pytest.approx(-(0.25 * np.log(0.25) + 0.75 * np.log(0.75)))
    assert constant_logloss(0.5, labels) == pytest.approx(np.log(2))


def test_a_learning_rate_far_too_high_is_flagged_seed_by_seed(processed, tmp_path, caplog) -> None:
    raw = _params()
    raw["models"]["din"]["training"]["lr"] = 30.0  # finite losses of 1e13 and more, AUC near chance
    with caplog.at_level(logging.WARNING, logger="sarn"):
        runner.train_model(validate(raw), "default", "din", processed, tmp_path / "lr30", n_seeds=2)
    runs = pd.read_csv(tmp_path / "lr30" / "runs.csv")
    assert np.isfinite(runs.test_logloss).all()
    for seed, reason in zip(runs.seed, runs.failed, strict=True):
        assert "worse than predicting the training click rate (0.6931)" in reason
        assert "is over 10 times that of predicting the training click rate" in reason
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(m.startswith(f"train[default/din] seed {seed} failed: best validation") for m in warned)


def test_a_run_that_learns_is_not_flagged(processed, tmp_path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="sarn"):
        runner.train_model(validate(_params()), "default", "din", processed, tmp_path / "din", n_seeds=2)
    assert pd.read_csv(tmp_path / "din" / "runs.csv").failed.isna().all()  # empty cells
    assert " failed: " not in caplog.text


def test_with_training_negatives_dropped_a_run_no_better_than_chance_is_flagged_by_its_auc() -> None:
    """Dropped negatives shift every LogLoss, so the LogLoss checks would flag sound runs and pass
    failed ones; the AUC is unshifted."""
    from sarn.train.failure import failure
    from sarn.train.loop import RunResult

    def run(valid_aucs: list[float]) -> RunResult:
        history = [{"valid_auc": auc, "valid_logloss": 3.5, "test_auc": 0.9, "test_logloss": 3.7} for auc in valid_aucs]
        return RunResult(history, {"validation": 0, "test": 0, "last": len(history) - 1}, "validation", {})

    constant = {"valid": 0.69, "test": 0.69}
    assert failure(run([0.48, 0.5]), constant, biased_logloss=True) == "best validation AUC 0.5 is no better than chance"
    assert failure(run([0.48, 0.62]), constant, biased_logloss=True) == ""
    assert "worse than predicting the training click rate" in failure(run([0.48, 0.62]), constant)
    assert failure(run([0.5]), {"test": 0.69}, biased_logloss=True) == ""  # no validation set: the test AUC
