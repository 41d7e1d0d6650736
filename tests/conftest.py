"""Shared fixtures: a tiny but complete parameter set and the repository paths."""

from __future__ import annotations

import contextlib
import copy
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def tiny_params() -> dict:
    """params.yaml of the repository, shrunk so that a whole pipeline runs in seconds."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw = copy.deepcopy(raw)
    raw["experiment"]["n_seeds"] = 2
    raw["experiment"]["models"] = ["din", "sarn", "sarn_no_pos"]
    effects = raw["protocol_effects"]
    effects.update(datasets=[], n_seeds=2, models=["din", "sarn"])  # tests/test_protocol.py trains them
    for name, choice in list(effects["choices"].items()):  # GRU's reset gate is tested in test_recurrent.py
        if "models" in choice:
            choice["models"] = [model for model in choice["models"] if model in effects["models"]]
            if not choice["models"]:
                del effects["choices"][name]
    raw["figures"].update(min_history=5, items_per_category=3)
    raw["table3"].update(models=["din", "sarn"], lengths=[5], n_seeds=1)
    raw["runtime"].update(threads=1, parallel_seeds=1)  # tests/test_parallel_seeds.py trains seeds at once
    gen = raw["datasets"]["default"]["source"]["generator"]
    gen.update(n_users=240, n_items=300, n_categories=24, n_interests=6, mean_clicks=9.0, max_clicks=20)
    raw["datasets"]["default"]["protocol"]["max_len"] = 10
    raw["datasets"]["default"]["training"] = {"max_len": 10, "eval_every_samples": 256, "statistics_samples": 2560}  # epochs of 3 steps of 128
    for model in raw["models"].values():
        model["training"]["epochs"] = 2
    return raw


@contextlib.contextmanager
def ctrl_c_as_at_a_terminal() -> Iterator[None]:
    """Children started inside take Ctrl-C as from a terminal, to be stopped with SIGINT. A shell
    starts a background job (``nohup pytest ... &``) with SIGINT ignored; an ignored signal stays
    ignored across exec, and Python then installs no KeyboardInterrupt handler. A handled one is
    reset to the default."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def params_dict() -> dict:
    return tiny_params()
