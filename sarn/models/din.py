"""DIN (Zhou et al., KDD 2018) as the reference repositories compute it.

head([t, Σ X, t ⊙ Σ X, attention(t, X)]) with Dice, where the attention unit is
:class:`sarn.nn.TargetAttention` (masked softmax, as both reference repositories do).
Like every model here it has no user-id embedding: with the split by user, test users
are never seen in training, so the reference code's user embedding carries nothing.
"""

from __future__ import annotations

import torch

from sarn.batch import Batch
from sarn.models.base import CTRModel, ModelOutput
from sarn.nn import Activation, BatchNormMode, DenseInit, DiceEval, Index0, OutputHead, TargetAttention


class DIN(CTRModel):
    pools_by_sum = True
    def __init__(
        self,
        n_items: int,
        n_categories: int,
        *,
        embedding_dim: int,
        attention_hidden: list[int],
        head: list[int],
        activation: Activation,
        batchnorm: BatchNormMode,
        dice_eval: DiceEval,
        dense_init: DenseInit,
        index0: Index0,
    ) -> None:
        super().__init__(n_items, n_categories, embedding_dim, dense_init, index0)
        d = self.item_dim
        self.attention = TargetAttention(d, attention_hidden)
        self.head = OutputHead(4 * d, head, activation, batchnorm, dice_eval)

    def score(self, batch: Batch) -> ModelOutput:
        target, history, mask = self.embed(batch)
        attended, _ = self.attention(target, history, mask)
        logit = self.head(torch.cat([*self.sum_pool_features(target, history, mask), attended], dim=-1))
        return ModelOutput(logit, self.no_aux_loss(logit))
