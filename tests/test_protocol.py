"""The reference code's protocol, as params.yaml makes it explicit: history length, evaluation
schedule, history negatives, initialisation, ATRank's code, and the protocol-effects runs."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch import nn

from sarn.checks import check_models
from sarn.data.preprocess import preprocess
from sarn.data.processed import load_negative_pool
from sarn.data.sources import make_raw
from sarn.errors import ConfigError
from sarn.models import build_model
from sarn.nn.recurrent import AUGRU, PaddedGRU
from sarn.params import effects_datasets, runs_on, validate
from sarn.plan.bill import planned_runs
from sarn.train import runner
from sarn.train.batching import DeviceSamples
from sarn.train.negatives import NegativeSampler
from tests.conftest import ROOT, tiny_params


@pytest.fixture(scope="module")
def stored_at_20(tmp_path_factory):
    """The tiny dataset preprocessed with 20 clicks stored, Table II set to train on 10."""
    raw = tiny_params()
    raw["datasets"]["default"]["protocol"]["max_len"] = 20
    raw["datasets"]["default"]["training"] = {"max_len": 10, "eval_every_samples": 256, "statistics_samples": 2560}
    params = validate(raw)
    root = tmp_path_factory.mktemp("stored20")
    make_raw("default", params.datasets["default"], root / "raw")
    preprocess("default", params.datasets["default"], root / "raw", root / "processed")
    return raw, params, root


def test_table2_trains_on_the_datasets_history_length_not_the_stored_one(stored_at_20, tmp_path, monkeypatch):
    _raw, params, root = stored_at_20
    seen = {}
    real = runner.train_run

    def spy(net, data, *args, **kwargs):
        seen["width"] = {split: samples._hist.shape[-1] for split, samples in data.items()}
        seen["longest"] = max(int(samples._length.max()) for samples in data.values())
        return real(net, data, *args, **kwargs)

    monkeypatch.setattr(runner, "train_run", spy)
    stored = np.load(root / "processed" / "train.npz")["hist_item"].shape[1]
    assert stored == 20 and np.load(root / "processed" / "train.npz")["length"].max() > 10
    runner.train_model(params, "default", "din", root / "processed", tmp_path / "din", n_seeds=1)
    assert seen["width"] == {"train": 10, "valid": 10, "test": 10} and seen["longest"] == 10
    assert json.loads((tmp_path / "din" / "run.json").read_text())["max_len"] == 10
    # Table III's sweep still cuts where it is told.
    runner.train_model(params, "default", "din", root / "processed", tmp_path / "din15", n_seeds=1, max_len=15)
    assert seen["width"]["train"] == 15


def test_an_evaluation_interval_longer_than_an_epoch_is_refused(stored_at_20, tmp_path):
    raw, _params, root = stored_at_20
    raw = json.loads(json.dumps(raw))
    raw["datasets"]["default"]["training"]["eval_every_samples"] = 50 * 128
    with pytest.raises(ConfigError, match=r"datasets\.default\.training\.eval_every_samples: 6400 samples \(50 "
                                          r"steps of 128\) is more than an epoch of models\.din \(\d+ steps over"):
        runner.train_model(validate(raw), "default", "din", root / "processed", tmp_path / "din", n_seeds=1)
    assert not (tmp_path / "din").exists()
    # `check` says the same before anything runs, where the processed data exists.
    processed = tmp_path / "processed_root"
    processed.mkdir()
    (processed / "default").symlink_to(root / "processed")
    raw["figures"].update(categories=["C0", "C999"], user="nobody")  # ids the figures would refuse after training
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    proc = subprocess.run([sys.executable, "-m", "sarn", "--params", str(tmp_path / "params.yaml"), "check",
                           "--processed", str(processed)], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT)}, check=False)
    assert proc.returncode == 2
    assert "does not fit the processed data" in proc.stderr
    assert ("datasets.default.training.eval_every_samples: 6400 samples (50 steps of 128) is more than an epoch of "
            "models.sarn") in proc.stderr
    assert "figures.categories: 'C999' is not a category of the training data" in proc.stderr
    assert "'C0'" not in proc.stderr
    assert "figures.user: 'nobody' is not a user of the processed data" in proc.stderr


def test_every_model_is_evaluated_after_as_many_samples_whatever_its_batch_size(stored_at_20, tmp_path):
    """The SARN code's interval is 100 steps of 128; a run in batches of 32 (ATRank's) evaluates
    after the same 12,800 samples, every 400 of its steps, not four times as often."""
    raw, _params, root = stored_at_20
    raw = json.loads(json.dumps(raw))
    training = validate(raw).datasets["default"].training
    assert training.eval_every_samples == 256 and training.eval_every(128) == 2 and training.eval_every(32) == 8
    raw["models"]["din"]["training"]["batch_size"] = 32
    runner.train_model(validate(raw), "default", "din", root / "processed", tmp_path / "din", n_seeds=1)
    record = json.loads((tmp_path / "din" / "run.json").read_text())
    assert (record["eval_every"], record["eval_every_samples"]) == (8, 256)
    history = pd.read_csv(tmp_path / "din" / "history.csv")
    mid_epoch = history.loc[history["epoch_end"] == 0, "step"]
    epoch_steps = math.ceil(json.loads((root / "processed" / "stats.json").read_text())["train_samples"] / 32)
    assert list(mid_epoch) == [step for step in range(8, 2 * epoch_steps, 8) if step % epoch_steps]


@pytest.mark.parametrize(("path", "value", "message"), [
    (("datasets", "default", "training", "eval_every_samples"), 0, "datasets.default.training.eval_every_samples"),
    (("datasets", "default", "training", "eval_every_samples"), "100 steps",
     "datasets.default.training.eval_every_samples"),
    (("datasets", "default", "training", "statistics_samples"), 0, "datasets.default.training.statistics_samples"),
    (("datasets", "default", "training", "statistics_samples"), 2560.0,
     "datasets.default.training.statistics_samples"),
    (("datasets", "default", "training", "max_len"), 11,
     ("datasets.default.training.max_len: 11 is longer than the histories preprocessing stores "
     "(datasets.default.protocol.max_len = 10)")),
    (("models", "sarn", "training", "lr_schedule"), {"kind": "cosine"}, "models.sarn.training.lr_schedule"),
    (("models", "sarn", "training", "lr_schedule"), {"kind": "per_epoch", "factor": 1.5},
     "models.sarn.training.lr_schedule.per_epoch.factor"),
    (("models", "sarn", "training", "aux_negatives"), "per_batch", "models.sarn.training.aux_negatives"),
    (("models", "din", "training", "train_on"), "all", "models.din.training.train_on"),
    (("models", "din", "architecture", "dense_init"), "he", "models.din.architecture.dense_init"),
    (("protocol_effects", "choices", "typo"), {"architecture": {"batch_norm": "frozen"}},
     "protocol_effects.choices.typo.architecture.batch_norm: unknown key for models.din"),
    (("protocol_effects", "choices", "bad"), {"training": {"lr_schedule": {"kind": "never"}}},
     "protocol_effects.choices.bad.training.lr_schedule: Input tag 'never'"),
    (("protocol_effects", "models"), ["din", "gru"], ("protocol_effects.models.1: 'gru' is not in "
                                                      "experiment.models")),
    (("protocol_effects", "n_seeds"), 3, "protocol_effects.n_seeds: 3 is more than experiment.n_seeds (2)"),
    (("datasets", "default", "training"), {"max_len": 10, "eval_every": 2},
     "datasets.default.training: Value error, eval_every (optimizer steps) is now eval_every_samples"),
    (("protocol_effects", "datasets"), ["default", "electronic"],
     "protocol_effects.datasets.1: 'electronic' is not a key of datasets"),
    (("models", "dien", "architecture", "gru_reset"), "sideways", "models.dien.architecture.gru_reset"),
    (("models", "sarn", "architecture", "index0"), "learned", "models.sarn.architecture.index0"),
    (("models", "rn", "architecture", "max_pool_zero"), "never", "models.rn.architecture.max_pool_zero"),
    (("models", "din", "architecture", "max_pool_zero"), "padded",
     "models.din.architecture.max_pool_zero: unknown key"),
    (("protocol_effects", "choices", "trainable_index0", "architecture", "index0"), "random",
     "protocol_effects.choices.trainable_index0.architecture.index0"),
    (("protocol_effects", "choices", "lr_decay", "models"), ["din", "gru"],
     "protocol_effects.choices.lr_decay.models.1: 'gru' is not in protocol_effects.models"),
    (("protocol_effects", "choices", "gru_only"), {"architecture": {"gru_reset": "before_product"}},
     ("protocol_effects.choices.gru_only.architecture.gru_reset: unknown key for models.din "
      "(give the choice models: [...] of those that have it)")),
    (("protocol_effects", "choices", "nothing"), {"models": ["din"]},
     "a choice changes at least one architecture or training key"),
])
def test_check_names_each_bad_protocol_key(params_dict, path, value, message):
    params_dict["protocol_effects"]["datasets"] = ["default"]
    node = params_dict
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError) as info:
        check_models(validate(params_dict))
    assert message in str(info.value)


def test_per_epoch_negatives_follow_the_logs_clicks_and_never_the_clicked_item(stored_at_20):
    _, _, root = stored_at_20
    pool = load_negative_pool(root / "processed")
    arrays = dict(np.load(root / "processed" / "train.npz"))
    samples = DeviceSamples(arrays, torch.device("cpu"), 10)
    clicked, valid = samples.history_items()
    sampler = NegativeSampler(pool, seed=3)
    draws = []
    for _ in range(2):
        sampler.redraw(samples)
        items = samples._hist[3].numpy().copy()
        categories = samples._hist[4].numpy().copy()
        assert (items[~valid] == 0).all() and (categories[~valid] == 0).all()
        assert (items[valid] != clicked[valid]).all()
        # every drawn (item, category) pair is a clicked pair of the log
        known = set(zip(pool["item"].tolist(), pool["category"].tolist(), strict=True))
        assert set(zip(items[valid].tolist(), categories[valid].tolist(), strict=True)) <= known
        draws.append(items)
    assert not np.array_equal(draws[0], draws[1])  # anew every epoch
    again = DeviceSamples(arrays, torch.device("cpu"), 10)
    NegativeSampler(pool, seed=3).redraw(again)
    assert np.array_equal(again._hist[3].numpy(), draws[0])  # and the same for the same seed
    # popularity-weighted: over many draws, an item's share follows its clicks
    big = NegativeSampler(pool, seed=0)
    counts = np.bincount(big.draw(np.zeros(200_000, dtype=np.int64))[0], minlength=pool["item"].max() + 1)
    clicks = np.bincount(pool["item"], weights=pool["clicks"], minlength=counts.size)
    clicks[0] = 0  # index 0 was the item to avoid
    assert np.corrcoef(counts, clicks)[0, 1] > 0.99


def test_the_negative_pool_counts_every_click_of_the_log(stored_at_20):
    _raw, _params, root = stored_at_20
    pool = load_negative_pool(root / "processed")
    stats = json.loads((root / "processed" / "stats.json").read_text())
    assert pool["clicks"].sum() == stats["interactions"]
    assert len(set(zip(pool["item"].tolist(), pool["category"].tolist(), strict=True))) == pool["item"].size


def test_glorot_initialisation_starts_layers_as_tensorflow_does():
    torch.manual_seed(0)
    net = build_model("dien", 50, 8, {**yaml.safe_load((ROOT / "params.yaml").read_text())["models"]["dien"]
                                      ["architecture"], "dense_init": "glorot"})
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    recurrent = [(m.gru.weight_ih_l0, m.gru.weight_hh_l0, m.gru.bias_ih_l0, m.gru.bias_hh_l0)
                 for m in net.modules() if isinstance(m, PaddedGRU)]
    recurrent += [(m.cell.weight_ih, m.cell.weight_hh, m.cell.bias_ih, m.cell.bias_hh)
                  for m in net.modules() if isinstance(m, AUGRU)]
    assert linears and len(recurrent) == 2  # DIEN's interest extractor and its AUGRU
    for layer in linears:
        bound = math.sqrt(6 / (layer.in_features + layer.out_features))
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.8 * bound
        assert layer.bias is None or (layer.bias == 0).all()
    for weight_ih, weight_hh, bias_ih, bias_hh in recurrent:
        h = weight_hh.shape[1]
        assert (bias_ih[: 2 * h] == 1).all() and (bias_ih[2 * h :] == 0).all() and (bias_hh == 0).all()
        gate_bound = math.sqrt(6 / (weight_ih.shape[1] + h + 2 * h))
        candidate_bound = math.sqrt(6 / (weight_ih.shape[1] + h + h))
        for weight in (weight_ih, weight_hh):
            assert 0.8 * gate_bound < weight[: 2 * h].abs().max() <= gate_bound
            assert 0.8 * candidate_bound < weight[2 * h :].abs().max() <= candidate_bound
    torch.manual_seed(0)
    plain = build_model("din", 50, 8, {**yaml.safe_load((ROOT / "params.yaml").read_text())["models"]["din"]
                                       ["architecture"], "dense_init": "torch"})
    assert any((m.bias != 0).any() for m in plain.modules() if isinstance(m, nn.Linear) and m.bias is not None)


@pytest.mark.parametrize("name", ["sarn", "rn"])
@pytest.mark.parametrize("scheme", ["glorot", "torch"])
def test_a_layer_computed_in_parts_starts_as_the_one_layer_it_is(name: str, scheme: str) -> None:
    """SARN's attention layer on [t ; g_ij] and RN's relation layer on [x_i ; x_j] run as one
    nn.Linear a part; each part's bounds count the whole layer's fan-in (the code's one dense layer
    of 2d inputs), not its own."""
    from sarn.nn.init import SplitKernels

    torch.manual_seed(0)
    arch = yaml.safe_load((ROOT / "params.yaml").read_text())["models"][name]["architecture"]
    net = build_model(name, 50, 8, {**arch, "dense_init": scheme})
    split = [parts for m in net.modules() if isinstance(m, SplitKernels) for parts in m.kernel_parts()]
    assert len(split) == (1 if name == "sarn" else 2)
    for parts in split:
        fan_in, fan_out = sum(p.in_features for p in parts), parts[0].out_features
        assert fan_in == 2 * parts[0].in_features
        bound = math.sqrt(6 / (fan_in + fan_out)) if scheme == "glorot" else 1 / math.sqrt(fan_in)
        for part in parts:
            assert 0.9 * bound < part.weight.abs().max() <= bound
        biases = [part.bias for part in parts if part.bias is not None]
        assert len(biases) == 1
        assert (biases[0] == 0).all() if scheme == "glorot" else 0 < biases[0].abs().max() <= 1 / math.sqrt(fan_in)


def test_atrank_adds_its_codes_l2_term_in_training_only():
    from tests.test_models import make_batch

    arch = yaml.safe_load((ROOT / "params.yaml").read_text())["models"]["atrank"]["architecture"]
    torch.manual_seed(0)
    net = build_model("atrank", 50, 8, arch)
    assert (net.item_bias.weight == 0).all()
    batch = make_batch([3, 5, 1, 4], seed=1)
    net.train()
    out = net(batch)
    target, _, _ = net.embed(batch)
    assert out.aux_loss.item() > 0
    # recover u from the logit: logit = bias + <u, t>, with the bias still 0
    without = build_model("atrank", 50, 8, {**arch, "l2": 0.0})
    without.load_state_dict(net.state_dict())
    without.train()
    assert without(batch).aux_loss.item() == 0.0
    net.eval()
    assert net(batch).aux_loss.item() == 0.0
    torch.testing.assert_close(out.aux_loss, arch["l2"] * 0.5 * (_user(net, batch).square().sum()
                                                                + target.square().sum()))


def _user(net, batch) -> torch.Tensor:
    """ATRank's user vector u, recomputed as its score does."""
    from sarn.models.atrank import N_GAP_BUCKETS, gap_buckets, one_hot

    net.train()
    target, history, mask = net.embed(batch)
    gaps = one_hot(gap_buckets(batch.timestamp, batch.hist_timestamp), N_GAP_BUCKETS, history.dtype)
    clicks = net.project(torch.cat([history, gaps], dim=-1)) * mask.unsqueeze(-1)
    encoded = net.history_block(clicks, clicks, mask)
    any_click = (mask.sum(dim=1) > 0).to(target.dtype)[:, None, None]
    return net.target_block(target.unsqueeze(1), encoded, mask, any_click).squeeze(1)


