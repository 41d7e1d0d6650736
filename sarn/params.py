"""Read and validate params.yaml, the single source of every hyperparameter.

Validation is strict: an unknown key, a missing key or a value of the wrong type
stops with a message that names the key path (``models.sarn.training.lr``) and what
was expected. Nothing has a silent default here; defaults live in params.yaml.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sarn.errors import ConfigError

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class _Strict(BaseModel):
    """No unknown keys, no type coercion (a quoted "0.01" is not a float)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class GeneratorSpec(_Strict):
    """The embedded click-log generator (see sarn.data.synthetic for the story)."""

    n_users: PositiveInt
    n_items: PositiveInt
    n_categories: PositiveInt
    n_interests: PositiveInt
    interests_per_user: PositiveInt
    mean_clicks: PositiveFloat
    min_clicks: PositiveInt
    max_clicks: PositiveInt
    popularity_exponent: Annotated[float, Field(ge=0)]
    start_time: NonNegativeInt
    seed: int

    @model_validator(mode="after")
    def _consistent(self) -> GeneratorSpec:
        if self.interests_per_user > self.n_interests:
            raise ValueError("interests_per_user must not exceed n_interests")
        if self.n_categories < self.n_interests or self.n_items < self.n_categories:
            raise ValueError("need n_items >= n_categories >= n_interests")
        if not self.min_clicks <= self.mean_clicks <= self.max_clicks:
            raise ValueError("need min_clicks <= mean_clicks <= max_clicks")
        return self


class UserSplitSpec(_Strict):
    """Split by user: each user's samples go to one part (the paper: about 80% train)."""

    by: Literal["user"]
    train: Fraction
    valid: Fraction
    test: Fraction

    @model_validator(mode="after")
    def _sums_to_one(self) -> UserSplitSpec:
        total = self.train + self.valid + self.test
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"train + valid + test must be 1, got {total}")
        if min(self.train, self.valid, self.test) <= 0:
            raise ValueError("each part must get a positive share of users")
        return self


class TimeSplitSpec(_Strict):
    """Split by time: samples after ``cutoff`` (seconds) are the test set (the SARN code's
    time-split script compares with ``>``); the users
    of earlier samples are split into train and validation by the ``valid`` share."""

    by: Literal["time"]
    cutoff: NonNegativeInt
    valid: Annotated[float, Field(gt=0, lt=1)]


class ProtocolSpec(_Strict):
    """How samples are built from a raw log (data.md: the DIEN protocol as SARN uses it)."""

    min_history: PositiveInt
    max_len: PositiveInt
    split: Annotated[UserSplitSpec | TimeSplitSpec, Field(discriminator="by")]
    # Logs with a label column only (the paper's online-ad data): share of training
    # negatives dropped at random (the paper: over 99%). Must be 0 for click-only logs.
    negative_drop: Annotated[float, Field(ge=0, lt=1)]
    seed: int


Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class RemoteFileSpec(_Strict):
    """A published file: its name under data/download/, where to get it (tried in order),
    and its SHA-256 (null: recorded in data/download/SHA256SUMS at first download and
    enforced from then on)."""

    file: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+$")]
    urls: Annotated[list[str], Field(min_length=1)]
    sha256: Sha256 | None


class CoreSpec(_Strict):
    """k-core filter, repeated until stable: every user and every item keeps at least
    this many interactions (1 keeps everything)."""

    users: PositiveInt
    items: PositiveInt


class SyntheticSource(_Strict):
    kind: Literal["synthetic"]
    generator: GeneratorSpec


class AmazonSource(_Strict):
    """Amazon 2014 review file and its metadata (categories[0][-1] is an item's category)."""

    kind: Literal["amazon"]
    reviews: RemoteFileSpec
    meta: RemoteFileSpec
    core: CoreSpec


class TaobaoSource(_Strict):
    """Taobao UserBehavior: the zipped CSV, the behaviours kept and the time window."""

    kind: Literal["taobao"]
    archive: RemoteFileSpec
    behaviors: Annotated[list[Literal["pv", "buy", "cart", "fav"]], Field(min_length=1)]
    window: Annotated[list[NonNegativeInt], Field(min_length=2, max_length=2)]  # [first, last] second
    core: CoreSpec

    @model_validator(mode="after")
    def _ordered(self) -> TaobaoSource:
        if self.window[0] > self.window[1]:
            raise ValueError("window must be [first, last] with first <= last")
        return self


