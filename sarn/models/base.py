"""What every CTR model takes and returns. Models know tensors, not files or params."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import torch
from torch import nn

from sarn.batch import Batch
from sarn.nn import DenseInit, Dice, Index0, ItemEmbedding, masked_sum


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
    ``torch``'s defaults or ``glorot``, the reference TensorFlow code's). ``index0`` says
    whether index 0 (padding, and ids unseen in training) is a fixed zero or a learned row
    (:class:`sarn.nn.ItemEmbedding`).

    A model computes its logit in :meth:`score`. Where the data has a context feature
    (a user's log with a ``context`` column, like the paper's online-ad data), the paper
    does not say how its models take it; here every model gets the same wide term: a
    learned bias per context value added to the logit (see :meth:`attach_context`).
    """

    # False where torch.compile cannot make one graph for every history length: a Python loop
    # over positions is unrolled and compiled again per length; nn.GRU breaks the graph.
    compilable: ClassVar[bool] = True
    # True for the DIEN code's models, whose head takes Σ X (:meth:`sum_pool_features`).
    pools_by_sum: ClassVar[bool] = False

    def __init__(self, n_items: int, n_categories: int, embedding_dim: int, dense_init: DenseInit,
                 index0: Index0) -> None:
        super().__init__()
        self.dense_init = dense_init  # applied by sarn.models.build_model once every layer exists
        self.embedding = ItemEmbedding(n_items, n_categories, embedding_dim, index0)
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

    @property
    def batch_dependent(self) -> bool:
        """Whether a prediction in evaluation mode depends on the other samples of its batch: Dice
        on the batch's own statistics, or a learned index 0 summed over the batch's padding."""
        return (any(isinstance(m, Dice) and m.eval_stats == "batch" for m in self.modules())
                or (self.pools_by_sum and self.embedding.padding_vector() is not None))

    def no_aux_loss(self, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(())

    def sum_pool_features(self, target: torch.Tensor, history: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """``[t, Σ X, t ⊙ Σ X]``: the head inputs the DIEN repository's baselines share.

        Σ runs over the valid positions. Where index 0 is learned, the batch's padded
        positions add its vector too, as in the DIEN code, whose sum is not masked: the
        history there is padded with index 0 up to the batch's longest.
        """
        if not self.pools_by_sum:  # batch_dependent reads it
            raise TypeError(f"{type(self).__name__} takes Σ X: its class sets pools_by_sum = True")
        summed = masked_sum(history, mask)
        padding = self.embedding.padding_vector()
        if padding is not None:
            summed = summed + (mask.shape[1] - mask.sum(dim=1, keepdim=True)) * padding
        return [target, summed, target * summed]

    def score(self, batch: Batch) -> ModelOutput:  # pragma: no cover - abstract
        raise NotImplementedError

