"""``python -m sarn plan``: the counts it prints are those of the configuration, and those a run makes."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from sarn.data.preprocess import preprocess
from sarn.data.sources import make_raw
from sarn.params import validate
from sarn.train import runner
from tests.conftest import ROOT, tiny_params

ROW = re.compile(r"^(train|sweep|effects|snapshots) +(\S+) +(.+?) +(\d+) +([\d,]+) +([\d,]+)(.*)$",
                 re.MULTILINE)


def _with_effects() -> dict:
    """The tiny configuration with the protocol effects on: their 90/10 split trains on more samples
    and evaluates fewer."""
    raw = tiny_params()
    raw["protocol_effects"].update(datasets=["default"], models=["din", "sarn"])
    return raw


def _plan(raw: dict, tmp_path: Path, processed: Path, probe_steps: int) -> tuple[str, dict[tuple, tuple]]:
    """The printed plan, and its rows: (stage, dataset, run) → (seeds, steps, evaluations, the rest)."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    proc = subprocess.run([sys.executable, "-m", "sarn", "--params", str(tmp_path / "params.yaml"), "plan",
                           "--processed", str(processed), "--probe-steps", str(probe_steps)],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {(stage, dataset, run): (int(seeds), _number(steps), _number(evals), rest)
            for stage, dataset, run, seeds, steps, evals, rest in ROW.findall(proc.stdout)}
    return proc.stdout, rows


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def _evaluations(epochs: int, steps: int, eval_every: int | None) -> int:
    """Evaluations of a run, counted step by step as the loop decides them."""
    mid = sum(1 for total in range(1, epochs * steps + 1)
              if eval_every and total % eval_every == 0 and total % steps != 0)
    return epochs + mid


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> Path:
    params = validate(_with_effects())
    root = tmp_path_factory.mktemp("plan")
    make_raw("default", params.datasets["default"], root / "raw")
    preprocess("default", params.datasets["default"], root / "raw", root / "processed" / "default")
    return root / "processed"


def test_the_plan_counts_the_configured_runs_steps_and_evaluations(processed, tmp_path) -> None:
    raw = _with_effects()
    out, rows = _plan(raw, tmp_path, processed, probe_steps=0)
    stats = json.loads((processed / "default" / "stats.json").read_text())
    eval_samples = raw["datasets"]["default"]["training"]["eval_every_samples"]
    expected = {}
    for stage, runs, seeds, choices in [
        ("train", raw["experiment"]["models"], raw["experiment"]["n_seeds"], [""]),
        ("sweep", raw["table3"]["models"], raw["table3"]["n_seeds"],
         [f"length {length}" for length in raw["table3"]["lengths"]]),
        ("effects", raw["protocol_effects"]["models"], raw["protocol_effects"]["n_seeds"],
         list(raw["protocol_effects"]["choices"])),
        ("snapshots", [raw["figures"]["model"]], 1, [""]),
    ]:
        for run in runs:
            for choice in choices:
                if stage == "effects" and run not in raw["protocol_effects"]["choices"][choice].get("models", [run]):
                    continue
                training = {**raw["models"][run]["training"],
                            **(raw["protocol_effects"]["choices"][choice].get("training", {}) if stage == "effects"
                               else {})}
                samples = stats["train_samples"] + (stats["valid_samples"] if choice == "split_90_10" else 0)
                steps = math.ceil(samples / training["batch_size"])
                epochs = training["epochs"]
                eval_every = max(1, round(eval_samples / training["batch_size"]))  # the nearest whole step
                expected[(stage, "default", f"{run} ({choice})" if choice else run)] = (
                    seeds, seeds * epochs * steps, seeds * _evaluations(epochs, steps, eval_every))
    assert {key: value[:3] for key, value in rows.items()} == expected
    assert len(expected) == 3 + 2 + 16 + 1  # seven choices on DIN and SARN, one more on each
    total = sum(seeds for seeds, _, _ in expected.values())
    assert f"total: {len(expected)} run folders, {total} runs (seeds), " in out
    assert "NVIDIA H100 80GB HBM3: din 7.8 ms, sarn 21.9 ms a step" in out
    assert "not estimated: " in out and "sarn_no_pos (no step time measured on this GPU)" in out


