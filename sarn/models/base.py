"""What every CTR model takes and returns. Models know tensors, not files or params."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import torch
from torch import nn

from sarn.batch import Batch
from sarn.nn import DenseInit, ItemEmbedding, masked_sum


@dataclass(frozen=True)
class ModelOutput:
    """``logit``: (B,), click probability = sigmoid(logit).

    ``aux_loss``: the model's own weighted extra loss terms (0 when it has none or when
    evaluating); the trainer adds it to the click loss.
    """

    logit: torch.Tensor
    aux_loss: torch.Tensor


class CTRModel(nn.Module):
    """Base class: holds the item embedding shared by every model of Table II.

    ``dense_init`` says how dense and recurrent layers start (:func:`sarn.nn.init.init_dense`:
    ``torch``'s defaults or ``glorot``, the reference TensorFlow code's).

    A model computes its logit in :meth:`score`. Where the data has a context feature
    (a user's log with a ``context`` column, like the paper's online-ad data), the paper
    does not say how its models take it; here every model gets the same wide term: a
    learned bias per context value added to the logit (see :meth:`attach_context`).
    """

    # False where torch.compile cannot make one graph for every history length: a Python loop
    # over positions is unrolled and compiled again per length; nn.GRU breaks the graph.
    compilable: ClassVar[bool] = True

    def __init__(self, n_items: int, n_categories: int, embedding_dim: int, dense_init: DenseInit) -> None:
        super().__init__()
        self.dense_init = dense_init  # applied by sarn.models.build_model once every layer exists
        self.embedding = ItemEmbedding(n_items, n_categories, embedding_dim)
        self.item_dim = self.embedding.out_dim
        self.context_bias: nn.Embedding | None = None

    @classmethod
    def architecture_problems(cls, **architecture: object) -> list[str]:
        """What the constructor would refuse in ``architecture`` beyond the types of its signature
        (which :mod:`sarn.checks` checks): found without building the model. None by default."""
        return []

    def attach_context(self, n_contexts: int) -> None:
        """Add the per-context logit bias (index 0: unknown context), starting at zero."""
        self.context_bias = nn.Embedding(n_contexts, 1, padding_idx=0)
        nn.init.zeros_(self.context_bias.weight)

    def forward(self, batch: Batch) -> ModelOutput:
        out = self.score(batch)
        if self.context_bias is None:
            return out
        if batch.context is None:
            raise ValueError("the model was built for a context feature but the batch has none")
        return replace(out, logit=out.logit + self.context_bias(batch.context).squeeze(-1))

    def embed(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Target vector t (B, d), history X (B, L, d) with padded rows zeroed, and the mask."""
        target = self.embedding(batch.item, batch.category)
        history = self.embedding(batch.hist_item, batch.hist_category) * batch.mask.unsqueeze(-1)
        return target, history, batch.mask

    def no_aux_loss(self, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(())

    def score(self, batch: Batch) -> ModelOutput:  # pragma: no cover - abstract
        raise NotImplementedError


def sum_pool_features(target: torch.Tensor, history: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """``[t, Σ X, t ⊙ Σ X]``: the head inputs the DIEN repository's baselines share."""
    summed = masked_sum(history, mask)
    return [target, summed, target * summed]
