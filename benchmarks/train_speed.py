"""Training throughput and peak memory of every model, SARN against the straightforward graph,
and the project's DIN against DeepCTR-Torch's.

    python -m benchmarks.train_speed [--parts 1 2 3 4 5] [--device cpu|cuda] [--precision fp32|tf32|bf16]
                                     [--steps N] [--batches 128 1024] [--lengths 30 50] [--models ...]

Five parts (1, 2, 3 and 5 by default), each printed as a table; every ratio compares rows
of the same invocation.

1. Every model at each batch size and history length with every history full length
   (the worst case: each batch padded to L). ``sarn_straightforward`` is the reference
   graph and ``sarn_materialised`` the project's SARN with its pairs held whole
   (benchmarks/straightforward_sarn.py); ``deepctr_din`` is DeepCTR-Torch 0.3.0's
   DIN (installed with --no-deps into build/bench-deps, nowhere else) on the same fields,
   sizes and optimizer as the project's DIN, trained with its own loss.
2. SARN at batch 128 on histories with Amazon Electronics' lengths (up to 30), the
   straightforward graph first, then the known leads added one at a time, ending with the
   project's SARN as the pipeline trains it. All rows train on the same batches' samples.
3. One training epoch of DIN and SARN (both forms) on generated data of Amazon Electronics' size and
   lengths (192,403 users), batched as the pipeline batches.
4. The embedded default's Table II (every model, every seed) through the stages' code.
5. What an eager training step costs the host: the operators it dispatches (on a GPU most
   of them a kernel launch) and its time at a size where the arithmetic is negligible. A GPU runs
   behind the host, which launches each operator at a cost comparable to running it on
   tiny tensors, so this time a step times the number of steps estimates the floor of an
   eager epoch there, which only fewer operators, a faster host or CUDA graphs lower.

Every row trains through the pipeline's own step (``sarn.train.loop.train_epoch``:
autocast, fused Adam on CUDA, no read-back inside the loop), except DeepCTR's, which
uses its own. On the CPU each row runs in its own process, so that its peak resident
memory (``ru_maxrss``) is its own, under the allocator settings ``python -m sarn``
gives training, unless the row says otherwise. On CUDA all rows share one process and
the peak is ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.straightforward_sarn import MaterialisedSARN, StraightforwardSARN
from sarn import ALLOCATOR_ENV
from sarn.models import MODELS, Batch, build_model
from sarn.params import CompileMode, Params, load
from sarn.train.batching import BatchIndex, DeviceSamples
from sarn.train.loop import compile_mode_on, compile_model, make_optimizer, train_epoch, train_step
from sarn.train.runner import configure_torch

ROOT = Path(__file__).resolve().parents[1]
DEEPCTR = "deepctr-torch==0.3.0"
DEEPCTR_DIR = ROOT / "build" / "bench-deps"  # the peer lives here only, never in the project's environment

# Amazon Electronics (data.md): 192,403 users, 63,001 items, 801 categories, 1,689,188
# reviews (8.78 a user, at least 5): the generator is given the same sizes.
ELECTRONICS = {"n_users": 192_403, "n_items": 63_001, "n_categories": 801, "n_interests": 40,
               "interests_per_user": 3, "mean_clicks": 8.78, "min_clicks": 5, "max_clicks": 300,
               "popularity_exponent": 1.0, "start_time": 1_388_534_400, "seed": 0}
LENGTHS_USERS = 20_000  # part 2 needs Electronics' length distribution, not its size
# Part 5: a batch this small, with tables this small, costs next to nothing to compute, so
# what a step takes is what the host spends dispatching it (with Electronics' 63,001 items,
# the dense gradient and Adam update of the item table alone cost a CPU more than that); the
# width is the mean padded width of an Electronics epoch as the pipeline batches it (8.7,
# part 2), since GRU and DIEN dispatch per position.
FLOOR_BATCH, FLOOR_WIDTH, FLOOR_ITEMS, FLOOR_CATEGORIES = 8, 9, 1_000, 100
FLOOR_TURNS = 5  # part 5's models take this many turns each
ELECTRONICS_STEPS = 2_406  # part 3's epoch: 307,844 training samples in batches of 128, the last one partial

# Part 2: SARN with the leads added one at a time: (row, model, batches grouped by length?, allocator settings?)
LEADS = [
    ("straightforward graph, shuffled batches", "sarn_straightforward", False, False),
    ("+ allocator settings", "sarn_straightforward", False, True),
    ("+ project SARN (per-item layers, no stored pairs)", "sarn", False, True),
    ("+ length-grouped batches (as trained)", "sarn", True, True),
]


def install_deepctr() -> bool:
    """DeepCTR-Torch (the peer) with --no-deps into ``build/bench-deps``; it needs only
    torch, tqdm and scikit-learn, which the project already has."""
    if (DEEPCTR_DIR / "deepctr_torch").is_dir():
        return True
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                           str(DEEPCTR_DIR), DEEPCTR], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"{DEEPCTR} could not be installed; its rows are skipped:\n{done.stderr[-1000:]}", file=sys.stderr)
    return done.returncode == 0


def deepctr_din(n_items: int, n_categories: int, length: int, architecture: dict, device: torch.device):
    """DeepCTR-Torch's DIN on the same fields and sizes as the project's DIN; returns the
    model and a function turning a project Batch into its input matrix and labels."""
    sys.path.insert(0, str(DEEPCTR_DIR))
    from deepctr_torch.inputs import SparseFeat, VarLenSparseFeat, build_input_features
    from deepctr_torch.models import DIN

    dim = architecture["embedding_dim"]
    columns = [SparseFeat("item", n_items, embedding_dim=dim), SparseFeat("category", n_categories, embedding_dim=dim),
               VarLenSparseFeat(SparseFeat("hist_item", n_items, embedding_dim=dim, embedding_name="item"),
                                maxlen=length, length_name="seq_length"),
               VarLenSparseFeat(SparseFeat("hist_category", n_categories, embedding_dim=dim,
                                           embedding_name="category"), maxlen=length, length_name="seq_length")]
    # Its DNN cannot take Dice here (DIN builds the DNN with 3-d Dice for 2-d inputs), so
    # its head gets PReLU: cheaper than the project's Dice head, which favours the peer.
    net = DIN(columns, ["item", "category"], dnn_hidden_units=tuple(architecture["head"]), dnn_activation="prelu",
              att_hidden_size=tuple(architecture["attention_hidden"]), att_activation="Dice", device=str(device))
    index = build_input_features(columns)

    def inputs(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        parts = {"item": batch.item[:, None], "category": batch.category[:, None], "hist_item": batch.hist_item,
                 "hist_category": batch.hist_category, "seq_length": batch.mask.sum(1, keepdim=True).long()}
        return torch.cat([parts[name] for name in index], dim=1).float(), batch.label

    return net, inputs


# The benchmark's own rows beside the models, each with the params.yaml run whose settings it takes.
REFERENCE_RUNS = {"sarn_straightforward": "sarn", "sarn_materialised": "sarn", "deepctr_din": "din"}
ROW_NAMES = [*MODELS, *REFERENCE_RUNS]


def _run_name(name: str) -> str:
    """The params.yaml run whose settings a benchmark row uses (its references take their model's)."""
    return REFERENCE_RUNS.get(name, name)


def _model(params: Params, name: str, n_items: int, n_categories: int, device: torch.device) -> torch.nn.Module:
    spec = params.models[_run_name(name)]
    if name == "sarn_materialised":
        return MaterialisedSARN(n_items, n_categories, **spec.architecture).to(device)
    net = build_model(spec.model, n_items, n_categories, spec.architecture)
    return (StraightforwardSARN(net) if name == "sarn_straightforward" else net).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _train(params: Params, name: str, net: torch.nn.Module, samples: DeviceSamples, batches: list[BatchIndex],
           precision: str, peer=None, timed: AbstractContextManager | None = None) -> tuple[float, float]:
    """Seconds of a warm-up, one step on a batch of each shape (size, width) among
    ``batches``, where a compiled model compiles all it needs; then seconds to train on
    all of ``batches``, inside ``timed`` (a profiler, say) if given."""
    spec = params.models[_run_name(name)].training
    optimizer = make_optimizer(net, spec, samples.device)

    def run(parts: list[BatchIndex]) -> None:
        if peer is None:
            train_epoch(net, optimizer, samples, parts, spec, name, 1, precision=precision)
            return
        net.train()
        for part in parts:  # DeepCTR's own step (BaseModel.fit): summed BCE plus its regularisation
            x, y = peer(samples.batch(part))
            loss = torch.nn.functional.binary_cross_entropy(net(x).squeeze(1), y, reduction="sum")
            loss = loss + net.get_regularization_loss() + net.aux_loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    shapes: dict[tuple[int, int], BatchIndex] = {}
    for part in batches:
        shapes.setdefault((len(part.index), part.width), part)
    start = time.perf_counter()
    run(list(shapes.values()))
    _sync(samples.device)
    warm_up = time.perf_counter() - start
    with timed or nullcontext():
        start = time.perf_counter()
        run(batches)
        _sync(samples.device)
        seconds = time.perf_counter() - start
    return warm_up, seconds


def _random_samples(size: int, length: int, n_items: int, n_categories: int, device: torch.device) -> DeviceSamples:
    """Random sample arrays in the preprocess stage's layout, every history full length."""
    rng = np.random.default_rng(1)
    hist = {key: rng.integers(1, n, (size, length), dtype=np.int32) for key, n in
            [("hist_item", n_items), ("hist_category", n_categories), ("neg_item", n_items),
             ("neg_category", n_categories)]}
    return DeviceSamples({
        "user": np.arange(size), "item": rng.integers(1, n_items, size, dtype=np.int32),
        "category": rng.integers(1, n_categories, size, dtype=np.int32),
        "timestamp": np.full(size, 1_400_000_000), "label": rng.integers(0, 2, size).astype(np.float32),
        "length": np.full(size, length),
        "hist_timestamp": 1_400_000_000 - rng.integers(0, 10**7, (size, length)), **hist}, device)


def grid_row(params: Params, name: str, batch: int, length: int, steps: int, device: torch.device,
             precision: str) -> dict:
    """Part 1: throughput and peak memory of one (model, batch, length), full-length histories."""
    torch.manual_seed(0)
    n_items, n_categories = 50_000, 800
    samples = _random_samples(batch * steps, length, n_items, n_categories, device)
    peer = None
    if name == "deepctr_din":
        net, peer = deepctr_din(n_items, n_categories, length, params.models["din"].architecture, device)
    else:
        net = _model(params, name, n_items, n_categories, device)
    batches = samples.training_batches(batch, 1, torch.Generator().manual_seed(0))
    _, seconds = _train(params, name, net, samples, batches, precision, peer)
    return {"model": name, "batch": batch, "length": length, "samples_per_s": batch * steps / seconds,
            "peak_mb": _peak_mb(device)}


@functools.lru_cache(maxsize=2)
def electronics_arrays(n_users: int, max_len: int) -> tuple[dict[str, np.ndarray], dict]:
    """Training samples of users generated with Electronics' per-user click counts (8.78 on
    average, at least 5), built by the preprocess stage's own code, and their metadata.

    The generator is a Python loop over users (a minute for Electronics' size), so its log
    is kept in build/bench-electronics and reused: only the sample building is timed again.
    """
    from sarn.data.raw import as_log, columns_of, read_log, write_log
    from sarn.data.samples import build_samples
    from sarn.data.synthetic import generate_clicks
    from sarn.params import GeneratorSpec, ProtocolSpec

    spec = GeneratorSpec(**{**ELECTRONICS, "n_users": n_users})
    cache = ROOT / "build" / "bench-electronics" / f"{hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:16]}.npz"
    if not cache.is_file():
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_log(cache, columns_of(as_log(generate_clicks(spec))))
    protocol = ProtocolSpec.model_validate({"min_history": 4, "max_len": max_len, "negative_drop": 0.0, "seed": 0,
                                            "split": {"by": "user", "train": 0.8, "valid": 0.1, "test": 0.1}})
    splits, meta = build_samples(read_log(cache), protocol)
    return splits["train"], meta


def lead_row(params: Params, row: int, steps: int, device: torch.device, precision: str,
             n_users: int = LENGTHS_USERS) -> dict:
    """Part 2: one row of ``LEADS``, trained on the same ``128 * steps`` samples as every row."""
    label, name, grouped, _ = LEADS[row]
    arrays, meta = electronics_arrays(n_users, 30)
    pick = np.sort(np.random.default_rng(0).permutation(arrays["label"].size)[: 128 * steps])
    samples = DeviceSamples({key: value[pick] for key, value in arrays.items()}, device)
    chunk = params.models["sarn"].training.length_sort_chunk if grouped else 1
    batches = samples.training_batches(128, chunk, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    net = _model(params, name, meta["n_items"], meta["n_categories"], device)
    _, seconds = _train(params, name, net, samples, batches, precision)
    return {"row": label, "samples_per_s": samples.size / seconds, "peak_mb": _peak_mb(device),
            "mean_width": float(np.mean([part.width for part in batches])),
            "mean_history": float(arrays["length"][pick].mean())}


def profile(params: Params, name: str, device: torch.device, precision: str, compile_mode: CompileMode = "eager",
            steps: int = 20) -> None:
    """Where the time of ``steps`` training steps goes: torch.profiler's top operators."""
    arrays, meta = electronics_arrays(LENGTHS_USERS, 30)
    samples = DeviceSamples({key: value[: 128 * (steps + 1)] for key, value in arrays.items()}, device)
    batches = samples.training_batches(128, params.models["sarn"].training.length_sort_chunk,
                                       torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    net = _model(params, name, meta["n_items"], meta["n_categories"], device)
    compile_model(net, compile_mode, device)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    prof = torch.profiler.profile(activities=activities)  # the warm-up (and compiling) stays outside it
    _, seconds = _train(params, name, net, samples, batches[:steps], precision, timed=prof)
    events = prof.key_averages()
    busy = sum(getattr(e, "self_device_time_total", 0) for e in events) / 1000 / steps
    print(f"# {name}: {steps} steps in {seconds:.3f} s, {1000 * seconds / steps:.2f} ms a step (profiled); "
          f"{sum(e.count for e in events) / steps:.0f} operator calls and {busy:.2f} ms of device time a step")
    print(events.table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=50))


class OperatorCount(TorchDispatchMode):
    """Counts the operators dispatched inside it, views (which launch nothing) left out."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view:
            self.calls[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def floor_rows(params: Params, names: list[str], steps: int, device: torch.device, precision: str
               ) -> list[dict]:
    """Part 5: the operators of one eager training step of each model and the host time of
    a step at ``FLOOR_BATCH`` × ``FLOOR_WIDTH``, Adam fused as on CUDA, after a warm-up step.

    A step includes cutting its batch from the device-resident samples, as in
    :func:`sarn.train.loop.train_epoch`. The models take ``FLOOR_TURNS`` turns of
    ``steps / FLOOR_TURNS`` steps, and each keeps its fastest turn (as timeit keeps its best repeat): this
    machine's speed drifts by tens of percent over a minute, and turns expose every model to
    the same drift. The rows run in this process (on the CPU without the allocator settings
    of the other parts' child processes, which concern large tensors).
    """
    if steps < FLOOR_TURNS:
        raise ValueError(f"part 5 needs at least {FLOOR_TURNS} timed steps (one a turn), got {steps}")
    runs = []
    for name in names:
        torch.manual_seed(0)
        samples = _random_samples(FLOOR_BATCH * (steps + 2), FLOOR_WIDTH, FLOOR_ITEMS, FLOOR_CATEGORIES, device)
        net = _model(params, name, FLOOR_ITEMS, FLOOR_CATEGORIES, device).train()
        spec = params.models[_run_name(name)].training
        optimizer = make_optimizer(net, spec, torch.device("cuda"))  # fused, as the pipeline's Adam on CUDA
        parts = samples.training_batches(FLOOR_BATCH, 1, torch.Generator().manual_seed(0))
        train_step(net, optimizer, samples.batch(parts[0]), spec, precision)
        with OperatorCount() as count:
            train_step(net, optimizer, samples.batch(parts[1]), spec, precision)
        runs.append((net, optimizer, spec, samples, parts[2:], count))
    best = [float("inf")] * len(names)
    for k in range(FLOOR_TURNS):
        for i, (net, optimizer, spec, samples, parts, _) in enumerate(runs):
            block = parts[k::FLOOR_TURNS]
            _sync(device)
            start = time.perf_counter()
            for part in block:
                train_step(net, optimizer, samples.batch(part), spec, precision)
            _sync(device)
            best[i] = min(best[i], (time.perf_counter() - start) / len(block))
    return [{"model": name, "operators": sum(count.calls.values()), "ms_a_step": 1000 * seconds,
             "top": count.calls.most_common(5)} for name, (*_, count), seconds in zip(names, runs, best, strict=True)]


def epoch_row(params: Params, name: str, device: torch.device, precision: str, compile_mode: CompileMode = "eager"
              ) -> dict:
    """Part 3: one training epoch on Electronics-sized data, batched as the pipeline batches,
    the model compiled as ``runtime.compile: compile_mode`` would compile it."""
    arrays, meta = electronics_arrays(ELECTRONICS["n_users"], 30)
    samples = DeviceSamples(arrays, device)
    spec = params.models[_run_name(name)].training
    batches = samples.training_batches(spec.batch_size, spec.length_sort_chunk, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    net = _model(params, name, meta["n_items"], meta["n_categories"], device)
    torch._dynamo.reset()  # rows share a process on CUDA: each compiles from scratch
    mode = compile_model(net, compile_mode, device)
    warm_up, seconds = _train(params, name, net, samples, batches, precision)
    return {"model": name + ("" if mode == "eager" else f" (compile: {mode})"), "train_samples": samples.size,
            "seconds": seconds, "warm_up": warm_up, "steps": len(batches),
            "samples_per_s": samples.size / seconds, "mean_history": float(arrays["length"].mean()),
            "peak_mb": _peak_mb(device)}


def _row(job: dict, params: Params, device: torch.device, args: argparse.Namespace) -> dict:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if job["part"] == "grid":
        return grid_row(params, job["model"], job["batch"], job["length"], args.steps, device, args.precision)
    if job["part"] == "leads":
        return lead_row(params, job["row"], args.lead_steps, device, args.precision)
    return epoch_row(params, job["model"], device, args.precision, job.get("compile", "eager"))


def _run(job: dict, params: Params, device: torch.device, args: argparse.Namespace) -> dict | None:
    """One row: in this process on CUDA, in a child process on the CPU (its own peak memory)."""
    if device.type == "cuda":
        try:
            return _row(job, params, device, args)
        except Exception as err:  # noqa: BLE001 - one failing row (out of memory, a compiler error) must not end the run
            print(f"{job} failed: {type(err).__name__}: {str(err)[:1500]}", file=sys.stderr)
            return None
    allocator = job.get("allocator", True)
    env = {k: v for k, v in os.environ.items() if allocator or k not in ALLOCATOR_ENV}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.train_speed", "--device", "cpu", "--steps",
                           str(args.steps), "--lead-steps", str(args.lead_steps), "--child", json.dumps(job)],
                          capture_output=True, text=True, cwd=ROOT, check=False,
                          env={**ALLOCATOR_ENV, **env} if allocator else env)
    if proc.returncode != 0:
        print(f"{job} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _ratios(rows: list[dict], ours: str, theirs: str, title: str) -> None:
    print(f"\n{title} (same run):")
    index = {(r["model"], r["batch"], r["length"]): r for r in rows}
    for (model, batch, length), a in index.items():
        b = index.get((theirs, batch, length))
        if model == ours and b:
            print(f"  B={batch:5d} L={length:3d}: {a['samples_per_s'] / b['samples_per_s']:.2f}x "
                  f"throughput, {a['peak_mb']:.0f} MB vs {b['peak_mb']:.0f} MB peak")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32")
    parser.add_argument("--steps", type=int, default=3, help="timed steps a row in part 1")
    parser.add_argument("--lead-steps", type=int, default=80, help="batches of 128 a row in part 2")
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--lengths", type=int, nargs="+", default=[30, 50])
    parser.add_argument("--models", nargs="+", default=ROW_NAMES, choices=ROW_NAMES, metavar="MODEL",
                        help=f"rows to run, among {', '.join(ROW_NAMES)} (all by default)")
    parser.add_argument("--parts", type=int, nargs="+", default=[1, 2, 3, 5], choices=[1, 2, 3, 4, 5],
                        help="which parts to run (3: one epoch on Electronics-sized data, 4: the embedded "
                             "default's Table II end to end, minutes each on a CPU; 5: the host's cost of "
                             "an eager step)")
    parser.add_argument("--floor-steps", type=int, default=200, help="timed steps a row in part 5")
    parser.add_argument("--compile", nargs="+", default=[], choices=["default", "reduce-overhead"],
                        help="part 3 also times DIN and SARN with runtime.compile set to each of these")
    parser.add_argument("--nondeterministic", action="store_true",
                        help="switch deterministic algorithms off, to measure what determinism costs")
    parser.add_argument("--profile", metavar="MODEL", choices=[m for m in ROW_NAMES if m != "deepctr_din"],
                        help="only profile 20 training steps of MODEL on part 2's batches (grouped by length), "
                             "compiled in the first --compile mode if one is given")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if 5 in args.parts and args.floor_steps < FLOOR_TURNS:  # said now, not after the other parts' minutes
        parser.error(f"--floor-steps must be at least {FLOOR_TURNS} (one step a turn), got {args.floor_steps}")
    params = load(ROOT / "params.yaml")
    device = configure_torch(params.runtime.model_copy(update={"device": args.device, "precision": args.precision}))
    if args.nondeterministic:
        torch.use_deterministic_algorithms(False)
    if args.profile:
        profile(params, args.profile, device, args.precision, (args.compile or ["eager"])[0])
        return
    if args.child:
        print(json.dumps(_row(json.loads(args.child), params, device, args)))
        return
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"# {where}; torch {torch.__version__}; precision {args.precision if device.type == 'cuda' else 'fp32'}")
    models = list(args.models)
    if "deepctr_din" in models and not install_deepctr():
        models.remove("deepctr_din")

    if 1 in args.parts:
        full_length(params, device, args, models)
    if 2 in args.parts:
        leads(params, device, args)
    if 3 in args.parts:
        epochs(params, device, args)
    if 4 in args.parts:
        embedded_default(params)
    if 5 in args.parts:
        host_floor(params, device, args, [m for m in models if m != "deepctr_din"])


def full_length(params: Params, device: torch.device, args: argparse.Namespace, models: list[str]) -> None:
    print(f"\n## 1. Full-length histories, {args.steps} timed steps a row")
    rows = []
    for batch in args.batches:
        for length in args.lengths:
            for model in models:
                r = _run({"part": "grid", "model": model, "batch": batch, "length": length}, params, device, args)
                if r is not None:
                    rows.append(r)
                    print(f"  {model:22s} B={batch:5d} L={length:3d} {r['samples_per_s']:10.0f} samples/s "
                          f"{r['peak_mb']:8.0f} MB peak", flush=True)
    _ratios(rows, "sarn", "sarn_straightforward", "SARN against the straightforward graph")
    _ratios(rows, "din", "deepctr_din", f"The project's DIN against {DEEPCTR}'s DIN")



def leads(params: Params, device: torch.device, args: argparse.Namespace) -> None:
    print(f"\n## 2. SARN, batch 128, Electronics-like lengths (histories up to 30), {args.lead_steps} batches a row")
    base = None
    for k, (label, _, _, allocator) in enumerate(LEADS):
        if device.type == "cuda" and k == 1:
            continue  # the allocator settings concern the host's malloc only
        r = _run({"part": "leads", "row": k, "allocator": allocator}, params, device, args)
        if r is None:
            continue
        base = base or r
        print(f"  {label:50s} {r['samples_per_s']:8.0f} samples/s {r['peak_mb']:7.0f} MB peak  "
              f"mean width {r['mean_width']:4.1f} (mean history {r['mean_history']:.1f})  "
              f"{r['samples_per_s'] / base['samples_per_s']:5.2f}x the first row", flush=True)



def epochs(params: Params, device: torch.device, args: argparse.Namespace) -> None:
    print(f"\n## 3. One training epoch on generated data of Amazon Electronics' size "
          f"({ELECTRONICS['n_users']:,} users, 8.78 clicks a user, histories up to 30)")
    modes = dict.fromkeys(["eager", *(compile_mode_on(device, mode) for mode in args.compile)])  # once each
    jobs = [{"part": "epoch", "model": model, "compile": mode} for mode in modes
            for model in ("din", "sarn", "sarn_materialised") if model in args.models]
    for job in jobs:
        r = _run(job, params, device, args)
        if r is not None:
            print(f"  {r['model']:34s} {r['seconds']:8.1f} s  {r['samples_per_s']:8.0f} samples/s  "
                  f"{1000 * r['seconds'] / r['steps']:6.2f} ms a step, {r['train_samples']:,} samples, "
                  f"mean history {r['mean_history']:.1f}, {r['peak_mb']:.0f} MB peak, "
                  f"warm-up (one step a batch shape; compiling) {r['warm_up']:.1f} s", flush=True)


def host_floor(params: Params, device: torch.device, args: argparse.Namespace, models: list[str]) -> None:
    print(f"\n## 5. The host's cost of an eager training step: batch {FLOOR_BATCH}, width {FLOOR_WIDTH}, "
          f"{args.floor_steps} timed steps a row in five turns (the fastest counts), fused Adam")
    print(f"  floor: that time a step times the {ELECTRONICS_STEPS:,} steps of an Electronics epoch (part 3)")
    rows = floor_rows(params, models, args.floor_steps, device, args.precision)
    din = next((r for r in rows if r["model"] == "din"), rows[0])
    for r in rows:
        top = ", ".join(f"{op.split('.')[-1]} {n}" for op, n in r["top"])
        print(f"  {r['model']:22s} {r['operators']:6d} operators  {r['ms_a_step']:6.2f} ms a step  "
              f"floor {ELECTRONICS_STEPS * r['ms_a_step'] / 1000:6.1f} s  {r['ms_a_step'] / din['ms_a_step']:5.2f}x "
              f"{din['model']}'s  (most: {top})", flush=True)


def embedded_default(params: Params) -> None:
    """Part 4: the embedded default's Table II as the pipeline computes it (raw, preprocess,
    then every model of ``experiment.models`` with ``experiment.n_seeds`` seeds), one job
    after another through the stages' own code, in build/bench-default."""
    from sarn.data.prepare import make_raw, preprocess
    from sarn.train.runner import train_model

    work = ROOT / "build" / "bench-default"
    shutil.rmtree(work, ignore_errors=True)
    dataset, seeds = "default", params.experiment.n_seeds
    print(f"\n## 4. The embedded default end to end: {len(params.experiment.models)} models x {seeds} seeds")
    start = time.perf_counter()
    make_raw(dataset, params.datasets[dataset], work / "raw")
    preprocess(dataset, params.datasets[dataset], work / "raw", work / "processed")
    print(f"  raw + preprocess {time.perf_counter() - start:8.1f} s", flush=True)
    for model in params.experiment.models:
        begin = time.perf_counter()
        train_model(params, dataset, model, work / "processed", work / "results" / model, seeds)
        print(f"  {model:16s} {time.perf_counter() - begin:8.1f} s", flush=True)
    print(f"  total            {time.perf_counter() - start:8.1f} s")


if __name__ == "__main__":
    main()
