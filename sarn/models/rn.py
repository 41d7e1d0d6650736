"""RN, the paper's own baseline: SARN's pipeline with an MLP relation (paper eq. 10).

g_ij = MLP([x_i ; x_j]) with one hidden ReLU layer (36 units) and output size d, then
the same attentive max-pooling and output MLP as SARN. The code's RN is not public: the
paper says RN differs from SARN only in its relational module, which may or may not
include SARN's two extra losses, so params.yaml runs both readings: ``rn`` without them
(α = β = 0) and ``rn_aux`` with them (α = β = 1, the auxiliary summary averaging g_ij over
the valid rows i). The first layer is applied per item and summed per pair (exact, it is
linear); unlike SARN's g, the MLP is not zero on padded pairs, so padded pairs are masked
out of the pooling. The extra losses of ``rn_aux`` keep SARN's masks (rows i only), so the
relations of padded columns j, zero in SARN, are non-zero terms of them here.
"""

from __future__ import annotations

import torch
from torch import nn

from sarn.models.relational import RelationalModel
from sarn.nn import BatchNormMode, DenseInit, DiceEval, Index0, MaterialisedPairs, MaxPoolZero


class RN(RelationalModel):
    def __init__(
        self,
        n_items: int,
        n_categories: int,
        *,
        embedding_dim: int,
        relation_hidden: int,
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
        d = self.item_dim
        self.source = nn.Linear(d, relation_hidden)  # the x_i half of the first layer
        self.target = nn.Linear(d, relation_hidden, bias=False)  # the x_j half
        self.out = nn.Linear(relation_hidden, d)

    def kernel_parts(self) -> list[tuple[nn.Linear, ...]]:
        """The relation's first layer is one layer on ``[x_i ; x_j]``."""
        return [(self.source, self.target)]

    def pair_vectors(self, history: torch.Tensor) -> tuple[MaterialisedPairs, None]:
        hidden = self.source(history).unsqueeze(2) + self.target(history).unsqueeze(1)
        return MaterialisedPairs(self.out(torch.relu(hidden))), None
