"""GRU baseline (after Zhang et al., 2014): a GRU over the visited items.

head([t, h, Σ X, t ⊙ Σ X]) where h is the GRU state after the last valid click. The
head's activation is a parameter (params.yaml: PReLU, as the DIEN repository's other
non-attention baselines use). ``gru_reset`` places the reset gate as the DIEN paper and
PyTorch do (``after_product``) or as the code's TensorFlow GRUCell does (``before_product``);
see :mod:`sarn.nn.recurrent`.
"""

from __future__ import annotations

import torch

from sarn.batch import Batch
from sarn.models.base import CTRModel, ModelOutput
from sarn.nn import Activation, BatchNormMode, DenseInit, DiceEval, Index0, OutputHead, PaddedGRU, ResetGate


class GRU(CTRModel):
    pools_by_sum = True
    # Dynamo breaks the graph at nn.GRU (two graphs, an eager GRU between); its experimental
    # allow_rnn compiles again for every history length. TensorFlow's form is a step loop.
    compilable = False

    def __init__(
        self,
        n_items: int,
        n_categories: int,
        *,
        embedding_dim: int,
        hidden: int,
        head: list[int],
        activation: Activation,
        batchnorm: BatchNormMode,
        dice_eval: DiceEval,
        dense_init: DenseInit,
        index0: Index0,
        gru_reset: ResetGate,
    ) -> None:
        super().__init__(n_items, n_categories, embedding_dim, dense_init, index0)
        d = self.item_dim
        self.gru = PaddedGRU(d, hidden, gru_reset)
        self.head = OutputHead(3 * d + hidden, head, activation, batchnorm, dice_eval)

    def score(self, batch: Batch) -> ModelOutput:
        target, history, mask = self.embed(batch)
        _, last = self.gru(history, mask)
        t, summed, product = self.sum_pool_features(target, history, mask)
        logit = self.head(torch.cat([t, last, summed, product], dim=-1))
        return ModelOutput(logit, self.no_aux_loss(logit))
