"""``python -m sarn <stage>``: the one entry point every workflow stage calls.

Both drivers (dvc.yaml and the Snakefile) only wire these commands together; all
behaviour lives here and in the modules they call. Every command reads params.yaml
through the imports at the top; each imports the module that does its work only in its
own branch, so that a stage runs (and depends on) no other stage's code: sarn/stages.py
derives each stage's code dependencies from this rule.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shlex
import sys
from pathlib import Path

import yaml

from sarn import params as params_mod
from sarn.errors import Interrupted, SarnError, os_error_message
from sarn.lock import project_lock
from sarn.logs import configure_logging
from sarn.params import Params, evaluation_problem, runs_on
from sarn.stages import sync_stamps

log = logging.getLogger("sarn")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sarn", description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="parameters file")
    sub = parser.add_subparsers(dest="command", required=True)

    raw = sub.add_parser("raw", help="produce a dataset's raw click log")
    raw.add_argument("--dataset", required=True)
    raw.add_argument("--out", type=Path, required=True, help="raw data folder")

    down = sub.add_parser("download", help="fetch and verify a dataset's published files ahead of the raw stage")
    down.add_argument("--dataset", required=True)
    desc = sub.add_parser("describe", help="what preprocessing would keep of a dataset (users, samples per "
                                           "split, the test set's precision), without writing anything")
    desc.add_argument("--dataset", required=True)
    desc.add_argument("--raw", type=Path, default=None,
                      help="the raw stage's folder, read where it exists (default: data/raw/<dataset>)")
    for fetching in (raw, down, desc):
        fetching.add_argument("--downloads", type=Path, default=Path("data/download"),
                              help="where published files are fetched to, or placed by hand (default: %(default)s)")

    pre = sub.add_parser("preprocess", help="build train/valid/test samples from a raw log")
    pre.add_argument("--dataset", required=True)
    pre.add_argument("--raw", type=Path, required=True, help="raw data folder")
    pre.add_argument("--out", type=Path, required=True, help="processed data folder")

    train = sub.add_parser("train", help="train one model on one dataset, every seed")
    train.add_argument("--dataset", required=True)
    train.add_argument("--model", required=True)
    train.add_argument("--data", type=Path, required=True, help="processed data folder")
    train.add_argument("--out", type=Path, required=True, help="results folder of this pair")

    sweep = sub.add_parser("sweep", help="Table III: train one model with histories cut to --max-len")
    sweep.add_argument("--dataset", required=True)
    sweep.add_argument("--model", required=True)
    sweep.add_argument("--max-len", type=int, required=True)
    sweep.add_argument("--data", type=Path, required=True, help="processed data folder")
    sweep.add_argument("--out", type=Path, required=True, help="results folder of this run")

    eff = sub.add_parser("effects", help="train a model again under each protocol_effects choice")
    eff.add_argument("--dataset", required=True)
    eff.add_argument("--model", required=True)
    eff.add_argument("--data", type=Path, required=True, help="processed data folder")
    eff.add_argument("--out", type=Path, required=True, help="results folder of this pair")

    eft = sub.add_parser("effects-table", help="the protocol-effects table: each choice against Table II's runs")
    eft.add_argument("--results", type=Path, required=True, help="protocol-effects results root folder")
    eft.add_argument("--baseline", type=Path, required=True, help="Table II results root folder")
    eft.add_argument("--table", type=Path, required=True)

    t3 = sub.add_parser("table3", help="aggregate the length sweep into Table III")
    t3.add_argument("--results", type=Path, required=True, help="sweep results root folder")
    t3.add_argument("--table", type=Path, required=True)

    snap = sub.add_parser("snapshots", help="train figures.model once, keeping weights for Fig. 5a")
    snap.add_argument("--data", type=Path, required=True, help="processed data folder")
    snap.add_argument("--out", type=Path, required=True, help="snapshots folder")

    fig = sub.add_parser("figure-data", help="the relations and attention behind Figs. 5 and 6")
    fig.add_argument("--data", type=Path, required=True, help="processed data folder")
    fig.add_argument("--snapshots", type=Path, required=True, help="snapshots folder")
    fig.add_argument("--out", type=Path, required=True, help="folder for the CSV files")

    idx = sub.add_parser("index", help="reports/index.html linking every table and figure")
    idx.add_argument("--reports", type=Path, required=True, help="reports folder")
    idx.add_argument("--processed", type=Path, required=True, help="processed data root (Table I's statistics)")

    agg = sub.add_parser("aggregate", help="Table II and the aggregate metrics file")
    agg.add_argument("--results", type=Path, required=True, help="results root folder")
    agg.add_argument("--table", type=Path, required=True)
    agg.add_argument("--metrics", type=Path, required=True)
    agg.add_argument("--curves", type=Path, required=True, help="folder of each run's training curves")

    rep = sub.add_parser("report", help="execute a report notebook with papermill")
    rep.add_argument("--notebook", type=Path, required=True, help="template notebook")
    rep.add_argument("--out", type=Path, required=True, help="executed notebook (.ipynb)")
    rep.add_argument("--html", type=Path, required=True, help="HTML export")
    rep.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                     help="a notebook parameter (repeatable)")

    deps = sub.add_parser("code-deps", help="write each stage's code dependencies into dvc.yaml (derived from "
                                             "what it imports; Snakemake derives the same at parse time)")
    deps.add_argument("--dvc-yaml", type=Path, default=Path("dvc.yaml"))
    deps.add_argument("--check", action="store_true", help="only say whether dvc.yaml is up to date (exit 2 if not)")

    plan = sub.add_parser("plan", help="the bill before the run: the selection's runs, optimizer steps, "
                                       "evaluations and hours, here (a short timed probe of each run) and on "
                                       "the GPUs with measured step times")
    plan.add_argument("--processed", type=Path, default=Path("data/processed"),
                      help="processed data root: a dataset found there is planned with its own size and "
                           "history lengths (default: %(default)s)")
    plan.add_argument("--probe-steps", type=_non_negative, default=8,
                      help="timed training steps a probe round, three rounds a run (0: count only, no "
                           "timing; default: %(default)s)")

    chk = sub.add_parser("check", help="validate params.yaml (against the processed data where it exists) "
                                       "and refresh the params stamps")
    chk.add_argument("--processed", type=Path, default=Path("data/processed"),
                     help="processed data root, for the checks that need a dataset's size (default: %(default)s)")
    return parser


# The commands that build models, and so check each run's architecture against its class.
MODEL_COMMANDS = {"check", "train", "sweep", "effects", "snapshots", "figure-data", "plan"}


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _run(args: argparse.Namespace) -> None:
    if args.command == "code-deps":  # about the code, not the parameters
        _code_deps(args.dvc_yaml, args.check)
        return
    raw_params = params_mod.read_raw(args.params)
    params = params_mod.validate(raw_params, source=str(args.params))
    if args.command in MODEL_COMMANDS:
        from sarn.checks import check_models

        check_models(params, source=str(args.params))
    sync_stamps(raw_params, args.params.parent)

    if args.command == "check":
        checked = _check_against_data(params, args.processed, str(args.params))
        log.info("%s is valid%s", args.params,
                 f" (and fits the processed data of {', '.join(checked)})" if checked else "")
        return
    if args.command in ("raw", "download", "describe", "preprocess", "train", "sweep", "effects") \
            and args.dataset not in params.datasets:
        raise SarnError(f"unknown dataset {args.dataset!r}; {args.params} defines: "
                        f"{', '.join(sorted(params.datasets))}")
    if args.command in ("train", "sweep", "effects") and args.model not in params.models:
        raise SarnError(f"unknown model {args.model!r}; {args.params} configures: "
                        f"{', '.join(sorted(params.models))}")
    if args.command == "raw":
        from sarn.data.sources import make_raw

        make_raw(args.dataset, params.datasets[args.dataset], args.out, args.downloads)
    elif args.command == "download":
        from sarn.data.sources import download

        fetched = download(args.dataset, params.datasets[args.dataset], args.downloads)
        for key, (path, digest) in fetched.items():
            log.info("datasets.%s.source.%s: %s (sha256 %s)", args.dataset, key, path, digest)
        if not fetched:
            log.info("datasets.%s: nothing to download (a generated or a user's own log)", args.dataset)
    elif args.command == "describe":
        from sarn.data.describe import describe

        print(describe(args.dataset, params.datasets[args.dataset], args.raw or Path("data/raw") / args.dataset,
                       args.downloads))
    elif args.command == "preprocess":
        from sarn.data.preprocess import preprocess

        preprocess(args.dataset, params.datasets[args.dataset], args.raw, args.out)
    elif args.command == "train":
        from sarn.train.runner import train_model

        train_model(params, args.dataset, args.model, args.data, args.out, params.experiment.n_seeds)
    elif args.command == "sweep":
        from sarn.train.runner import train_model

        stored = params.datasets[args.dataset].protocol.max_len
        if not 0 < args.max_len <= stored:
            raise SarnError(f"--max-len {args.max_len}: expected 1 to {stored} "
                            f"(datasets.{args.dataset}.protocol.max_len)")
        train_model(params, args.dataset, args.model, args.data, args.out, params.table3.n_seeds,
                    max_len=args.max_len)
    elif args.command == "effects":
        from sarn.train.runner import train_effects

        train_effects(params, args.dataset, args.model, args.data, args.out)
    elif args.command == "effects-table":
        from sarn.report.aggregate import aggregate_effects

        aggregate_effects(params, args.results, args.baseline, args.table)
    elif args.command == "table3":
        from sarn.report.aggregate import aggregate_sweep

        aggregate_sweep(params.table3, args.results, args.table)
    elif args.command == "snapshots":
        from sarn.train.runner import train_snapshots

        train_snapshots(params, params.figures.dataset, params.figures.model, args.data, args.out)
    elif args.command == "figure-data":
        from sarn.analysis import figure_data

        figure_data(params, args.data, args.snapshots, args.out)
    elif args.command == "index":
        from sarn.report.index import write_index

        write_index(args.reports, args.params, args.processed)
    elif args.command == "aggregate":
        from sarn.report.aggregate import aggregate

        aggregate(params.experiment.datasets, params.experiment.models, args.results,
                  args.table, args.metrics, args.curves)
    elif args.command == "plan":
        from sarn.plan.bill import print_bill

        print_bill(params, args.processed, args.probe_steps)
    elif args.command == "report":
        from sarn.report.notebook import render_notebook

        render_notebook(args.notebook, args.out, args.html, _notebook_parameters(args.param))


def _code_deps(dvc_yaml: Path, check: bool) -> None:
    from sarn.atomic import write_text
    from sarn.code_deps import rewrite_dvc_deps

    text = dvc_yaml.read_text(encoding="utf-8")
    wanted = rewrite_dvc_deps(text)
    if wanted == text:
        log.info("%s: every stage's code dependencies are up to date", dvc_yaml)
    elif check:
        raise SarnError(f"{dvc_yaml}: the code dependencies of some stages are not those they import; "
                        "run `python -m sarn code-deps` to write them")
    else:
        write_text(dvc_yaml, wanted)
        log.info("%s: code dependencies written", dvc_yaml)


def _check_against_data(params: Params, processed: Path, source: str) -> list[str]:
    """Check what needs a dataset's size (``eval_every_samples`` against an epoch) or its ids (the
    figures' categories and user) for every configured dataset whose processed data exists;
    return their names."""
    checked, problems = [], []
    for dataset, spec in params.datasets.items():
        stats = processed / dataset / "stats.json"
        if not stats.is_file():
            continue
        checked.append(dataset)
        samples = json.loads(stats.read_text(encoding="utf-8"))["train_samples"]
        problems += [problem for name, training in runs_on(params, dataset).items()
                     if (problem := evaluation_problem(spec.training, dataset, name, training, samples))]
        if dataset == params.figures.dataset:
            from sarn.analysis import figure_choice
            from sarn.data.processed import load_meta, load_split

            meta, test = load_meta(processed / dataset, with_ids=True), load_split(processed / dataset, "test")
            problems += figure_choice(params, meta, test)[0]
    if problems:
        raise SarnError("\n".join([f"{source} does not fit the processed data in {processed}:",
                                    *(f"  {p}" for p in sorted(set(problems)))]))
    return checked


def _notebook_parameters(pairs: list[str]) -> dict[str, object]:
    """``NAME=VALUE`` pairs; values are read as YAML scalars (150 → int, 4.0 → float)."""
    parameters: dict[str, object] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise SarnError(f"--param {pair!r}: expected NAME=VALUE with NAME a Python identifier")
        parsed = yaml.safe_load(value) if value else ""
        parameters[name] = parsed if isinstance(parsed, int | float | str) else value
    return parameters


# What may run beside a driver: they write no stage output (check refreshes the params stamps only).
UNLOCKED_COMMANDS = {"check", "code-deps"}


def _project_lock(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """The work folder's lock (sarn/lock.py) for a command that writes outputs."""
    return contextlib.nullcontext() if args.command in UNLOCKED_COMMANDS else project_lock(args.params.parent)


def main(argv: list[str] | None = None) -> int:
    """Run one command; a problem of the input or of the machine (a full disk, a read-only folder)
    ends it with one line on stderr and exit status 2, Ctrl-C with one line and 130 (the shell's
    code for SIGINT), every temporary file removed on the way out."""
    configure_logging()
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    try:
        with _project_lock(args):
            _run(args)
    except SarnError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # outside the atomic writers, which name their output (reading an input...)
        print(f"error: {os_error_message(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        where = f" ({err.where})" if isinstance(err, Interrupted) else ""
        print(f"interrupted: python -m sarn {shlex.join(argv)}{where}", file=sys.stderr)
        return 130
    return 0
