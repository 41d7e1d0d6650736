"""RN, the paper's own baseline: SARN's pipeline with an MLP relation (paper eq. 10).

g_ij = MLP([x_i ; x_j]) with one hidden ReLU layer (36 units) and output size d, then
the same attentive max-pooling and output MLP as SARN, and neither of SARN's two extra
losses. The first layer is applied per item and summed per pair (exact, it is linear);
unlike SARN's g, the MLP is not zero on padded pairs, so padded pairs are masked out of
the pooling (the code's RN is not public; this is the natural reading).
"""

from __future__ import annotations

import torch
from torch import nn

from sarn.models.relational import RelationalModel
from sarn.nn.activation import DiceEval
from sarn.nn.head import BatchNormMode
from sarn.nn.relation import MaterialisedPairs


class RN(RelationalModel):
    def __init__(
        self,
        n_items: int,
        n_categories: int,
        *,
        embedding_dim: int,
        relation_hidden: int,
        attention_hidden: int,
        head: list[int],
        batchnorm: BatchNormMode,
        dice_eval: DiceEval,
    ) -> None:
        super().__init__(n_items, n_categories, embedding_dim, attention_hidden, head, batchnorm, dice_eval)
        d = self.item_dim
        self.source = nn.Linear(d, relation_hidden)  # the x_i half of the first layer
        self.target = nn.Linear(d, relation_hidden, bias=False)  # the x_j half
        self.out = nn.Linear(relation_hidden, d)

    def pair_vectors(self, history: torch.Tensor) -> tuple[MaterialisedPairs, None]:
        hidden = self.source(history).unsqueeze(2) + self.target(history).unsqueeze(1)
        return MaterialisedPairs(self.out(torch.relu(hidden))), None