class LogSource(_Strict):
    """A user's own log: CSV or parquet with user_id, item_id, category_id, timestamp and
    optionally label (0/1 impressions) and context (one categorical feature)."""

    kind: Literal["log"]
    path: str
    core: CoreSpec


SourceSpec = Annotated[SyntheticSource | AmazonSource | TaobaoSource | LogSource, Field(discriminator="kind")]


class DatasetTrainingSpec(_Strict):
    """How every run on one dataset is cut and evaluated (the train, sweep and snapshot stages).

    ``max_len``: Table II's history length, the latest clicks kept (the paper: 30 on Amazon, 50
    on Taobao, where its Table II equals its Table III at that length); ``protocol.max_len`` is
    how many preprocessing stores, the longest Table III may sweep. ``eval_every_samples``:
    training samples between evaluations besides each epoch's end (the SARN code: 100 iterations
    of 128 = 12,800; null: epoch ends only). It is per dataset because an epoch's length depends
    on the dataset's size, and counted in samples so that every model is evaluated as often over
    the same data whatever its batch size (ATRank trains in batches of 32).
    ``statistics_samples``: training samples batch norm and Dice measure the statistics they
    evaluate with on, before every evaluation (:func:`sarn.train.loop.calibrate`; all of them
    where the training split is smaller): one buffer of the reference iterator (2,560) on the
    paper's datasets.
    """

    max_len: PositiveInt
    eval_every_samples: PositiveInt | None
    statistics_samples: PositiveInt

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: object) -> object:
        """A params.yaml written for an earlier version gave the interval in steps, and had no
        statistics sample."""
        if isinstance(data, dict) and "eval_every" in data:
            raise ValueError("eval_every (optimizer steps) is now eval_every_samples (training samples, the "
                             "same for every model): multiply by the batch size, e.g. 100 steps of 128 = 12800")
        if isinstance(data, dict) and "statistics_samples" not in data:
            raise ValueError("statistics_samples is missing: the training samples batch norm and Dice measure "
                             "their evaluation statistics on before each evaluation (2560 on the paper's "
                             "datasets, one buffer of the reference iterator; docs/parameters.md)")
        return data

    def eval_every(self, batch_size: int) -> int | None:
        """Optimizer steps between evaluations for a run of ``batch_size``: the nearest whole number."""
        if self.eval_every_samples is None:
            return None
        return max(1, round(self.eval_every_samples / batch_size))


class DatasetSpec(_Strict):
    """Where the raw log comes from (the raw stage), how samples are built from it (the
    preprocess stage) and how runs on it are cut and evaluated (the training stages); each
    stage depends on its own key."""

    source: SourceSpec
    protocol: ProtocolSpec
    training: DatasetTrainingSpec

    @model_validator(mode="after")
    def _consistent(self) -> DatasetSpec:
        if self.protocol.negative_drop and self.source.kind != "log":
            raise ValueError("protocol.negative_drop applies to logs with labels; it must be 0 here")
        return self


class ConstantRate(_Strict):
    """The learning rate stays ``training.lr`` (the SARN code)."""

    kind: Literal["constant"]


class EpochDecay(_Strict):
    """The learning rate is multiplied by ``factor`` after every epoch (the DIEN code: 0.5)."""

    kind: Literal["per_epoch"]
    factor: Annotated[float, Field(gt=0, le=1)]


# Where the negative item of every history position (the auxiliary losses of DIEN and SARN)
# comes from: drawn once at preprocessing, or drawn anew for every training epoch from the same
# popularity-weighted distribution (the reference data iterator redraws them on every pass).
AuxNegatives = Literal["fixed", "per_epoch"]

# longest_first: each chunk's batches in order of history length, longest first, as the reference
# data iterator pops them; shuffled: the epoch's batches in random order.
BatchOrder = Literal["longest_first", "shuffled"]

# train: fit on the training users, validation chooses. train+valid: the validation users join
# training (the SARN code's 90/10 split has no validation set), and the last evaluation is reported.
TrainOn = Literal["train", "train+valid"]


