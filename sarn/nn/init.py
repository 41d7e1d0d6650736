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


@runtime_checkable
class SplitKernels(Protocol):
    """A layer that computes one dense layer of a concatenation, ``W [a; b] + c``, as one
    ``nn.Linear`` a part, ``W_a a + W_b b + c``, because one part is shared by many rows (SARN's
    target beside every pair). Each part must start as its block of the whole layer would."""

    def kernel_parts(self) -> list[tuple[nn.Linear, ...]]:
        """Each layer so split, as its parts in the concatenation's order (the bias on one part)."""
        ...


def init_as_one_layer_(parts: tuple[nn.Linear, ...], scheme: DenseInit) -> None:
    """Start ``parts`` as one dense layer over their concatenated inputs would start: the bounds
    count the whole layer's fan-in (and fan-out), not each part's."""
    fan_in, fan_out = sum(part.in_features for part in parts), parts[0].out_features
    bound = math.sqrt(6.0 / (fan_in + fan_out)) if scheme == "glorot" else 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        for part in parts:
            part.weight.uniform_(-bound, bound)
            if part.bias is None:
                continue
            if scheme == "glorot":
                part.bias.zero_()
            else:
                part.bias.uniform_(-1.0 / math.sqrt(fan_in), 1.0 / math.sqrt(fan_in))


def glorot_block_(weight: torch.Tensor, fan_in: int, fan_out: int) -> None:
    """Fill ``weight`` uniformly in ±sqrt(6 / (fan_in + fan_out)), TF's glorot_uniform for a
    kernel of that shape (also when ``weight`` is one block of a larger kernel)."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        weight.uniform_(-bound, bound)


def init_dense(model: nn.Module, scheme: DenseInit) -> None:
    """Start ``model``'s dense and recurrent layers under ``scheme``.

    Under both schemes a layer split into parts (:class:`SplitKernels`) starts as the one layer
    it computes. ``torch``: every other layer as built. ``glorot``: layers that know
    TensorFlow's scheme for themselves apply it; every other ``nn.Linear`` gets a
    Glorot-uniform weight and a zero bias.
    """
    own: set[int] = set()
    for module in model.modules():
        if isinstance(module, SplitKernels):
            for parts in module.kernel_parts():
                init_as_one_layer_(parts, scheme)
                own.update(id(part.weight) for part in parts)
    if scheme == "torch":
        return
    for module in model.modules():
        if isinstance(module, TensorFlowInit) and module is not model:
            module.init_like_tensorflow()
            own.update(id(p) for p in module.parameters())
    for module in model.modules():
        if isinstance(module, nn.Linear) and id(module.weight) not in own:
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
