"""DIEN (Zhou et al., AAAI 2019) as the DIEN repository computes it, with the paper's AUGRU.

Interest extractor GRU over X → states h_t (zero past a history's end, as TF's dynamic_rnn
gives them); DIN's attention unit between the target (first through Linear + PReLU, as the
code does) and h_t, masked softmax over time; AUGRU over h_t with the update gate scaled by
the attention score; head([t, Σ X, t ⊙ Σ X, h′]) with Dice, h′ the AUGRU state after the
last valid click.

Auxiliary loss (weight ``aux_weight``, code: 1): h_t must tell the next clicked item
x_{t+1} from a sampled negative at t+1; aux net batch norm → 100 sigmoid → 50 sigmoid →
2-way softmax; mean over B·(L−1) with padded steps masked (the batch norm still sees
their zero states, as in the code).

Where the code and the paper disagree we follow the paper for AUGRU's gate (see
:class:`sarn.nn.recurrent.AUGRU`); both GRUs place the reset gate by ``gru_reset``
(the paper's equations: ``after_product``; the code's TensorFlow GRUCell: ``before_product``).
The code's head also takes a user embedding, left out here as for every model (test users
are unseen in training).
"""

from __future__ import annotations

import torch
from torch import nn

from sarn.batch import Batch
from sarn.models.base import CTRModel, ModelOutput
from sarn.nn import (
    AUGRU,
    Activation,
    BatchNormMode,
    ClickHead,
    DenseInit,
    DiceEval,
    Index0,
    OutputHead,
    PaddedGRU,
    ResetGate,
    TargetAttention,
)


class DIEN(CTRModel):
    pools_by_sum = True
    compilable = False  # its AUGRU is a Python loop over history positions

    def __init__(
        self,
        n_items: int,
        n_categories: int,
        *,
        embedding_dim: int,
        hidden: int,
        attention_hidden: list[int],
        aux_hidden: list[int],
        aux_weight: float,
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
        self.aux_weight = aux_weight
        self.extractor = PaddedGRU(d, hidden, gru_reset)
        self.query = nn.Sequential(nn.Linear(d, hidden), nn.PReLU(hidden, init=0.1))
        self.attention = TargetAttention(hidden, attention_hidden)
        self.evolution = AUGRU(hidden, hidden, gru_reset)
        self.aux_net = ClickHead(hidden + d, aux_hidden, batchnorm)
        self.head = OutputHead(3 * d + hidden, head, activation, batchnorm, dice_eval)

    def score(self, batch: Batch) -> ModelOutput:
        target, history, mask = self.embed(batch)
        states, _ = self.extractor(history, mask)
        _, weights = self.attention(self.query(target), states, mask)
        final = self.evolution(states, mask, weights)
        logit = self.head(torch.cat([*self.sum_pool_features(target, history, mask), final], dim=-1))
        if not self.training or not self.aux_weight:
            return ModelOutput(logit, self.no_aux_loss(logit))
        return ModelOutput(logit, self.aux_weight * self.next_click_loss(batch, states, history, mask))

    def next_click_loss(
        self, batch: Batch, states: torch.Tensor, history: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """−log p(x_{t+1} | h_t) − log(1 − p(n_{t+1} | h_t)), masked on step t+1."""
        if history.shape[1] < 2:
            return self.no_aux_loss(states)
        step_mask = mask[:, 1:]
        negative = self.embedding(batch.neg_item, batch.neg_category)[:, 1:] * step_mask.unsqueeze(-1)
        h = states[:, :-1]
        log_p_click, _ = self.aux_net(torch.cat([h, history[:, 1:]], dim=-1))
        _, log_p_no_click = self.aux_net(torch.cat([h, negative], dim=-1))
        return -(step_mask * (log_p_click + log_p_no_click)).mean()