class TrainingSpec(_Strict):
    optimizer: Literal["adam", "sgd"]
    lr: PositiveFloat
    lr_schedule: Annotated[ConstantRate | EpochDecay, Field(discriminator="kind")]
    batch_size: PositiveInt
    epochs: PositiveInt
    # Batches per chunk sorted by history length (the reference iterator: 20); 1 gives
    # plain shuffled batches. See DeviceSamples.training_batches.
    length_sort_chunk: PositiveInt
    batch_order: BatchOrder
    # Weight of the binary cross-entropy click loss. The DIEN/SARN code averages the log
    # loss over the (B, 2) one-hot matrix, i.e. 0.5; ATRank's code uses the plain BCE, 1.
    click_loss_weight: PositiveFloat
    grad_clip_norm: PositiveFloat | None  # null: no clipping
    aux_negatives: AuxNegatives
    train_on: TrainOn


class ModelSpec(_Strict):
    """One configured run name: the registered ``model``, its constructor's ``architecture``
    keywords and the ``training`` settings. Several names may share a model (SARN variants)."""

    model: str
    architecture: dict[str, Any]
    training: TrainingSpec


class ExperimentSpec(_Strict):
    datasets: Annotated[list[str], Field(min_length=1)]
    models: Annotated[list[str], Field(min_length=1)]
    n_seeds: PositiveInt
    seed: int


class ChoiceSpec(_Strict):
    """One reference-code choice: the keys it changes in a model's ``architecture`` and/or
    ``training``, measured on ``models`` (default: every model of ``protocol_effects.models``;
    a choice of one layer, such as the GRU's reset gate, names the models that have it)."""

    models: Annotated[list[str], Field(min_length=1)] | None = None
    architecture: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _changes_something(self) -> ChoiceSpec:
        if not self.changes():
            raise ValueError("a choice changes at least one architecture or training key")
        return self

    def changes(self) -> dict[str, dict[str, Any]]:
        """``{section: {key: value}}`` of the sections the choice changes."""
        return {section: values for section in ("architecture", "training") if (values := getattr(self, section))}


class ProtocolEffectsSpec(_Strict):
    """How far each reference-code choice moves Table II: every run of ``models`` trained again
    with one ``choices`` entry applied (those the choice is measured on), on the first
    ``n_seeds`` seeds of Table II, whose runs are the baseline. ``datasets``: where to measure."""

    datasets: list[str]
    models: Annotated[list[str], Field(min_length=1)]
    n_seeds: PositiveInt
    choices: Annotated[dict[str, ChoiceSpec], Field(min_length=1)]

    def choices_for(self, model: str) -> dict[str, ChoiceSpec]:
        """The choices measured on ``model``, in the order params.yaml lists them."""
        return {name: choice for name, choice in self.choices.items()
                if choice.models is None or model in choice.models}

    def runs(self) -> Iterator[tuple[str, str, ChoiceSpec]]:
        """(model, choice name, choice) of every protocol-effects run, model by model."""
        for model in self.models:
            for name, choice in self.choices_for(model).items():
                yield model, name, choice


class SweepSpec(_Strict):
    """Table III: every (dataset, model, history length) trained ``n_seeds`` times."""

    datasets: Annotated[list[str], Field(min_length=1)]
    models: Annotated[list[str], Field(min_length=1)]
    lengths: Annotated[list[PositiveInt], Field(min_length=1)]
    n_seeds: PositiveInt

    @model_validator(mode="after")
    def _distinct_lengths(self) -> SweepSpec:
        if len(set(self.lengths)) != len(self.lengths):
            raise ValueError("lengths must not repeat")
        return self


class FiguresSpec(_Strict):
    """What Figs. 4 to 6 show (the data behind them); plotting style lives in ``plots``."""

    with_positional: str  # Fig. 4: the run with the relative positional encoding module
    without_positional: str  # Fig. 4: the same model with alpha = 0
    dataset: str  # Figs. 5 and 6
    model: str  # a SARN run whose relations and attention are drawn
    snapshots: Annotated[list[Fraction], Field(min_length=1)]
    categories: Annotated[list[str], Field(min_length=1)]  # raw category ids for Fig. 5a
    items_per_category: PositiveInt
    user: str | None  # raw user id for Figs. 5b and 6; null: first test user with min_history
    min_history: PositiveInt

    @model_validator(mode="after")
    def _increasing(self) -> FiguresSpec:
        if any(b <= a for a, b in zip(self.snapshots, self.snapshots[1:])):
            raise ValueError("snapshots must be increasing fractions of training")
        return self


