import sarn.code_deps
import sarn.params
import sarn.stages

PARAMS_FILE = "params.yaml"
RAW_PARAMS = sarn.params.read_raw(PARAMS_FILE)
PARAMS = sarn.params.validate(RAW_PARAMS, source=PARAMS_FILE)
# Outputs made by DVC carry no Snakemake metadata: the stamps make a changed key visible.
sarn.stages.sync_stamps(RAW_PARAMS)
DATASETS = PARAMS.experiment.datasets
MODELS = PARAMS.experiment.models


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
    """A user's own log is an input of its raw stage, so that editing the file reruns it."""
    source = PARAMS.datasets[dataset].source
    return [source.path] if source.kind == "log" else []


def effects_threads(wildcards):
    """A protocol-effects job trains on the datasets protocol_effects lists; another one only
    writes a folder that says so."""
    if wildcards.dataset in PARAMS.protocol_effects.datasets:
        return PARAMS.runtime.stage_threads(PARAMS.protocol_effects.n_seeds)
    return 1
