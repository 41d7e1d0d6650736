"""SARN (paper eqs. 4-9) as the authors' code computes it (JianqiaoAirport/SARN_CTR, script/model.py).

Choices and deviations, all recorded in the report and in docs/protocol.md:
- the loss scale of the code is kept: 0.5·BCE + α·L_reg + β·L_aux (the trainer supplies
  the click loss of every model, :mod:`sarn.models.relational` the two extra terms);
- the max-pools always include one zero vector by default (the code includes the zeros of
  padding only when a history is shorter than its batch's longest, ``max_pool_zero:
  padded``), so that a prediction does not depend on its batch;
- the attention and regressor first layers are applied per item and combined per pair
  (exact, by linearity of g_ij), instead of per pair, and no pair-sized tensor is kept
  for the backward pass (see :class:`sarn.nn.relation.SimilitudePairs` and
  :class:`sarn.nn.attention.AttentiveMaxPool`): same values and gradients, far less memory;
- sampled negatives at padded positions are zeroed before the auxiliary net, so the
  content of padding never reaches its batch normalisation.
"""

from __future__ import annotations

import torch

from sarn.models.relational import RelationalModel, RelationalView
from sarn.nn import (
    BatchNormMode,
    DenseInit,
    DiceEval,
    Index0,
    MaxPoolZero,
    SimilitudePairs,
    SimilitudeRelation,
)


class SARN(RelationalModel):
    def __init__(
        self,
        n_items: int,
        n_categories: int,
        *,
        embedding_dim: int,
        relation_dim: int,
        attention_hidden: int,
        regressor_hidden: int,
        aux_hidden: list[int],
        head: list[int],
        alpha: float,
        beta: float,
        batchnorm: BatchNormMode,
        dice_eval: DiceEval,
        dense_init: DenseInit,
        index0: Index0,
        max_pool_zero: MaxPoolZero,
    ) -> None:
        super().__init__(n_items, n_categories, embedding_dim, attention_hidden, regressor_hidden, aux_hidden,
                         head, alpha, beta, batchnorm, dice_eval, dense_init, index0, max_pool_zero)
        self.relation = SimilitudeRelation(self.item_dim, relation_dim)

    def pair_vectors(self, history: torch.Tensor) -> tuple[SimilitudePairs, torch.Tensor]:
        rel = self.relation(history)
        return SimilitudePairs(rel, history), rel

    def column_summary(self, view: RelationalView) -> torch.Tensor:
        """h_j = Σ_i g_ij / len with g_ij = x_j + R_ij x_i, without forming the pairs.

        As in the code, the sum runs over all L rows, padded rows included (each adds x_j).
        """
        history, rel = view.history, view.relation
        assert rel is not None
        count = view.mask.sum(dim=1).clamp(min=1.0)[:, None, None]
        return (history.shape[1] * history + rel.transpose(1, 2) @ history) / count