class PlotSpec(_Strict):
    """Style of one figure; changing it reruns only that figure's notebook."""

    palette: str
    dpi: PositiveInt
    width: PositiveFloat  # inches
    height: PositiveFloat


class PlotsSpec(_Strict):
    fig4: PlotSpec
    fig5: PlotSpec
    fig6: PlotSpec


# fp32: float32 throughout; tf32: CUDA matmuls and convolutions in TensorFloat-32;
# bf16: the forward pass under CUDA autocast to bfloat16 (and TF32 for what stays float32).
# The CPU always computes in float32.
Precision = Literal["fp32", "tf32", "bf16"]

# eager: no compiler; default / reduce-overhead: torch.compile's modes (reduce-overhead
# adds CUDA graphs, on CUDA only). See sarn.train.loop.compile_model.
CompileMode = Literal["eager", "default", "reduce-overhead"]


class RuntimeSpec(_Strict):
    """Where and how the training stages compute. ``threads``: torch's CPU threads in each
    training process (it changes the last bits of CPU results, so it is never derived from the
    machine); ``parallel_seeds``: how many seeds of a stage train at once, each in its own
    process (on CUDA all on the stage's device), which changes no result."""

    device: Literal["auto", "cpu", "cuda"]
    threads: PositiveInt
    parallel_seeds: PositiveInt
    eval_batch_size: PositiveInt
    precision: Precision
    compile: CompileMode

    def processes(self, n_seeds: int) -> int:
        """Processes a stage of ``n_seeds`` seeds trains in at once."""
        return min(self.parallel_seeds, n_seeds)

    def stage_threads(self, n_seeds: int) -> int:
        """Threads a stage of ``n_seeds`` seeds runs at once, the cores it asks for: its Snakemake
        ``threads:``, a SLURM job's CPUs."""
        return self.processes(n_seeds) * self.threads


class Params(_Strict):
    experiment: ExperimentSpec
    table3: SweepSpec
    protocol_effects: ProtocolEffectsSpec
    figures: FiguresSpec
    plots: PlotsSpec
    runtime: RuntimeSpec
    datasets: dict[str, DatasetSpec]
    models: dict[str, ModelSpec]


def format_error(source: str, err: ValidationError) -> str:
    """One line a problem: the key path and what was expected."""
    lines = [f"{source}: invalid parameters"]
    for item in err.errors():
        path = ".".join(str(p) for p in item["loc"]) or "(top level)"
        got = item.get("input")
        if item["type"] == "missing":
            lines.append(f"  {path}: missing key ({item['msg']})")
        elif item["type"] == "extra_forbidden":
            lines.append(f"  {path}: unknown key")
        elif item["type"] == "value_error" and isinstance(got, dict):  # a check across keys: no dump
            lines.append(f"  {path}: {item['msg']}")
        else:
            lines.append(f"  {path}: {item['msg']} (got {got!r})")
    return "\n".join(lines)


def apply_override(spec: ModelSpec, choice: ChoiceSpec) -> ModelSpec:
    """``spec`` with the keys ``choice`` changes (in ``architecture`` and/or ``training``) replaced."""
    raw = spec.model_dump()
    for section, values in choice.changes().items():
        raw[section] = {**raw[section], **values}
    return ModelSpec.model_validate(raw)


def overridden_runs(params: Params) -> Iterator[tuple[str, str, ModelSpec]]:
    """(choice, run name, the run's settings with the choice applied) of every protocol-effects
    run whose choice names keys the run has (the others are reported by :func:`validate`)."""
    for name, choice_name, choice in params.protocol_effects.runs():
        spec = params.models.get(name)
        if spec is not None and not _unknown_override_keys(spec, choice):
            try:
                yield choice_name, name, apply_override(spec, choice)
            except ValidationError:
                continue  # reported by validate


def _unknown_override_keys(spec: ModelSpec, choice: ChoiceSpec) -> list[str]:
    known = {"architecture": set(spec.architecture), "training": set(TrainingSpec.model_fields)}
    return [f"{section}.{key}" for section, values in choice.changes().items() for key in values
            if key not in known[section]]


