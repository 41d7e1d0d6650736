"""The training loop: validation chooses the epoch, a NaN loss stops the run."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from sarn.data.raw import as_log
from sarn.data.samples import build_samples
from sarn.data.synthetic import generate_clicks
from sarn.errors import TrainingError
from sarn.models import CTRModel, ModelOutput, build_model
from sarn.params import Params, TrainingSpec, validate
from sarn.train import loop
from sarn.train.batching import DeviceSamples
from sarn.train.loop import CHECK_EVERY, make_optimizer, train_run, train_step
from sarn.train.runner import configure_torch
from tests.conftest import tiny_params


@pytest.fixture(scope="module")
def tiny_arrays():
    params = validate(tiny_params())
    spec = params.datasets["default"]
    splits, meta = build_samples(as_log(generate_clicks(spec.source.generator)), spec.protocol)
    return params, splits, meta


@pytest.fixture(scope="module")
def tiny(tiny_arrays):
    params, splits, meta = tiny_arrays
    data = {name: DeviceSamples(arrays, torch.device("cpu")) for name, arrays in splits.items()}
    return params, data, meta


def _training(**over) -> TrainingSpec:
    spec = {"optimizer": "adam", "lr": 0.01, "lr_schedule": {"kind": "constant"}, "batch_size": 32, "epochs": 3,
            "length_sort_chunk": 4, "batch_order": "longest_first", "click_loss_weight": 0.5, "grad_clip_norm": None, "aux_negatives": "fixed",
            "train_on": "train"}
    return TrainingSpec.model_validate({**spec, **over})


def test_validation_chooses_the_reported_evaluation(tiny) -> None:
    """Evaluations every eval_every steps and at each epoch's end; the best validation AUC is
    reported, the best test AUC (the reference code's rule) and the last evaluation kept beside."""
    params, data, meta = tiny
    torch.manual_seed(0)
    net = build_model("din", meta["n_items"], meta["n_categories"], params.models["din"].architecture)
    spec = _training()
    steps = -(-data["train"].size // spec.batch_size)
    result = train_run(net, data, spec, seed=0, eval_batch_size=64, label="test", statistics_samples=2560, eval_every=5)
    at = [(row["epoch"], row["step"], row["epoch_end"]) for row in result.history]
    ends = [(e, e * steps, 1) for e in (1, 2, 3)]
    mids = [((s - 1) // steps + 1, s, 0) for s in range(5, 3 * steps, 5) if s % steps]
    assert sorted(at, key=lambda a: a[1]) == at and sorted(at) == sorted(ends + mids)
    valid = [row["valid_auc"] for row in result.history]
    test = [row["test_auc"] for row in result.history]
    assert result.reported == "validation"
    assert result.selected == {"validation": int(np.argmax(valid)), "test": int(np.argmax(test)),
                               "last": len(at) - 1}
    assert result.best is result.history[int(np.argmax(valid))]
    assert all(np.isfinite(row["train_logloss"]) for row in result.history)


def test_the_training_loss_of_each_evaluation_is_that_of_the_batches_since_the_previous(tiny, monkeypatch) -> None:
    """Fig. 4's training curve: as the reference code prints it, the mean click LogLoss of the
    training batches since the previous evaluation (an epoch's end included), weighted by samples."""
    params, data, meta = tiny
    seen: list[tuple[float, int]] = []
    real = loop.train_step

    def recording(model, optimizer, batch, spec, precision):
        loss, ctr = real(model, optimizer, batch, spec, precision)
        seen.append((float(ctr), batch.label.numel()))
        return loss, ctr

    monkeypatch.setattr(loop, "train_step", recording)
    torch.manual_seed(0)
    net = build_model("din", meta["n_items"], meta["n_categories"], params.models["din"].architecture)
    result = train_run(net, data, _training(epochs=2), seed=0, eval_batch_size=64, label="test",
                       statistics_samples=2560, eval_every=3)
    assert sum(row["epoch_end"] == 0 for row in result.history) >= 2  # windows inside epochs too
    previous = 0
    for row in result.history:
        window = seen[previous : row["step"]]
        expected = sum(loss * n for loss, n in window) / sum(n for _, n in window)
        assert row["train_logloss"] == pytest.approx(expected, rel=1e-6), row
        previous = row["step"]
    assert previous == len(seen)


@pytest.mark.parametrize("asked", [40, 2560])
def test_each_evaluation_measures_its_statistics_at_its_own_weights(tiny, monkeypatch, asked) -> None:
    """Before every evaluation batch norm and Dice measure their statistics on the run's sample
    of ``statistics_samples`` training samples (all, where the split is smaller), so the reported
    weights hold them."""
    params, data, meta = tiny
    size = min(asked, data["train"].size)
    assert (size < data["train"].size) == (asked == 40)
    n_parts = -(-size // 32)
    calibrated: list[int] = []
    real = loop.calibrate
    monkeypatch.setattr(loop, "calibrate", lambda model, samples, parts, precision: (
        calibrated.append(len(parts)), real(model, samples, parts, precision)))
    torch.manual_seed(0)
    net = build_model("din", meta["n_items"], meta["n_categories"], params.models["din"].architecture)
    for with_valid in (True, False):
        calibrated.clear()
        splits = data if with_valid else {"train": data["train"], "test": data["test"]}
        result = train_run(net, splits, _training(epochs=2), seed=0, eval_batch_size=64, label="test",
                           statistics_samples=asked, eval_every=3)
        assert calibrated == [n_parts] * len(result.history)
        counts = {v.item() for name, v in result.state_dict.items() if name.endswith("stats.rows")}
        assert counts == {size}, (with_valid, counts)
        # Measured again at the reported weights, the statistics are the same.
        net.load_state_dict(result.state_dict)
        parts = data["train"].sample_batches(size, 32, torch.Generator().manual_seed(loop.STATISTICS_SEED_OFFSET))
        real(net, data["train"], parts)
        assert all(torch.equal(v, net.state_dict()[k]) for k, v in result.state_dict.items()), with_valid


def test_measuring_the_statistics_leaves_how_a_run_trains_unchanged(tiny) -> None:
    """The measurement runs the model in evaluation mode, so SARN's extra losses draw no random
    numbers there: snapshots (measured too) and evaluations change nothing in the training."""
    params, data, meta = tiny
    histories = []
    for fractions in ((), (0.0, 0.5, 1.0)):
        torch.manual_seed(0)
        net = build_model("sarn", meta["n_items"], meta["n_categories"], params.models["sarn"].architecture)
        result = train_run(net, data, _training(epochs=1), seed=0, eval_batch_size=64, label="test", statistics_samples=2560,
                           eval_every=3, snapshot_fractions=fractions)
        histories.append(result.history)
    assert histories[0] == histories[1]


def test_without_a_validation_set_the_last_evaluation_is_reported(tiny) -> None:
    params, data, meta = tiny
    torch.manual_seed(0)
    net = build_model("din", meta["n_items"], meta["n_categories"], params.models["din"].architecture)
    result = train_run(net, {"train": data["train"], "test": data["test"]}, _training(epochs=2), seed=0,
                       eval_batch_size=64, label="test", statistics_samples=2560)
    assert result.reported == "last" and result.best is result.history[-1]
    assert "validation" not in result.selected and not any(k.startswith("valid_") for k in result.best)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in result.state_dict.items())


def test_the_learning_rate_decays_per_epoch_when_asked(tiny, monkeypatch) -> None:
    params, data, meta = tiny
    seen = []
    real = make_optimizer

    def recording(*args, **kwargs):
        optimizer = real(*args, **kwargs)
        original = optimizer.step

        def step(*a, **k):
            seen.append(optimizer.param_groups[0]["lr"])
            return original(*a, **k)

        optimizer.step = step
        return optimizer

    monkeypatch.setattr("sarn.train.loop.make_optimizer", recording)
    torch.manual_seed(0)
    net = build_model("din", meta["n_items"], meta["n_categories"], params.models["din"].architecture)
    train_run(net, data, _training(epochs=3, lr_schedule={"kind": "per_epoch", "factor": 0.5}), seed=0,
              eval_batch_size=64, label="test", statistics_samples=2560)
    steps = len(seen) // 3
    assert seen == [0.01] * steps + [0.005] * steps + [0.0025] * steps


class _Diverging(CTRModel):
    """Returns NaN logits from its ``at``-th call on: what a diverged run looks like to the loop."""

    def __init__(self, n_items: int, n_categories: int, at: int) -> None:
        super().__init__(n_items, n_categories, 4, "torch", "zero")
        self.at, self.calls = at, 0

    def forward(self, batch) -> ModelOutput:
        self.calls += 1
        target, _, _ = self.embed(batch)
        logit = target.sum(dim=-1) * (float("nan") if self.calls >= self.at else 1.0)
        return ModelOutput(logit, self.no_aux_loss(logit))


@pytest.mark.parametrize("at", [1, CHECK_EVERY + 3])
def test_a_nan_loss_stops_the_run_naming_the_first_bad_batch(tiny, at: int) -> None:
    """The loop reads losses back only every CHECK_EVERY steps; the error still names the
    batch where the loss first became NaN."""
    _, data, meta = tiny
    net = _Diverging(meta["n_items"], meta["n_categories"], at)
    spec = _training(batch_size=4, epochs=1)
    assert data["train"].size > 4 * (CHECK_EVERY + 3)
    with pytest.raises(TrainingError, match=rf"test: loss became nan at epoch 1, batch {at};"):
        train_run(net, data, spec, seed=0, eval_batch_size=64, label="test", statistics_samples=2560)


def test_a_cuda_precision_asked_of_the_cpu_is_said(caplog) -> None:
    runtime = validate(tiny_params()).runtime.model_copy(update={"device": "cpu", "precision": "bf16"})
    with caplog.at_level(logging.WARNING, logger="sarn.train.runner"):
        device = configure_torch(runtime)
    assert device.type == "cpu"
    assert "runtime.precision is bf16, which applies on CUDA only" in caplog.text


@pytest.mark.parametrize("order", ["longest_first", "shuffled"])
def test_training_batches_cover_every_sample_once_and_group_lengths(tiny, order: str) -> None:
    _, data, _ = tiny
    train = data["train"]
    batches = train.training_batches(16, 4, torch.Generator().manual_seed(1), order)
    seen = torch.cat([b.index for b in batches]).sort().values
    assert torch.equal(seen, torch.arange(train.size))
    assert all(b.width == max(int(train._length[b.index].max()), 1) for b in batches)
    spread = np.mean([float(train._length[b.index].max() - train._length[b.index].min()) for b in batches])
    plain = train.training_batches(16, 1, torch.Generator().manual_seed(1), order)
    plain_spread = np.mean([float(train._length[b.index].max() - train._length[b.index].min()) for b in plain])
    assert spread < plain_spread
    stored = [train._sort_length[b.index] for b in batches]
    in_order = all(stored[k].min() >= stored[k + 1].max() for k in range(len(batches) - 1) if (k + 1) % 4)
    assert in_order == (order == "longest_first")  # as the reference pops each buffer


def test_batches_of_an_empty_split_are_none_and_evaluation_batches_cover_all(tiny, tiny_arrays) -> None:
    _, data, _ = tiny
    valid = data["valid"]
    order = valid.evaluation_order()
    labels = torch.cat([b.label for b in valid.batches(order, 7)])
    assert torch.equal(labels, torch.as_tensor(valid.label[order.numpy()], dtype=torch.float32))
    _, splits, _ = tiny_arrays
    empty = DeviceSamples({key: value[:0] for key, value in splits["valid"].items()}, torch.device("cpu"))
    assert empty.training_batches(8, 2, torch.Generator()) == []
    assert list(empty.batches(empty.evaluation_order(), 8)) == []


def test_the_reference_evaluation_order_sorts_each_buffer_of_the_split_longest_first(tiny_arrays) -> None:
    _, splits, _ = tiny_arrays
    arrays = {key: value[:7] for key, value in splits["valid"].items()}
    arrays["length"] = np.array([1, 5, 3, 2, 4, 6, 2])
    arrays["full_length"] = arrays["length"].copy()
    samples = DeviceSamples(arrays, torch.device("cpu"))
    assert samples.evaluation_order(3).tolist() == [1, 2, 0, 5, 4, 3, 6]
    assert samples.evaluation_order().tolist() == [0, 3, 6, 2, 4, 1, 5]
    # The buffers are sorted by the whole history's length, as the reference's file holds it,
    # not by the length kept: samples 4 and 5, both cut to 4, had 7 and 9 clicks.
    arrays["length"], arrays["full_length"] = np.array([1, 2, 3, 2, 4, 4, 2]), np.array([1, 2, 3, 2, 7, 9, 2])
    samples = DeviceSamples(arrays, torch.device("cpu"))
    assert samples.evaluation_order(3).tolist() == [2, 1, 0, 5, 4, 3, 6]
    assert samples.evaluation_order(3)[:0].tolist() == DeviceSamples(
        {key: value[:0] for key, value in arrays.items()}, torch.device("cpu")).evaluation_order(3).tolist()


@pytest.mark.parametrize(("change", "batches"), [
    ({}, (64, None)),                          # any batch gives the same prediction: the fastest
    ({"dice_eval": "batch"}, (32, 32 * 4)),    # the reference code's test batches
    ({"index0": "trainable"}, (32, 32 * 4)),
])
def test_a_prediction_that_depends_on_its_batch_is_made_in_the_codes_batches(tiny, monkeypatch, change,
                                                                           batches) -> None:
    params, data, meta = tiny
    asked = []

    def predict(model, samples, batch_size, precision, reference_chunk):
        asked.append((batch_size, reference_chunk))
        return np.zeros(samples.size)

    monkeypatch.setattr(loop, "predict", predict)
    net = build_model("din", meta["n_items"], meta["n_categories"],
                      {**params.models["din"].architecture, **change})
    train_run(net, data, _training(epochs=1), seed=0, eval_batch_size=64, label="test", statistics_samples=2560)
    assert set(asked) == {batches}


def test_snapshots_are_taken_at_the_requested_fractions(tiny) -> None:
    params, data, meta = tiny
    torch.manual_seed(0)
    net = build_model("sarn", meta["n_items"], meta["n_categories"], params.models["sarn"].architecture)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    result = train_run(net, data, _training(epochs=2), seed=0, eval_batch_size=64, label="test", statistics_samples=2560,
                       snapshot_fractions=[0.0, 0.5, 1.0])
    steps = {f: step for f, (step, _) in result.snapshots.items()}
    assert steps[0.0] == 0 and steps[1.0] == 2 * steps[0.5] > 0
    first, last = result.snapshots[0.0][1], result.snapshots[1.0][1]
    weights = [name for name, _ in net.named_parameters()]  # the statistics are measured at each
    assert all(torch.equal(first[k], start[k]) for k in weights)
    assert all(torch.equal(last[k], v) for k, v in net.state_dict().items())
    assert not torch.equal(first["embedding.items.weight"], last["embedding.items.weight"])


class DeviceWaits(TorchDispatchMode):
    """Records the operators that, on CUDA, make the host wait for the device: reading a
    value back, and those whose output size depends on tensor contents. One such wait a
    step idles the GPU between batches and rules out capturing the step as a CUDA graph,
    so the CPU can check what only a GPU would show as lost time.

    What never reaches the dispatcher on the CPU escapes it: ``.tolist()``, ``.numpy()``,
    ``.cpu()`` and ``.to(device)`` of a CPU tensor (:func:`test_a_cuda_training_step_never_synchronises`
    covers those where a GPU is present).
    """

    # lift_fresh: a tensor made from Python values, which on CUDA is a copy from the host
    WAITING: ClassVar[set[str]] = {"_local_scalar_dense", "nonzero", "masked_select", "_unique", "_unique2",
                                   "unique_dim", "unique_consecutive", "equal", "is_nonzero", "lift_fresh",
                                   "bincount", "histc"}
    # repeat_interleave waits unless given output_size, when its repeats are a tensor
    REPEATS = (torch.ops.aten.repeat_interleave.Tensor, torch.ops.aten.repeat_interleave.self_Tensor)

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        masks = func.overloadpacket in (torch.ops.aten.index, torch.ops.aten.index_put, torch.ops.aten.index_put_) \
            and any(isinstance(t, torch.Tensor) and t.dtype in (torch.bool, torch.uint8)
                    for t in (args[1] if len(args) > 1 and isinstance(args[1], (list, tuple)) else []))
        repeats = func in self.REPEATS and (kwargs or {}).get("output_size") is None
        if name in self.WAITING or masks or repeats:
            self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


def test_the_device_wait_detector_sees_reads_and_boolean_masks() -> None:
    x = torch.randn(6, requires_grad=True)
    with DeviceWaits() as waits:
        float(x.sum())
        x[x > 0].sum().backward()
        torch.tensor([1.0, 2.0])
        torch.arange(3).repeat_interleave(2)  # an int count: no wait
        torch.arange(3).repeat_interleave(torch.tensor([1, 2, 1]))
    assert waits.seen[0] == "aten._local_scalar_dense.default"
    assert "aten.index.Tensor" in waits.seen
    assert waits.seen[-3:] == ["aten.lift_fresh.default", "aten.lift_fresh.default",
                               "aten.repeat_interleave.Tensor"]


RUNS = sorted(validate(tiny_params()).models)


def _watched_step(params: Params, samples: DeviceSamples, meta: dict, name: str,
                  watch: AbstractContextManager) -> None:
    """One training step of run ``name`` after a first one (which makes the optimizer's
    state): cutting the batch, forward, backward, clipping and the optimizer as configured
    (fused Adam), all under ``watch``."""
    spec = params.models[name]
    torch.manual_seed(0)
    net = build_model(spec.model, meta["n_items"], meta["n_categories"], spec.architecture).to(samples.device)
    training = spec.training.model_copy(update={"grad_clip_norm": 5.0})
    optimizer = make_optimizer(net, training)
    parts = samples.training_batches(32, 4, torch.Generator().manual_seed(0))
    net.train()
    train_step(net, optimizer, samples.batch(parts[0]), training)
    with watch:
        train_step(net, optimizer, samples.batch(parts[1]), training)


@pytest.mark.parametrize("name", RUNS)
def test_a_training_step_never_waits_for_the_device(tiny, name: str) -> None:
    params, data, meta = tiny
    waits = DeviceWaits()
    _watched_step(params, data["train"], meta, name, waits)
    assert waits.seen == []


@contextmanager
def _sync_is_an_error() -> Iterator[None]:
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", RUNS)
def test_a_cuda_training_step_never_synchronises(tiny_arrays, name: str) -> None:
    """On a GPU, CUDA itself says whether a step synchronises (what the CPU check cannot see)."""
    params, splits, meta = tiny_arrays
    _watched_step(params, DeviceSamples(splits["train"], torch.device("cuda")), meta, name, _sync_is_an_error())
