import sarn.code_deps
import sarn.lock
import sarn.params
import sarn.stages

PARAMS_FILE = "params.yaml"
RAW_PARAMS = sarn.params.read_raw(PARAMS_FILE)
PARAMS = sarn.params.validate(RAW_PARAMS, source=PARAMS_FILE)
# This run is the driver its jobs take the project lock under (sarn/lock.py): together they
# share it. While another run holds it (DVC, a second Snakemake), stop before anything is
# written or removed.
sarn.lock.record_driver()
sarn.lock.refuse_if_held()
# Outputs made by DVC carry no Snakemake metadata: the stamps make a changed key visible.
sarn.stages.sync_stamps(RAW_PARAMS)
DATASETS = PARAMS.experiment.datasets
MODELS = PARAMS.experiment.models
# The folders of the training stages, as the rules that aggregate them read them.
TABLE2_RUNS = expand("results/table2/{dataset}/{model}", dataset=DATASETS, model=MODELS)
TABLE3_RUNS = expand(
    "results/table3/{dataset}/{model}/len{length}",
    dataset=PARAMS.table3.datasets,
    model=PARAMS.table3.models,
    length=PARAMS.table3.lengths,
)
EFFECTS_RUNS = expand(
    "results/effects/{dataset}/{model}", dataset=DATASETS, model=PARAMS.protocol_effects.models
)


wildcard_constraints:
    dataset="|".join(PARAMS.datasets),
    model="|".join(PARAMS.models),


def stamps(stage, **names):
    """Stamp files of the params keys `stage` depends on (see sarn/stages.py)."""
    return [str(sarn.stages.stamp_path(k)) for k in sarn.stages.stage_keys(stage, **names)]


def code(stage):
    """The package files `stage` runs, derived from its imports (sarn/code_deps.py), so that
    an edit of any of them reruns its jobs; dvc.yaml lists the same."""
    return sarn.code_deps.code_files(stage, Path.cwd())


def plot_args(name):
    """The notebook parameters of one figure's style (params.yaml: plots.<name>)."""
    style = getattr(PARAMS.plots, name)
    return " ".join(f"--param {k}={v}" for k, v in style.model_dump().items())


def source_files(dataset):
    """A user's own log is an input of its raw stage, so that editing the file reruns it. A log
    that does not exist is left out: named, it would be a missing input that no rule makes,
    which Snakemake forgives as long as the files downstream exist, and a dataset added to a
    project that has run was silently left out of the tables; without it the raw job runs and
    stops, naming the key and the file (the error is printed: show-failed-logs)."""
    source = PARAMS.datasets[dataset].source
    return [source.path] if source.kind == "log" and Path(source.path).exists() else []


def effects_threads(wildcards):
    """A protocol-effects job trains on the datasets whose effects are run; another one only
    writes a folder that says so."""
    if wildcards.dataset in sarn.params.effects_datasets(PARAMS):
        return PARAMS.runtime.stage_threads(PARAMS.protocol_effects.n_seeds)
    return 1
