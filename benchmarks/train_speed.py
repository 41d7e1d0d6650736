"""Training throughput and peak memory of every model, and SARN against a straightforward graph.

    python benchmarks/train_speed.py [--steps 3] [--batches 128 1024] [--lengths 30 50] [--epoch]

Each (model, batch size, history length) runs in its own process so that its peak
resident memory (``ru_maxrss``) is its own. Histories are full length (the worst case:
every batch padded to L). ``sarn_straightforward`` is SARN with the attention MLP's
first layer and the distance regressor applied to every pair g_ij (the reference
graph); ``sarn`` applies them per item and combines per pair (exact by linearity).
``deepctr_din`` is DeepCTR-Torch 0.3.0's DIN (installed with --no-deps into
build/bench-deps, nowhere else) on the same fields, sizes and optimizer as the project's
DIN, trained with its own loss. ``--epoch`` also times one training epoch on generated
data of Amazon Electronics' size, with the pipeline's length-grouped batches. The ratios
compare runs of the same invocation. Every child runs under the allocator settings that
``python -m sarn`` applies to training. Figures are CPU figures of this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def straightforward_sarn(n_items: int, n_categories: int, architecture: dict):
    """SARN whose per-pair layers run on every materialised pair (no factorisation)."""
    import torch

    from sarn.models.sarn import SARN
    from sarn.nn import relation_combine

    class StraightforwardSARN(SARN):
        def pair_vectors(self, history: torch.Tensor):
            rel = self.relation(history)
            return relation_combine(rel, history), None, rel  # pooling applies W₁ per pair

        def _position_loss(self, history, rel, mask):
            length = history.shape[1]
            pairs = relation_combine(rel, history)
            pred = self.regressor_out(torch.relu(self.regressor_in(pairs))).squeeze(-1)
            pos = torch.arange(length, dtype=history.dtype)
            gap = pos.unsqueeze(0) - pos.unsqueeze(1)
            target = torch.sign(gap) * torch.sqrt(gap.abs() / length)
            return (mask.unsqueeze(2) * (pred - target) ** 2).mean()

    return StraightforwardSARN(n_items, n_categories, **architecture)


DEEPCTR = "deepctr-torch==0.3.0"
DEEPCTR_DIR = ROOT / "build" / "bench-deps"  # the peer lives here only, never in the project's environment


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


def deepctr_din(n_items: int, n_categories: int, length: int, architecture: dict):
    """DeepCTR-Torch's DIN on the same fields and sizes as the project's DIN; returns the
    model and a function turning a project Batch into its input matrix and labels."""
    import torch

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
              att_hidden_size=tuple(architecture["attention_hidden"]), att_activation="Dice", device="cpu")
    index = build_input_features(columns)

    def inputs(batch):
        parts = {"item": batch.item[:, None], "category": batch.category[:, None], "hist_item": batch.hist_item,
                 "hist_category": batch.hist_category, "seq_length": batch.mask.sum(1, keepdim=True).long()}
        return torch.cat([parts[name] for name in index], dim=1).float(), batch.label

    return net, inputs


def measure(model_name: str, batch: int, length: int, steps: int) -> dict:
    """Training samples per second and peak memory of one configuration (child process)."""
    import torch

    from sarn.models import Batch, build_model
    from sarn.params import load
    from sarn.train.loop import click_loss

    params = load(ROOT / "params.yaml")
    torch.set_num_threads(params.runtime.threads)
    torch.manual_seed(0)
    n_items, n_cats = 50_000, 800
    run = {"sarn_straightforward": "sarn", "deepctr_din": "din"}.get(model_name, model_name)
    spec = params.models[run]
    peer = None
    if model_name == "sarn_straightforward":
        net = straightforward_sarn(n_items, n_cats, spec.architecture)
    elif model_name == "deepctr_din":
        net, peer = deepctr_din(n_items, n_cats, length, spec.architecture)
    else:
        net = build_model(spec.model, n_items, n_cats, spec.architecture)
    opt = (torch.optim.Adam if spec.training.optimizer == "adam" else torch.optim.SGD)(
        net.parameters(), lr=spec.training.lr)
    g = torch.Generator().manual_seed(1)

    def ids(n, *shape):
        return torch.randint(1, n, shape, generator=g)

    data = Batch(item=ids(n_items, batch), category=ids(n_cats, batch),
                 timestamp=torch.full((batch,), 1_400_000_000),
                 hist_item=ids(n_items, batch, length), hist_category=ids(n_cats, batch, length),
                 hist_timestamp=1_400_000_000 - ids(10**7, batch, length),
                 neg_item=ids(n_items, batch, length), neg_category=ids(n_cats, batch, length),
                 mask=torch.ones(batch, length), label=torch.randint(0, 2, (batch,), generator=g).float())
    net.train()

    def step():
        if peer is None:
            out = net(data)
            loss = spec.training.click_loss_weight * click_loss(out.logit, data.label) + out.aux_loss
        else:  # DeepCTR's own training step (BaseModel.fit): summed BCE plus its regularisation
            x, y = peer(data)
            loss = torch.nn.functional.binary_cross_entropy(net(x).squeeze(1), y, reduction="sum")
            loss = loss + net.get_regularization_loss() + net.aux_loss
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"model": model_name, "batch": batch, "length": length,
            "samples_per_s": batch * steps / seconds, "peak_mb": peak_mb}


# Amazon Electronics (data.md): 192,403 users, 63,001 items, 801 categories, 1,689,188
# reviews (8.78 a user, at least 5): the generator is given the same sizes.
ELECTRONICS = {"n_users": 192_403, "n_items": 63_001, "n_categories": 801, "n_interests": 40,
               "interests_per_user": 3, "mean_clicks": 8.78, "min_clicks": 5, "max_clicks": 300,
               "popularity_exponent": 1.0, "start_time": 1_388_534_400, "seed": 0}


def electronics_epoch(model_name: str) -> dict:
    """One training epoch on generated data of Electronics' size and history lengths, with
    the pipeline's own batching (length-grouped, padded per batch) and training step."""
    import torch

    from sarn.data.raw import as_log
    from sarn.data.samples import build_samples
    from sarn.data.synthetic import generate_clicks
    from sarn.models import build_model
    from sarn.params import GeneratorSpec, ProtocolSpec, load
    from sarn.train.batching import DeviceSamples
    from sarn.train.loop import train_epoch

    params = load(ROOT / "params.yaml")
    torch.set_num_threads(params.runtime.threads)
    protocol = ProtocolSpec.model_validate({"min_history": 4, "max_len": 30, "negative_drop": 0.0, "seed": 0,
                                            "split": {"by": "user", "train": 0.8, "valid": 0.1, "test": 0.1}})
    splits, meta = build_samples(as_log(generate_clicks(GeneratorSpec(**ELECTRONICS))), protocol)
    train = DeviceSamples(splits["train"], torch.device("cpu"))
    run = "sarn" if model_name == "sarn_straightforward" else model_name
    spec = params.models[run]
    torch.manual_seed(0)
    if model_name == "sarn_straightforward":
        net = straightforward_sarn(meta["n_items"], meta["n_categories"], spec.architecture)
    else:
        net = build_model(spec.model, meta["n_items"], meta["n_categories"], spec.architecture)
    optimizer = torch.optim.Adam(net.parameters(), lr=spec.training.lr)
    batches = train.training_batches(spec.training.batch_size, spec.training.length_sort_chunk,
                                     torch.Generator().manual_seed(0))
    start = time.perf_counter()
    train_epoch(net, optimizer, train, batches, spec.training, model_name, 1)
    seconds = time.perf_counter() - start
    return {"model": model_name, "train_samples": train.size, "users": int(train.size // 2),
            "mean_history": float(splits["train"]["length"].mean()), "seconds": seconds,
            "samples_per_s": train.size / seconds,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _child(args: list[str]) -> dict | None:
    from sarn import ALLOCATOR_ENV

    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=ROOT,
                          env={**ALLOCATOR_ENV, **os.environ}, check=False)
    if proc.returncode != 0:
        print(f"{' '.join(args)} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _ratios(rows: list[dict], ours: str, theirs: str, title: str, batches: list[int], lengths: list[int]) -> None:
    print(f"\n{title} (same run):")
    for batch in batches:
        for length in lengths:
            a = [r for r in rows if (r["model"], r["batch"], r["length"]) == (ours, batch, length)]
            b = [r for r in rows if (r["model"], r["batch"], r["length"]) == (theirs, batch, length)]
            if a and b:
                print(f"  B={batch:5d} L={length:3d}: {a[0]['samples_per_s'] / b[0]['samples_per_s']:.2f}x "
                      f"throughput, {a[0]['peak_mb']:.0f} MB vs {b[0]['peak_mb']:.0f} MB peak")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--lengths", type=int, nargs="+", default=[30, 50])
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--epoch", action="store_true",
                        help="also time one epoch on Electronics-sized generated data (minutes)")
    parser.add_argument("--one", nargs=3, metavar=("MODEL", "BATCH", "LENGTH"), help=argparse.SUPPRESS)
    parser.add_argument("--epoch-one", metavar="MODEL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        model, batch, length = args.one
        print(json.dumps(measure(model, int(batch), int(length), args.steps)))
        return
    if args.epoch_one:
        print(json.dumps(electronics_epoch(args.epoch_one)))
        return

    from sarn.models import MODELS

    models = args.models or [*MODELS, "sarn_straightforward", "deepctr_din"]
    if "deepctr_din" in models and not install_deepctr():
        models.remove("deepctr_din")
    rows = []
    for batch in args.batches:
        for length in args.lengths:
            for model in models:
                r = _child(["--steps", str(args.steps), "--one", model, str(batch), str(length)])
                if r is None:
                    continue
                rows.append(r)
                print(f"{r['model']:22s} B={batch:5d} L={length:3d} {r['samples_per_s']:10.0f} samples/s "
                      f"{r['peak_mb']:8.0f} MB peak", flush=True)
    _ratios(rows, "sarn", "sarn_straightforward", "SARN against the straightforward graph", args.batches, args.lengths)
    _ratios(rows, "din", "deepctr_din", f"The project's DIN against {DEEPCTR}'s DIN", args.batches, args.lengths)
    if args.epoch:
        print(f"\nOne training epoch on generated data of Amazon Electronics' size ({ELECTRONICS['n_users']:,} "
              "users, 8.78 clicks a user, histories up to 30, batch 128):")
        epochs = {}
        for model in ("din", "sarn", "sarn_straightforward"):
            r = _child(["--epoch-one", model])
            if r is None:
                continue
            epochs[model] = r
            print(f"  {model:22s} {r['seconds']:8.1f} s  {r['samples_per_s']:8.0f} samples/s  "
                  f"{r['train_samples']:,} samples, mean history {r['mean_history']:.1f}, "
                  f"{r['peak_mb']:.0f} MB peak", flush=True)
        if "sarn" in epochs and "sarn_straightforward" in epochs:
            print(f"  SARN against the straightforward graph: "
                  f"{epochs['sarn_straightforward']['seconds'] / epochs['sarn']['seconds']:.2f}x")


if __name__ == "__main__":
    main()