def _override_problems(params: Params, source: str) -> list[str]:
    """Each protocol_effects choice must name keys the runs it is measured on have and give valid
    training values (its architecture values are checked with the models', in sarn.checks)."""
    problems = []
    effects = params.protocol_effects
    for name, choice_name, choice in effects.runs():
        path = f"protocol_effects.choices.{choice_name}"
        spec = params.models.get(name)
        if spec is None:
            continue  # named by the list check
        unknown = _unknown_override_keys(spec, choice)
        hint = "" if choice.models else " (give the choice models: [...] of those that have it)"
        problems += [f"  {path}.{key}: unknown key for models.{name}{hint}" for key in unknown]
        if unknown:
            continue
        try:
            apply_override(spec, choice)
        except ValidationError as err:
            problems += [line.replace("  ", f"  {path}.", 1) + f" (applied to models.{name})"
                         for line in format_error(source, err).splitlines()[1:]]
    return problems


def effects_datasets(params: Params) -> list[str]:
    """The datasets whose protocol effects are trained: those of ``protocol_effects.datasets`` that
    ``experiment.datasets`` lists (Table II's runs there are the baseline)."""
    return [name for name in params.protocol_effects.datasets if name in params.experiment.datasets]


def _list_problems(params: Params) -> list[str]:
    """Names listed by the experiment sections must be defined, once each. A dataset of
    ``protocol_effects.datasets`` that ``experiment.datasets`` does not list is not run (so that
    switching the experiment to the paper's datasets stays one edit), and is not an error."""
    effects = params.protocol_effects
    lists = [(f"{section}.{kind}", getattr(getattr(params, section), kind), f"a key of {kind}", known)
             for section in ("experiment", "table3", "protocol_effects")
             for kind, known in (("datasets", params.datasets), ("models", params.models))
             if (section, kind) != ("protocol_effects", "models")]
    active = effects_datasets(params)
    if active:  # Table II's runs of these models are the baseline
        lists.append(("protocol_effects.models", effects.models, "in experiment.models", params.experiment.models))
    lists += [(f"protocol_effects.choices.{name}.models", choice.models, "in protocol_effects.models",
               effects.models) for name, choice in effects.choices.items() if choice.models]
    problems = []
    for path, names, where, known in lists:
        for i, name in enumerate(names):
            if name in names[:i]:
                problems.append(f"  {path}.{i}: {name!r} is listed twice")
            elif name not in known:
                problems.append(f"  {path}.{i}: {name!r} is not {where} (known: {', '.join(sorted(known))})")
    if active and effects.n_seeds > params.experiment.n_seeds:
        problems.append(f"  protocol_effects.n_seeds: {effects.n_seeds} is more than experiment.n_seeds "
                        f"({params.experiment.n_seeds}): Table II's runs are the baseline of each choice")
    return problems


# What each figures key's run is for, in the message that asks for it.
_FIGURE_RUNS = {
    "with_positional": "Fig. 4 draws its training curves beside figures.without_positional's",
    "without_positional": "Fig. 4 draws its training curves beside figures.with_positional's; "
                          "sarn_no_pos is SARN without the positional loss",
    "model": "Figs. 5 and 6 draw this SARN run's relations and attention",
}


def _check_cross_references(params: Params, source: str) -> None:
    problems = _list_problems(params)
    for dataset, spec in params.datasets.items():
        if spec.training.max_len > spec.protocol.max_len:
            problems.append(f"  datasets.{dataset}.training.max_len: {spec.training.max_len} is longer than the "
                            f"histories preprocessing stores (datasets.{dataset}.protocol.max_len = "
                            f"{spec.protocol.max_len})")
    for dataset in params.table3.datasets:
        stored = params.datasets[dataset].protocol.max_len if dataset in params.datasets else None
        for i, length in enumerate(params.table3.lengths):
            if stored is not None and length > stored:
                problems.append(
                    f"  table3.lengths.{i}: {length} is longer than the histories stored for "
                    f"{dataset!r} (datasets.{dataset}.protocol.max_len = {stored})"
                )
    problems += _override_problems(params, source)
    figures = params.figures
    if figures.dataset not in params.datasets:
        problems.append(f"  figures.dataset: {figures.dataset!r} is not a key of datasets")
    built = params.experiment.datasets
    for path, dataset in [*((f"table3.datasets.{i}", name) for i, name in enumerate(params.table3.datasets)),
                          ("figures.dataset", figures.dataset)]:
        if dataset in params.datasets and dataset not in built:
            problems.append(f"  {path}: {dataset!r} is not in experiment.datasets ({', '.join(built)}), whose "
                            "data alone the raw and preprocess stages build: list it there too, or switch "
                            "this key with experiment.datasets (docs/reproducing.md, \"The switch\")")
    for key in ("with_positional", "without_positional", "model"):
        name = getattr(figures, key)
        if name not in params.experiment.models:
            problems.append(f"  figures.{key}: {name!r} is not a run of experiment.models: add it there "
                            f"({_FIGURE_RUNS[key]}), or name a run of experiment.models here")
        elif key == "model" and params.models[name].model != "sarn":
            problems.append(f"  figures.model: {name!r} is a {params.models[name].model}, not a SARN run")
    if problems:
        raise ConfigError("\n".join([f"{source}: invalid parameters", *problems]))


