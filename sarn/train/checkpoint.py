"""A run's model from its settings and its dataset's vocabulary, new or from a checkpoint.

Every place that builds a model for a processed dataset comes through here, so that a model is
always built for the dataset's whole vocabulary, its context feature included, and a trained one
is rebuilt from its own run folder's record (``run.json``: class and architecture) rather than
from whatever params.yaml says now.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sarn.models import CTRModel, build_model
from sarn.train.record import read_run_record


def model_for(model: str, architecture: dict, meta: dict) -> CTRModel:
    """Registered ``model`` with ``architecture`` for the vocabulary of a processed dataset's
    ``meta.json`` (items, categories and, where the log has one, the context feature)."""
    return build_model(model, meta["n_items"], meta["n_categories"], architecture, meta["n_contexts"])


def save_state(state: dict[str, torch.Tensor], path: Path) -> None:
    """Save weights to ``path`` through a Python file object: a failed write (a full disk) then
    raises the OSError with its errno, where torch writing to a path raises a RuntimeError
    (``basic_ios::clear: iostream error``) that names neither the file nor the cause."""
    with open(path, "wb") as handle:
        torch.save(state, handle)


def load_trained(folder: Path, checkpoint: str, meta: dict) -> CTRModel:
    """The model of the run folder ``folder`` with the weights of its file ``checkpoint``, in
    evaluation mode."""
    run = read_run_record(folder)
    net = model_for(run["class"], run["architecture"], meta)
    net.load_state_dict(torch.load(folder / checkpoint, map_location="cpu", weights_only=True))
    return net.eval()
