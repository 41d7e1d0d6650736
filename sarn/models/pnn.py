"""PNN (Qu et al., 2016) as the DIEN repository's baseline computes it.

head([t, Σ X, t ⊙ Σ X]) with PReLU: the product layer is the element-wise product of
the target with the summed history, not the full inner/outer product layer of the PNN
paper. We follow the reference code, as the SARN authors' comparison did.
"""

from __future__ import annotations

import torch

from sarn.batch import Batch
from sarn.models.base import CTRModel, ModelOutput
from sarn.nn import Activation, BatchNormMode, DenseInit, DiceEval, Index0, OutputHead


class PNN(CTRModel):
    pools_by_sum = True
    def __init__(
        self,
        n_items: int,
        n_categories: int,
        *,
        embedding_dim: int,
        head: list[int],
        activation: Activation,
        batchnorm: BatchNormMode,
        dice_eval: DiceEval,
        dense_init: DenseInit,
        index0: Index0,
    ) -> None:
        super().__init__(n_items, n_categories, embedding_dim, dense_init, index0)
        self.head = OutputHead(3 * self.item_dim, head, activation, batchnorm, dice_eval)

    def score(self, batch: Batch) -> ModelOutput:
        target, history, mask = self.embed(batch)
        logit = self.head(torch.cat(self.sum_pool_features(target, history, mask), dim=-1))
        return ModelOutput(logit, self.no_aux_loss(logit))
