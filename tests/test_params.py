"""params.yaml validation: every problem names its key path and what was expected."""

from __future__ import annotations

import copy

import pytest
import yaml

from sarn.checks import check_models
from sarn.errors import ConfigError
from sarn.params import load, read_raw, validate
from tests.conftest import ROOT


def test_repository_params_are_valid() -> None:
    params = load(ROOT / "params.yaml")
    assert params.experiment.models[:8] == ["wide_deep", "pnn", "gru", "atrank", "din", "dien", "rn", "sarn"]
    assert params.models["sarn"].architecture["relation_dim"] == 36


def _error(raw: dict) -> str:
    """The message of what ``python -m sarn check`` refuses in ``raw``."""
    with pytest.raises(ConfigError) as info:
        check_models(validate(raw))
    return str(info.value)


def test_unknown_key_is_named(params_dict: dict) -> None:
    params_dict["models"]["din"]["training"]["learning_rate"] = 0.1
    assert "models.din.training.learning_rate: unknown key" in _error(params_dict)


def test_missing_key_is_named(params_dict: dict) -> None:
    del params_dict["datasets"]["default"]["protocol"]["max_len"]
    assert "datasets.default.protocol.max_len: missing key" in _error(params_dict)


@pytest.mark.parametrize("value", ["0.01", None, [0.01]])
def test_wrong_type_is_named(params_dict: dict, value: object) -> None:
    params_dict["models"]["sarn"]["training"]["lr"] = value
    message = _error(params_dict)
    assert "models.sarn.training.lr" in message
    assert repr(value) in message


def test_integer_where_float_expected_is_accepted(params_dict: dict) -> None:
    params_dict["models"]["sarn"]["training"]["lr"] = 1
    assert validate(params_dict).models["sarn"].training.lr == 1


def test_architecture_is_checked_against_the_model_signature(params_dict: dict) -> None:
    arch = params_dict["models"]["sarn"]["architecture"]
    arch["relation_dim"] = 36.5
    arch["heads"] = [50, 10]
    del arch["alpha"]
    message = _error(params_dict)
    assert "models.sarn.architecture.relation_dim" in message
    assert "models.sarn.architecture.heads: unknown key" in message
    assert "models.sarn.architecture.alpha: missing key" in message


def test_choice_values_are_checked(params_dict: dict) -> None:
    params_dict["models"]["din"]["architecture"]["dice_eval"] = "moving"
    assert "models.din.architecture.dice_eval" in _error(params_dict)
    params_dict["models"]["din"]["architecture"]["dice_eval"] = "running"
    params_dict["runtime"]["precision"] = "fp16"
    message = _error(params_dict)
    assert "runtime.precision" in message and "'fp32', 'tf32' or 'bf16'" in message
    params_dict["runtime"]["precision"] = "fp32"
    params_dict["runtime"]["compile"] = False  # what YAML makes of an unquoted `off`
    message = _error(params_dict)
    assert "runtime.compile" in message and "'eager', 'default' or 'reduce-overhead' (got False)" in message


@pytest.mark.parametrize(("value", "expected"), [(0, "greater than 0"), (2.0, "a valid integer"),
                                               ("2", "a valid integer"), (None, "a valid integer")])
def test_a_wrong_parallel_seeds_is_named(params_dict: dict, value: object, expected: str) -> None:
    params_dict["runtime"]["parallel_seeds"] = value
    message = _error(params_dict)
    assert f"runtime.parallel_seeds: Input should be {expected} (got {value!r})" in message
    del params_dict["runtime"]["parallel_seeds"]
    assert "runtime.parallel_seeds: missing key" in _error(params_dict)


def test_unknown_model_lists_known_ones(params_dict: dict) -> None:
    params_dict["models"]["transformer"] = copy.deepcopy(params_dict["models"]["din"])
    params_dict["models"]["transformer"]["model"] = "bert"
    message = _error(params_dict)
    assert "models.transformer.model: unknown model 'bert' (known: atrank, dien, din, gru, pnn, rn" in message


def test_experiment_must_reference_defined_entries(params_dict: dict) -> None:
    params_dict["experiment"]["datasets"] = ["default", "movielens"]
    params_dict["experiment"]["models"] = ["din", "transformer"]
    message = _error(params_dict)
    assert "experiment.datasets.1: 'movielens' is not a key of datasets" in message
    assert "experiment.models.1: 'transformer' is not a key of models" in message


def test_split_must_sum_to_one(params_dict: dict) -> None:
    params_dict["datasets"]["default"]["protocol"]["split"]["train"] = 0.7
    assert "datasets.default.protocol.split" in _error(params_dict)


def test_generator_consistency(params_dict: dict) -> None:
    params_dict["datasets"]["default"]["source"]["generator"]["interests_per_user"] = 99
    assert "interests_per_user must not exceed n_interests" in _error(params_dict)


def test_missing_file_and_bad_yaml(tmp_path) -> None:
    with pytest.raises(ConfigError, match="parameters file not found"):
        load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiment: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load(listy)


