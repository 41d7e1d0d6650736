"""The samples the training benchmark's rows train on: random full-length histories, and
samples of users generated with Amazon Electronics' sizes through the preprocess stage's code."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np
import torch

from benchmarks.training.rows import ROOT
from sarn.params import Params
from sarn.plan.probe import generated_samples
from sarn.train.batching import DeviceSamples

# Amazon Electronics (data.md): 192,403 users, 63,001 items, 801 categories, 1,689,188
# reviews (8.78 a user, at least 5): the generator is given the same sizes.
ELECTRONICS = {"n_users": 192_403, "n_items": 63_001, "n_categories": 801, "n_interests": 40,
               "interests_per_user": 3, "mean_clicks": 8.78, "min_clicks": 5, "max_clicks": 300,
               "popularity_exponent": 1.0, "start_time": 1_388_534_400, "seed": 0}
ELECTRONICS_STEPS = 2_406  # an epoch: 307,844 training samples in batches of 128, the last one partial
LENGTHS_USERS = 20_000  # enough users for Electronics' length distribution, where its size does not matter


def random_samples(size: int, length: int, n_items: int, n_categories: int, device: torch.device
                   ) -> DeviceSamples:
    """Random sample arrays in the preprocess stage's layout (the plan's probe makes them), every
    history full length."""
    return DeviceSamples(generated_samples(np.full(size, length), length,
                                           {"n_items": n_items, "n_categories": n_categories},
                                           np.random.default_rng(1)), device)


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
    digest = hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:16]
    cache = ROOT / "build" / "bench-electronics" / f"{digest}.npz"
    if not cache.is_file():
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_log(cache, columns_of(as_log(generate_clicks(spec))))
    protocol = ProtocolSpec.model_validate({"min_history": 4, "max_len": max_len, "negative_drop": 0.0,
                                            "seed": 0, "split": {"by": "user", "train": 0.8, "valid": 0.1,
                                                                 "test": 0.1}})
    splits, meta = build_samples(read_log(cache), protocol)
    return splits["train"], meta


DATA = ("embedded default", "Electronics-sized")  # what cached_samples makes


def cached_samples(params: Params, data: str) -> Path:
    """``data``'s training samples in build/bench-samples, made once for every process of a part to
    load (building Electronics-sized samples takes longer than a row's steps): the embedded default as
    params.yaml generates it, or part 3's Electronics-sized samples (:func:`load_cached` reads them)."""
    from sarn.data.arrays import save_arrays

    path = ROOT / "build" / "bench-samples" / f"{data.replace(' ', '-')}.npz"
    if data == "Electronics-sized":
        arrays, meta = electronics_arrays(ELECTRONICS["n_users"], 30)
    else:
        from sarn.data.raw import as_log
        from sarn.data.samples import build_samples
        from sarn.data.synthetic import generate_clicks

        spec = params.datasets["default"]
        splits, meta = build_samples(as_log(generate_clicks(spec.source.generator)), spec.protocol)
        arrays = splits["train"]
    path.parent.mkdir(parents=True, exist_ok=True)
    save_arrays(path, {**arrays, **{key: np.array(meta[key]) for key in ("n_items", "n_categories")}}, "samples")
    return path


def load_cached(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """The training arrays and the table sizes that :func:`cached_samples` saved."""
    from sarn.data.arrays import load_arrays

    arrays = load_arrays(path, "samples")
    return arrays, {key: int(arrays.pop(key)) for key in ("n_items", "n_categories")}
