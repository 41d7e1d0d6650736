"""runtime.compile: the models under torch.compile train like the eager ones, share one
compiled graph across history lengths, and the run says how it ran."""

from __future__ import annotations

import copy
import json
import logging

import pandas as pd
import pytest
import torch
from torch._dynamo.utils import counters

from sarn.data.preprocess import preprocess
from sarn.data.sources import make_raw
from sarn.models import build_model
from sarn.params import Params, validate
from sarn.train.loop import compile_model, make_optimizer, train_step
from sarn.train.runner import train_model
from tests.conftest import tiny_params
from tests.test_models import ARCH, N_CATS, N_ITEMS, make_batch


@pytest.fixture(autouse=True)
def fresh_compiler():
    """Each test compiles from scratch and leaves no compiled code to the next."""
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def graphs_compiled() -> int:
    """How many graphs the compiler has made since the test began (0: nothing ran compiled)."""
    return counters["stats"]["unique_graphs"]


def test_sarn_compiles_once_for_every_history_length() -> None:
    """Training steps at widths 12, 9 and 11 share the graphs compiled at the first; the
    compiled model's losses follow the eager twin's step by step."""
    torch.manual_seed(0)
    eager = build_model("sarn", N_ITEMS, N_CATS, ARCH["sarn"])
    compiled = copy.deepcopy(eager)
    assert compile_model(compiled, "default", torch.device("cpu")) == "default"
    spec = validate(tiny_params()).models["sarn"].training
    optimizers = [make_optimizer(net, spec) for net in (eager, compiled)]
    eager.train()
    compiled.train()
    for k, width in enumerate([12, 9, 11]):
        batch = make_batch([width, *torch.randint(1, width + 1, (63,)).tolist()], seed=k)
        torch.manual_seed(100 + k)  # the same shuffle of positions in both auxiliary losses
        with torch.compiler.set_stance("fail_on_recompile" if k else "default"):
            got, _ = train_step(compiled, optimizers[1], batch, spec)
        torch.manual_seed(100 + k)
        want, _ = train_step(eager, optimizers[0], batch, spec)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
        assert graphs_compiled() == 1  # forward and backward of the first width, and nothing since


def test_a_model_with_a_python_recurrence_stays_eager() -> None:
    net = build_model("dien", N_ITEMS, N_CATS, ARCH["dien"])
    assert compile_model(net, "reduce-overhead", torch.device("cpu")) == "eager"
    net(make_batch([3, 5]))
    assert graphs_compiled() == 0


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> tuple[Params, object]:
    params = validate(tiny_params())
    spec = params.datasets["default"]
    root = tmp_path_factory.mktemp("compile")
    make_raw("default", spec, root / "raw")
    preprocess("default", spec, root / "raw", root / "processed")
    return params, root / "processed"


def _train(params: Params, data_dir, out_dir, compile_mode: str) -> tuple[pd.DataFrame, dict]:
    runtime = params.runtime.model_copy(update={"device": "cpu", "compile": compile_mode})
    train_model(params.model_copy(update={"runtime": runtime}), "default", "din", data_dir, out_dir, n_seeds=2)
    return pd.read_csv(out_dir / "runs.csv"), json.loads((out_dir / "run.json").read_text())


def test_a_compiled_run_agrees_with_the_eager_one_and_says_how_it_ran(processed, tmp_path, caplog) -> None:
    params, data_dir = processed
    eager, eager_info = _train(params, data_dir, tmp_path / "eager", "eager")
    assert graphs_compiled() == 0
    with caplog.at_level(logging.WARNING, logger="sarn.train.runner"):
        compiled, info = _train(params, data_dir, tmp_path / "compiled", "reduce-overhead")
    assert (eager_info["compile"], info["compile"]) == ("eager", "default")
    assert graphs_compiled() > 0
    assert "runtime.compile is reduce-overhead, but din runs in torch.compile's default mode" in caplog.text
    # Fused kernels round differently, so the two runs are close, not equal (here their
    # LogLosses differed by about 1e-8).
    for metric in ("valid_logloss", "test_logloss", "test_auc"):
        assert (compiled[metric] - eager[metric]).abs().max() < 1e-5, metric
    # Another compiled run reuses what was compiled (new models, same shapes) and gives
    # the same bytes: compiled CPU training is as deterministic as eager.
    with torch.compiler.set_stance("fail_on_recompile"):
        _train(params, data_dir, tmp_path / "again", "reduce-overhead")
    assert (tmp_path / "again" / "runs.csv").read_bytes() == (tmp_path / "compiled" / "runs.csv").read_bytes()
