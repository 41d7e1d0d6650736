"""Wide&Deep (Cheng et al., 2016) as the DIEN repository computes it, with the paper's pooling.

deep = head([t, mean X]) with PReLU; wide = Linear([t, mean X, t ⊙ mean X] → 2); the two
2-unit outputs are added before the softmax. The DIEN code pools the history by sum;
the SARN paper says it adds *average* pooling of the visited items, which we follow.
Wide&Deep trains like every model here (Adam 0.01); the DIEN code's commits before
2018-10-11 scaled its learning rate by 0.1, its later ones do not.
"""

from __future__ import annotations

import torch
from torch import nn

from sarn.batch import Batch
from sarn.models.base import CTRModel, ModelOutput
from sarn.nn import Activation, BatchNormMode, DenseInit, DiceEval, Index0, OutputHead, masked_mean


class WideDeep(CTRModel):
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
        d = self.item_dim
        self.deep = OutputHead(2 * d, head, activation, batchnorm, dice_eval)
        self.wide = nn.Linear(3 * d, 2)

    def score(self, batch: Batch) -> ModelOutput:
        target, history, mask = self.embed(batch)
        mean = masked_mean(history, mask)
        wide = self.wide(torch.cat([target, mean, target * mean], dim=-1))
        logit = self.deep(torch.cat([target, mean], dim=-1)) + (wide[:, 0] - wide[:, 1])
        return ModelOutput(logit, self.no_aux_loss(logit))
