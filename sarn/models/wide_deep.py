"""Wide&Deep (Cheng et al., 2016) as the DIEN repository computes it, with the paper's pooling.

deep = head([t, mean X]) with PReLU; wide = Linear([t, mean X, t ⊙ mean X] → 2); the two
2-unit outputs are added before the softmax. The DIEN code pools the history by sum;
the SARN paper says it adds *average* pooling of the visited items, which we follow.
The DIEN code also scales Wide&Deep's learning rate by 0.1; params.yaml uses the paper's
common setting (Adam 0.01) unless changed there.
"""

from __future__ import annotations

import torch
from torch import nn

from sarn.models.base import Batch, CTRModel, ModelOutput
from sarn.nn import OutputHead, masked_mean
from sarn.nn.activation import Activation, DiceEval
from sarn.nn.head import BatchNormMode


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
    ) -> None:
        super().__init__(n_items, n_categories, embedding_dim)
        d = self.item_dim
        self.deep = OutputHead(2 * d, head, activation, batchnorm, dice_eval)
        self.wide = nn.Linear(3 * d, 2)

    def score(self, batch: Batch) -> ModelOutput:
        target, history, mask = self.embed(batch)
        mean = masked_mean(history, mask)
        wide = self.wide(torch.cat([target, mean, target * mean], dim=-1))
        logit = self.deep(torch.cat([target, mean], dim=-1)) + (wide[:, 0] - wide[:, 1])
        return ModelOutput(logit, self.no_aux_loss(logit))
