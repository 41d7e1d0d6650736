"""What a plan needs of a dataset: its split sizes, its vocabulary and its history lengths.

Taken from its processed folder where the preprocess stage has run (exact), generated in memory
where params.yaml generates the dataset (the embedded default: exact, the generator is seeded), and
otherwise assumed from the paper's Table I (users, items, categories, interactions): users are
generated with its clicks a user (the generator's geometric counts above the k-core's minimum) and
cut into samples by the dataset's own protocol, and the sizes scaled from them to its users.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sarn.data.processed import META_FILE, STATS_FILE, split_sizes
from sarn.errors import DataError
from sarn.params import DatasetSpec, GeneratorSpec

# Users generated to assume a Table I dataset's samples and lengths: enough for its length distribution.
ASSUMED_USERS = 20_000


@dataclass(frozen=True)
class DatasetShape:
    """A dataset as a plan sees it; ``source`` says where the figures come from."""

    sizes: dict[str, int]  # samples of each split
    meta: dict  # n_items, n_categories and n_contexts, as the processed meta.json has them
    lengths: np.ndarray  # stored history lengths of the training samples (or of a generated share)
    source: str


def dataset_shape(name: str, spec: DatasetSpec, processed: Path) -> DatasetShape:
    """The shape of dataset ``name`` (``processed``: the root of the processed folders)."""
    folder = processed / name
    if (folder / STATS_FILE).is_file():
        with np.load(folder / "train.npz", allow_pickle=False) as arrays:
            lengths = arrays["length"]
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        return DatasetShape(split_sizes(folder), meta, lengths, f"{folder} (preprocessed)")
    if spec.source.kind == "synthetic":
        return _generated(spec, spec.source.generator, 1.0, None,
                          "generated as params.yaml generates it (not preprocessed yet)")
    from sarn.report.paper import table1

    paper = table1()
    if name not in paper:
        raise DataError(f"datasets.{name}: no processed data in {folder} and no published size to assume: "
                        f"run its preprocess stage first (python -m sarn preprocess, or dvc repro "
                        f"preprocess@{name})")
    users, items, categories, interactions = paper[name]
    core = spec.source.core.users  # every user keeps at least this many clicks
    generator = GeneratorSpec(n_users=ASSUMED_USERS, n_items=1_000, n_categories=100, n_interests=40,
                              interests_per_user=3, mean_clicks=max(interactions / users, core),
                              min_clicks=core, max_clicks=10_000, popularity_exponent=1.0,
                              start_time=1_388_534_400, seed=0)
    return _generated(spec, generator, users / ASSUMED_USERS, (items + 1, categories + 1),
                      f"assumed from the paper's Table I ({users:,} users, {items:,} items, "
                      f"{interactions / users:.2f} clicks a user; not preprocessed yet)")


def _generated(spec: DatasetSpec, generator: GeneratorSpec, scale: float, vocabulary: tuple[int, int] | None,
               source: str) -> DatasetShape:
    """Samples of generated users cut by ``spec``'s protocol, their sizes times ``scale``, and
    ``vocabulary`` (items, categories) in place of theirs where given."""
    from sarn.data.raw import as_log
    from sarn.data.samples import build_samples
    from sarn.data.synthetic import generate_clicks

    splits, meta = build_samples(as_log(generate_clicks(generator)), spec.protocol)
    vocab = {key: meta[key] for key in ("n_items", "n_categories", "n_contexts")}
    if vocabulary is not None:
        vocab |= {"n_items": vocabulary[0], "n_categories": vocabulary[1]}
    sizes = {split: round(arrays["label"].size * scale) for split, arrays in splits.items()}
    return DatasetShape(sizes, vocab, splits["train"]["length"], source)