def test_protocol_effects_not_listed_for_a_dataset_leave_a_folder_that_says_so(stored_at_20, tmp_path):
    _raw, params, root = stored_at_20
    runner.train_effects(params, "default", "din", root / "processed", tmp_path / "din")
    assert json.loads((tmp_path / "din" / "effects.json").read_text())["run"] is False
    assert sorted(p.name for p in (tmp_path / "din").iterdir()) == ["effects.json"]


def test_protocol_effects_of_a_dataset_the_experiment_does_not_list_are_not_run(params_dict, tmp_path):
    """Switching to the paper's datasets needs no edit to protocol_effects: the embedded default's
    effects are left out, not refused, and the plan counts none of them."""
    params_dict["experiment"]["datasets"] = ["electronics"]
    params_dict["table3"]["datasets"] = ["electronics"]
    params_dict["figures"]["dataset"] = "electronics"
    params_dict["protocol_effects"]["datasets"] = ["default"]
    params = validate(params_dict)
    assert effects_datasets(params) == []
    assert not any(run.stage == "effects" for run in planned_runs(params))
    assert not any("protocol_effects" in name for name in runs_on(params, "electronics"))
    params_dict["experiment"]["datasets"] = ["default", "electronics"]
    params = validate(params_dict)
    assert effects_datasets(params) == ["default"]
    assert {run.dataset for run in planned_runs(params) if run.stage == "effects"} == {"default"}