def test_the_planned_steps_and_evaluations_are_those_a_run_makes(processed, tmp_path) -> None:
    """DIN trained as Table II trains it, and with the 90/10 split: one history row a seed's
    evaluation, the last at the planned steps."""
    raw = _with_effects()
    _, rows = _plan(raw, tmp_path, processed, probe_steps=0)
    for choice, train_on in (("", "train"), ("split_90_10", "train+valid")):
        raw["models"]["din"]["training"]["train_on"] = train_on
        seeds, steps, evaluations, _ = rows[("effects", "default", "din (split_90_10)") if choice
                                            else ("train", "default", "din")]
        folder = tmp_path / f"din{choice}"
        runner.train_model(validate(raw), "default", "din", processed / "default", folder, seeds)
        history = pd.read_csv(folder / "history.csv")
        assert len(history) == evaluations
        assert (history.groupby("seed")["step"].max() == steps // seeds).all()


def test_a_dataset_not_preprocessed_is_planned_as_it_would_be(processed, tmp_path) -> None:
    """The embedded default generated in memory counts as its processed folder does, and the probe
    times every run; a published dataset is assumed from the paper's Table I."""
    raw = _with_effects()
    _, counted = _plan(raw, tmp_path, processed, probe_steps=0)
    out, timed = _plan(raw, tmp_path, tmp_path / "nothing", probe_steps=1)
    assert "generated as params.yaml generates it (not preprocessed yet)" in out
    assert {key: row[:3] for key, row in timed.items()} == {key: row[:3] for key, row in counted.items()}
    for *_, rest in timed.values():
        ms, spread, evaluating = re.fullmatch(r" +([\d.]+) ±([ \d]+)% +(\d+)% +\d+ s", rest).groups()
        assert float(ms) > 0 and 0 <= int(spread) and 0 < int(evaluating) < 100
    assert re.search(r"here: \d+ s ± \d+% one seed after another", out)

    raw["experiment"]["datasets"].append("electronics")
    out, rows = _plan(raw, tmp_path, tmp_path / "nothing", probe_steps=0)
    assert "electronics: " in out and "assumed from the paper's Table I (192,403 users, 63,001 items" in out
    seeds, steps, _, _ = rows[("train", "electronics", "din")]
    epochs = raw["models"]["din"]["training"]["epochs"]
    # Electronics: 192,403 users, 80% of them train, a positive and a negative sample each.
    assert abs(steps / (seeds * epochs * math.ceil(0.8 * 2 * 192_403 / 128)) - 1) < 0.02


def test_plan_refuses_a_negative_probe(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "sarn", "plan", "--probe-steps", "-1"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "--probe-steps: expected 0 or more, got -1" in proc.stderr


def test_each_protocol_effects_choice_is_probed_as_itself(processed, monkeypatch, capsys) -> None:
    """A choice that changes the model (here Dice on the batch's statistics) is timed with its own
    settings, not its run's; runs whose settings differ in no step's cost (a learning-rate
    schedule) are probed once."""
    from sarn.plan import bill
    from sarn.plan.probe import Probe, Timing

    probed: list[tuple[str, int]] = []

    def recorded(spec, shape, max_len, *_args) -> Probe:
        probed.append((spec.model_dump_json(), max_len))
        return Probe(Timing(0.01, 0.0), Timing(0.001, 0.0), Timing(0.0005, 0.0))

    monkeypatch.setattr(bill, "probe", recorded)
    params = validate(_with_effects())
    bill.print_bill(params, processed, probe_steps=1)
    runs = bill.planned_runs(params)
    assert len(probed) == len(set(probed)) == len({bill.probe_key(run) for run in runs})
    batch_dice = next(run for run in runs if run.label == "din (batch_dice)")
    assert batch_dice.spec.architecture["dice_eval"] == "batch" != params.models["din"].architecture["dice_eval"]
    assert (batch_dice.spec.model_dump_json(), batch_dice.max_len) in probed
    by_label = {(run.stage, run.label): run for run in runs}
    assert bill.probe_key(by_label[("effects", "din (lr_decay)")]) == bill.probe_key(by_label[("train", "din")])
    assert "din (batch_dice)" in capsys.readouterr().out


def test_the_probe_evaluates_a_batch_dependent_run_in_the_reference_codes_batches(processed, monkeypatch) -> None:
    """A run whose prediction depends on its batch is evaluated in its training batches, sorted
    within the reference iterator's buffers, as the training loop evaluates it; any other in
    ``runtime.eval_batch_size``."""
    from sarn.plan import probe as probe_module
    from sarn.plan.shapes import dataset_shape

    params = validate(_with_effects())
    shape = dataset_shape("default", params.datasets["default"], processed)
    real_predict = probe_module.predict
    for dice_eval, expected in [("batch", lambda t: (t.batch_size, t.batch_size * t.length_sort_chunk)),
                                ("running", lambda t: (96, None))]:
        spec = params.models["din"].model_copy(deep=True)
        spec.architecture["dice_eval"] = dice_eval
        calls: list[tuple[int, int | None]] = []

        def recorded(net, data, batch_size, precision, reference_chunk=None, calls=calls):
            calls.append((batch_size, reference_chunk))
            return real_predict(net, data, batch_size, precision, reference_chunk)

        monkeypatch.setattr(probe_module, "predict", recorded)
        probe_module.probe(spec, shape, 10, 1, 96, torch.device("cpu"), "fp32")
        assert calls and set(calls) == {expected(spec.training)}


def test_an_evaluation_costs_its_samples_and_the_measurement_of_its_statistics() -> None:
    from sarn.plan import bill
    from sarn.plan.probe import Probe, Timing

    done = bill.Work(steps=100, evaluations=3, evaluated=50, measured=20)
    timing = Probe(Timing(0.01, 0.1), Timing(0.001, 0.2), Timing(0.025, 0.4))
    seconds, uncertain = done.seconds(timing)
    assert seconds == pytest.approx(100 * 0.01 + 3 * 50 * 0.001 + 3 * 20 * 0.025)
    assert done.evaluating_seconds(timing) == pytest.approx(3 * 50 * 0.001 + 3 * 20 * 0.025)
    assert uncertain == pytest.approx(1.0 * 0.1 + 0.15 * 0.2 + 1.5 * 0.4)


def test_the_bill_measures_the_statistics_on_the_datasets_sample_or_the_whole_split(processed) -> None:
    from sarn.plan import bill
    from sarn.plan.shapes import dataset_shape

    raw = _with_effects()
    for asked in (64, 10**9):
        raw["datasets"]["default"]["training"]["statistics_samples"] = asked
        params = validate(raw)
        shape = dataset_shape("default", params.datasets["default"], processed)
        planned = {(run.stage, run.label): run for run in bill.planned_runs(params)}
        assert bill.work(params, planned[("train", "din")], shape).measured == min(asked, shape.sizes["train"])
        assert (bill.work(params, planned[("effects", "din (split_90_10)")], shape).measured
                == min(asked, shape.sizes["train"] + shape.sizes["valid"]))
