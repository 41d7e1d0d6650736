"""Initial weights of dense and recurrent layers: PyTorch's defaults, or TensorFlow's.

The reference code is TensorFlow 1.x: a dense layer starts Glorot-uniform with a zero
bias, and a GRU cell starts both gate blocks' bias at 1.0 (TF's GRUCell), its kernels
Glorot-uniform over the concatenated ``[x, h]`` input. PyTorch starts a layer uniform in
±1/sqrt(fan_in) with a bias drawn the same way. Embedding tables start Glorot-uniform
under both schemes (see :class:`sarn.nn.embedding.ItemEmbedding`).
"""

from __future__ import annotations

import math
from typing import Literal, Protocol, runtime_checkable

import torch
from torch import nn

DenseInit = Literal["torch", "glorot"]


@runtime_checkable
class TensorFlowInit(Protocol):
    """A layer that knows how TensorFlow would start its own parameters (recurrent cells)."""

    def init_like_tensorflow(self) -> None: ...


def glorot_block_(weight: torch.Tensor, fan_in: int, fan_out: int) -> None:
    """Fill ``weight`` uniformly in ±sqrt(6 / (fan_in + fan_out)), TF's glorot_uniform for a
    kernel of that shape (also when ``weight`` is one block of a larger kernel)."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        weight.uniform_(-bound, bound)


def init_dense(model: nn.Module, scheme: DenseInit) -> None:
    """Start ``model``'s dense and recurrent layers under ``scheme`` (``torch``: as built).

    ``glorot``: layers that know TensorFlow's scheme for themselves apply it; every other
    ``nn.Linear`` gets a Glorot-uniform weight and a zero bias.
    """
    if scheme == "torch":
        return
    own: set[int] = set()
    for module in model.modules():
        if isinstance(module, TensorFlowInit) and module is not model:
            module.init_like_tensorflow()
            own.update(id(p) for p in module.parameters())
    for module in model.modules():
        if isinstance(module, nn.Linear) and id(module.weight) not in own:
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