def test_protocol_effects_train_each_choice_on_the_first_seeds(stored_at_20, tmp_path):
    raw, _, root = stored_at_20
    raw = json.loads(json.dumps(raw))
    raw["protocol_effects"].update(datasets=["default"], n_seeds=1, choices={
        "split_90_10": {"training": {"train_on": "train+valid"}},
        "lr_decay": {"training": {"lr_schedule": {"kind": "per_epoch", "factor": 0.5}}},
        "sarn_only": {"models": ["sarn"], "training": {"batch_order": "shuffled"}}})
    params = validate(raw)
    runner.train_effects(params, "default", "din", root / "processed", tmp_path / "din")
    manifest = json.loads((tmp_path / "din" / "effects.json").read_text())
    assert manifest["run"] is True and set(manifest["choices"]) == {"split_90_10", "lr_decay"}
    assert sorted(path.name for path in (tmp_path / "din").iterdir() if path.is_dir()) == ["lr_decay", "split_90_10"]
    merged = pd.read_csv(tmp_path / "din" / "split_90_10" / "runs.csv")
    assert merged.seed.tolist() == [0] and merged.selection.tolist() == ["last"]
    assert merged.valid_auc.isna().all() and merged.test_auc.notna().all()
    run = json.loads((tmp_path / "din" / "lr_decay" / "run.json").read_text())
    assert run["training"]["lr_schedule"] == {"kind": "per_epoch", "factor": 0.5}
    train = np.load(root / "processed" / "train.npz")["label"].size
    valid = np.load(root / "processed" / "valid.npz")["label"].size
    steps = pd.read_csv(tmp_path / "din" / "split_90_10" / "history.csv").step.max()
    assert steps == 2 * math.ceil((train + valid) / 128)  # the validation users trained too


def test_a_params_file_without_the_statistics_sample_says_what_to_add(params_dict) -> None:
    del params_dict["datasets"]["default"]["training"]["statistics_samples"]
    with pytest.raises(ConfigError, match=r"datasets\.default\.training: .*statistics_samples is missing: the "
                                          r"training samples batch norm and Dice measure"):
        validate(params_dict)
