"""Pair vectors g_ij for relational pooling, and SARN's similitude relation (paper eqs. 6-9).

A relational model scores every pair (i, j) of a history, so what it keeps in memory per
pair decides how long a history fits. Two forms of the pairs share one interface
(:class:`Pairs`): :class:`MaterialisedPairs` holds the (B, L, L, d) tensor (RN's MLP
relation needs it); :class:`SimilitudePairs` holds only the items and R, because SARN's
g_ij = x_j + R_ij x_i is linear in the items, and scores pairs without keeping any
pair-sized tensor for the backward pass.
"""

from __future__ import annotations

import functools
from typing import Protocol

import torch
from torch import nn


def relation_combine(relation: torch.Tensor, values: torch.Tensor, base: torch.Tensor | None = None) -> torch.Tensor:
    """``out[b, i, j] = base[b, j] + relation[b, i, j] · values[b, i]``; ``base`` defaults to ``values``.

    With ``base = values`` = the item vectors this is eq. 6's g_ij. Because g_ij is linear
    in the items, a linear map W x + c of every g_ij equals this combination with
    ``values = W x`` and ``base = W x + c``: O(L·d·h) for the map instead of O(L²·d·h).
    """
    base = values if base is None else base
    return torch.addcmul(base.unsqueeze(1), relation.unsqueeze(-1), values.unsqueeze(2))


# Pair-sized temporaries are made this many elements at a time (a slice of the batch),
# so that memory grows with the batch only through what autograd must keep.
CHUNK_ELEMENTS = 2**24


