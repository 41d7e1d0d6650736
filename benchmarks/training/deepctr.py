"""DeepCTR-Torch 0.3.0's DIN, the peer of the project's DIN in part 1 (full_length).

It is installed with --no-deps into build/bench-deps, nowhere else, and trained on the
same fields, sizes and optimizer as the project's DIN, with its own loss and step.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import torch

from benchmarks.training.rows import ROOT, Trainer
from sarn.batch import Batch
from sarn.train.batching import BatchIndex, DeviceSamples

DEEPCTR = "deepctr-torch==0.3.0"
DEEPCTR_DIR = ROOT / "build" / "bench-deps"  # the peer lives here only, never in the project's environment

PeerInputs = Callable[[Batch], tuple[torch.Tensor, torch.Tensor]]  # a Batch as the peer's inputs and labels


def install_deepctr() -> bool:
    """DeepCTR-Torch (the peer) with --no-deps into ``build/bench-deps``; it needs only
    torch, tqdm and scikit-learn, which the project already has."""
    if (DEEPCTR_DIR / "deepctr_torch").is_dir():
        return True
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                           str(DEEPCTR_DIR), DEEPCTR], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"{DEEPCTR} could not be installed; its rows are skipped:\n{done.stderr[-1000:]}",
              file=sys.stderr)
    return done.returncode == 0


def deepctr_din(n_items: int, n_categories: int, length: int, architecture: dict, device: torch.device
                ) -> tuple[torch.nn.Module, PeerInputs]:
    """DeepCTR-Torch's DIN on the same fields and sizes as the project's DIN; returns the
    model and a function turning a project Batch into its input matrix and labels."""
    sys.path.insert(0, str(DEEPCTR_DIR))
    from deepctr_torch.inputs import SparseFeat, VarLenSparseFeat, build_input_features
    from deepctr_torch.models import DIN

    dim = architecture["embedding_dim"]
    columns = [SparseFeat("item", n_items, embedding_dim=dim),
               SparseFeat("category", n_categories, embedding_dim=dim),
               VarLenSparseFeat(SparseFeat("hist_item", n_items, embedding_dim=dim, embedding_name="item"),
                                maxlen=length, length_name="seq_length"),
               VarLenSparseFeat(SparseFeat("hist_category", n_categories, embedding_dim=dim,
                                           embedding_name="category"),
                                maxlen=length, length_name="seq_length")]
    # Its DNN cannot take Dice here (DIN builds the DNN with 3-d Dice for 2-d inputs), so
    # its head gets PReLU: cheaper than the project's Dice head, which favours the peer.
    net = DIN(columns, ["item", "category"], dnn_hidden_units=tuple(architecture["head"]),
              dnn_activation="prelu", att_hidden_size=tuple(architecture["attention_hidden"]),
              att_activation="Dice", device=str(device))
    index = build_input_features(columns)

    def inputs(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        parts = {"item": batch.item[:, None], "category": batch.category[:, None],
                 "hist_item": batch.hist_item, "hist_category": batch.hist_category,
                 "seq_length": batch.mask.sum(1, keepdim=True).long()}
        return torch.cat([parts[name] for name in index], dim=1).float(), batch.label

    return net, inputs


def deepctr_trainer(net: torch.nn.Module, inputs: PeerInputs, optimizer: torch.optim.Optimizer,
                    samples: DeviceSamples) -> Trainer:
    """DeepCTR's own step (``BaseModel.fit``): summed BCE plus its regularisation."""

    def train(batches: list[BatchIndex]) -> None:
        net.train()
        for part in batches:
            x, y = inputs(samples.batch(part))
            loss = torch.nn.functional.binary_cross_entropy(net(x).squeeze(1), y, reduction="sum")
            loss = loss + net.get_regularization_loss() + net.aux_loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return train