def evaluation_problem(training: DatasetTrainingSpec, dataset: str, name: str, spec: TrainingSpec,
                       train_samples: int) -> str | None:
    """Why ``datasets.<dataset>.training.eval_every_samples`` does not fit an epoch of run ``name``
    (``train_samples`` training samples), or None: its steps must not exceed the epoch's."""
    steps, every = math.ceil(train_samples / spec.batch_size), training.eval_every(spec.batch_size)
    if every is not None and every > steps:
        return (f"datasets.{dataset}.training.eval_every_samples: {training.eval_every_samples} samples "
                f"({every} steps of {spec.batch_size}) is more than an epoch of models.{name} ({steps} steps over "
                f"{train_samples} training samples); use at most {steps * spec.batch_size}, or null to evaluate "
                "at epoch ends only")
    return None


def runs_on(params: Params, dataset: str) -> dict[str, TrainingSpec]:
    """Every run trained on ``dataset`` (Table II, Table III and the protocol effects), with its
    training settings, by the name the messages give it."""
    runs: dict[str, TrainingSpec] = {}
    if dataset in params.experiment.datasets:
        runs |= {name: params.models[name].training for name in params.experiment.models}
    if dataset in params.table3.datasets:
        runs |= {name: params.models[name].training for name in params.table3.models}
    if dataset in effects_datasets(params):
        runs |= {f"{name} with protocol_effects.choices.{choice_name}":
                 apply_override(params.models[name], choice).training
                 for name, choice_name, choice in params.protocol_effects.runs()}
    return runs


def validate(raw: Any, source: str = "params.yaml") -> Params:
    """Validate an already-parsed params mapping (Snakemake's ``config``, for instance): every
    key, type and reference between keys. The models' architectures are checked against the
    registered classes by :func:`sarn.checks.check_models`, which the stages that build models
    and ``python -m sarn check`` call: this module never imports a model (nor torch)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        params = Params.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_error(source, err)) from None
    _check_cross_references(params, source)
    return params


class _DuplicateKeyError(Exception):
    """A key given twice in one mapping; read_raw adds the file's name."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader refusing a key given twice in one mapping, at any depth.

    PyYAML keeps the last of two equal keys without a word, while DVC refuses the file: the
    Snakemake driver would train with a value the DVC driver never accepts. Each mapping and
    sequence records the key path of its children before they are built, so that the error
    names the full path.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._paths: dict[yaml.Node, tuple[str, ...]] = {}  # a node's key path as written, the top level's ()

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        path = self._paths.get(node, ())
        lines: dict[Any, int] = {}  # each key (as built: 1 and true are one key) and its line
        for key_node, value_node in node.value:
            # Only scalars can repeat: other keys are unhashable, which PyYAML refuses itself.
            # Merge keys (<<) are left to PyYAML, where explicit keys override merged ones.
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key, key_path = self.construct_object(key_node), (*path, key_node.value)
            line = key_node.start_mark.line + 1
            if key in lines:
                raise _DuplicateKeyError(
                    f"{'.'.join(key_path)} is given twice (lines {lines[key]} and {line})")
            lines[key] = line
            self._paths.setdefault(value_node, key_path)  # setdefault: an alias keeps its anchor's path
        return super().construct_mapping(node, deep)

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> list[Any]:
        path = self._paths.get(node, ())
        for index, item in enumerate(node.value):
            self._paths.setdefault(item, (*path, str(index)))
        return super().construct_sequence(node, deep)


def read_raw(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Parse params.yaml without validating it, refusing a key given twice."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: parameters file not found")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # safe: a SafeLoader
    except _DuplicateKeyError as err:
        raise ConfigError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    return raw


def load(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml."""
    return validate(read_raw(path), source=str(path))