def batch_slices(batch: int, per_sample: int) -> list[slice]:
    """Consecutive slices of a batch whose pair tensors hold about ``CHUNK_ELEMENTS`` each.

    A batch that fits is one slice, decided by one comparison: under ``torch.compile``
    the slice arithmetic below would pin the compiled graph to one history length and
    compile again for every other, while the comparison holds for a range of lengths.
    """
    if batch * per_sample <= CHUNK_ELEMENTS:
        return [slice(0, batch)]
    step = max(1, CHUNK_ELEMENTS // max(per_sample, 1))
    return [slice(start, min(start + step, batch)) for start in range(0, batch, step)]


class Pairs(Protocol):
    """The pair vectors g (B, L, L, d) of a batch, in whatever form is cheapest to keep."""

    def full(self, rows: slice) -> torch.Tensor:
        """Every g_ij of the samples ``rows``, (b, L, L, d)."""
        ...

    def score(self, weight: torch.Tensor, shift: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``out · ReLU(W g_ij + shift)`` for every pair, (B, L, L): a one-hidden-layer MLP
        on each pair up to its output bias. ``shift`` is (h,) or per sample (B, h)."""
        ...

    def select(self, index: torch.Tensor) -> torch.Tensor:
        """``out[b, c] = g[b, i, j, c]`` at the flat pair index ``index[b, c] = i·L + j``, (B, d)."""
        ...


class MaterialisedPairs:
    """Pairs held as one (B, L, L, d) tensor."""

    def __init__(self, vectors: torch.Tensor) -> None:
        self.vectors = vectors

    def full(self, rows: slice) -> torch.Tensor:
        return self.vectors[rows]

    def score(self, weight: torch.Tensor, shift: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        hidden = nn.functional.linear(self.vectors, weight) + shift.unsqueeze(-2).unsqueeze(-2)
        return hidden.relu_() @ out

    def select(self, index: torch.Tensor) -> torch.Tensor:
        return self.vectors.flatten(1, 2).gather(1, index.unsqueeze(1)).squeeze(1)


class SimilitudePairs:
    """SARN's g_ij = x_j + R_ij x_i, kept as the items x (B, L, d) and R (B, L, L) only."""

    def __init__(self, relation: torch.Tensor, items: torch.Tensor) -> None:
        self.relation, self.items = relation, items

    def full(self, rows: slice) -> torch.Tensor:
        return relation_combine(self.relation[rows], self.items[rows])

    def score(self, weight: torch.Tensor, shift: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        values = nn.functional.linear(self.items, weight)
        return _PairMLP.apply(self.relation, values, values + shift.unsqueeze(-2), out)

    def select(self, index: torch.Tensor) -> torch.Tensor:
        length = self.items.shape[1]
        source = self.items.gather(1, (index // length).unsqueeze(1)).squeeze(1)
        target = self.items.gather(1, (index % length).unsqueeze(1)).squeeze(1)
        return torch.addcmul(target, self.relation.flatten(1).gather(1, index), source)


class _PairMLP(torch.autograd.Function):
    """``s[b, i, j] = out · ReLU(base[b, j] + R[b, i, j] · values[b, i])`` for every pair.

    Autograd would keep the (B, L, L, h) hidden layer for the backward pass and make
    several more of that size there. This recomputes it a slice of the batch at a time
    instead, so the pair-sized memory is bounded by ``CHUNK_ELEMENTS`` whatever B is.
    A batch that fits is one slice, computed without gathering slices into a result:
    fewer operators, which is what a GPU step's time is made of.
    """

    @staticmethod
    def forward(ctx, relation: torch.Tensor, values: torch.Tensor, base: torch.Tensor,
                out: torch.Tensor) -> torch.Tensor:
        # Under autocast the inputs come in mixed precisions: compute in that of ``values``
        # (the output of a linear layer) and hand each gradient back in its input's own.
        ctx.dtypes = [t.dtype for t in (relation, values, base, out)]
        relation, base, out = (t.to(values.dtype) for t in (relation, base, out))
        ctx.save_for_backward(relation, values, base, out)
        parts = [relation_combine(relation[rows], values[rows], base[rows]).relu_() @ out
                 for rows in batch_slices(relation.shape[0], relation[0].numel() * values.shape[-1])]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
        relation, values, base, out = ctx.saved_tensors
        grad = grad.to(values.dtype)
        parts = [_pair_mlp_grads(relation[rows], values[rows], base[rows], out, grad[rows])
                 for rows in batch_slices(relation.shape[0], relation[0].numel() * values.shape[-1])]
        if len(parts) == 1:
            grads = parts[0]
        else:  # per-sample gradients side by side; the shared ``out`` summed over slices, in order
            grads = (*(torch.cat(g) for g in list(zip(*parts, strict=True))[:3]),
                     functools.reduce(torch.add, (p[3] for p in parts)))
        return tuple(g.to(dtype) for g, dtype in zip(grads, ctx.dtypes, strict=True))


def _pair_mlp_grads(relation: torch.Tensor, values: torch.Tensor, base: torch.Tensor, out: torch.Tensor,
                    grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Gradients of :class:`_PairMLP` for one slice of the batch: relation, values, base, out."""
    hidden = relation_combine(relation, values, base).relu_()
    grad_out = torch.einsum("bij,bijh->h", grad, hidden)
    grad_hidden = hidden.gt_(0).mul_(grad.unsqueeze(-1) * out)  # d s / d pre-activation
    return (torch.einsum("bijh,bih->bij", grad_hidden, values), torch.einsum("bijh,bij->bih", grad_hidden, relation),
            grad_hidden.sum(dim=1), grad_out)


def _unit(x: torch.Tensor) -> torch.Tensor:
    """Scale to unit length; a zero vector (padding) stays zero (the code adds 1e-10)."""
    return x / (torch.linalg.vector_norm(x, dim=-1, keepdim=True) + 1e-10)


class SimilitudeRelation(nn.Module):
    """``R_ij = φ(x_i) · ϕ(x_j)`` with ``φ(x) = unit(ReLU(W_φ x))``; both maps bias-free.

    R lies in [0, 1] (non-negative unit vectors) and is 0 wherever x_i or x_j is a
    padded (zero) vector.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.source = nn.Linear(dim, hidden, bias=False)
        self.target = nn.Linear(dim, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phi = _unit(torch.relu(self.source(x)))
        varphi = _unit(torch.relu(self.target(x)))
        return phi @ varphi.transpose(-1, -2)