# PyYAML would keep the last value of each; DVC refuses such a file.
@pytest.mark.parametrize(("text", "named"), [
    ("experiment:\n  n_seeds: 10\nruntime:\n  threads: 2\nexperiment:\n  n_seeds: 3\n",
     "experiment is given twice (lines 1 and 5)"),
    # din's lr is the same key in another mapping: only sarn's second lr is refused
    (("models:\n  din:\n    training:\n      lr: 0.01\n  sarn:\n    training:\n      lr: 0.01\n"
     "      epochs: 2\n      lr: 0.1\n"), "models.sarn.training.lr is given twice (lines 7 and 9)"),
], ids=["top level", "nested"])
def test_a_key_given_twice_is_refused_with_its_path_and_both_lines(tmp_path, text: str, named: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_raw(path)
    assert str(info.value) == f"{path}: {named}"


def test_architecture_sizes_weights_and_constructor_constraints(params_dict: dict) -> None:
    params_dict["models"]["din"]["architecture"]["head"] = [200, -5]
    params_dict["models"]["sarn"]["architecture"]["beta"] = -1.0
    params_dict["models"]["atrank"]["architecture"]["heads"] = 7
    message = _error(params_dict)
    assert "models.din.architecture.head: sizes must be positive (got [200, -5])" in message
    assert "models.sarn.architecture.beta: must not be negative" in message
    assert "models.atrank.architecture: the model size 128 is not divisible by 7 heads" in message


def test_infinite_values_and_repeated_lengths_are_refused(params_dict: dict) -> None:
    params_dict["models"]["din"]["training"]["lr"] = float("inf")
    params_dict["table3"]["lengths"] = [5, 5]
    message = _error(params_dict)
    assert "models.din.training.lr: Input should be a finite number (got inf)" in message
    assert "table3: Value error, lengths must not repeat" in message


def test_repeated_run_names_are_refused(params_dict: dict) -> None:
    params_dict["experiment"]["models"] = ["din", "din"]
    assert "experiment.models.1: 'din' is listed twice" in _error(params_dict)


def test_the_sweep_and_figures_must_use_data_the_pipeline_builds(params_dict: dict) -> None:
    """DVC's raw and preprocess stages build experiment.datasets only: switching that list alone to
    the paper's datasets would leave the sweep and the figures on data no stage makes."""
    params_dict["experiment"]["datasets"] = ["electronics", "books", "taobao"]
    message = _error(params_dict)
    assert "table3.datasets.0: 'default' is not in experiment.datasets (electronics, books, taobao)" in message
    assert "figures.dataset: 'default' is not in experiment.datasets" in message
    params_dict["table3"]["datasets"] = ["taobao", "books"]
    params_dict["table3"]["lengths"] = [10, 20, 30]
    params_dict["figures"]["dataset"] = "electronics"
    params_dict["figures"]["categories"] = ["Tablets", "Laptops", "Headphones", "Keyboards"]
    check_models(validate(params_dict))  # the switch of docs/reproducing.md


def test_sweep_lengths_must_fit_the_stored_histories(params_dict: dict) -> None:
    params_dict["table3"]["lengths"] = [5, 50]
    assert "table3.lengths.1: 50 is longer than the histories stored" in _error(params_dict)


def test_split_by_time_and_sources_are_checked_by_kind(params_dict: dict) -> None:
    books = params_dict["datasets"]["books"]
    books["protocol"]["split"] = {"by": "time", "cutoff": 1389225600, "valid": 0.1}
    validate(params_dict)  # the documented variant is valid
    books["protocol"]["split"] = {"by": "time", "cutoff": "1389225600", "valid": 0.1}
    assert "datasets.books.protocol.split.time.cutoff" in _error(params_dict)
    books["protocol"]["split"] = {"by": "season"}
    assert "datasets.books.protocol.split" in _error(params_dict)
    books["protocol"]["split"] = {"by": "user", "train": 0.8, "valid": 0.1, "test": 0.1}
    books["source"]["reviews"]["sha256"] = "abc"
    assert "datasets.books.source.amazon.reviews.sha256" in _error(params_dict)
    books["source"]["reviews"]["sha256"] = None
    books["source"]["kind"] = "movielens"
    assert "datasets.books.source" in _error(params_dict)


def test_negative_drop_only_for_logs(params_dict: dict) -> None:
    params_dict["datasets"]["taobao"]["protocol"]["negative_drop"] = 0.99
    assert "negative_drop applies to logs with labels" in _error(params_dict)
    params_dict["datasets"]["taobao"]["protocol"]["negative_drop"] = 1.0
    assert "datasets.taobao.protocol.negative_drop" in _error(params_dict)


def test_taobao_window_must_be_ordered(params_dict: dict) -> None:
    params_dict["datasets"]["taobao"]["source"]["window"] = [1512316799, 1511539200]
    assert "window must be [first, last]" in _error(params_dict)


def test_a_figure_run_missing_from_the_experiment_says_what_to_add(params_dict: dict) -> None:
    params_dict["experiment"]["models"] = ["din", "sarn"]
    message = _error(params_dict)
    assert ("figures.without_positional: 'sarn_no_pos' is not a run of experiment.models: add it there "
            "(Fig. 4 draws its training curves beside figures.with_positional's") in message
