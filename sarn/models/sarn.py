"""SARN (paper eqs. 4-9) as the authors' code computes it (../shared/reference/models.md).

Choices and deviations, all recorded in the report:
- the loss scale of the code is kept: 0.5·BCE + α·L_reg + β·L_aux (the trainer supplies
  the 0.5·BCE click loss of every model, this file the two extra terms);
- the max-pools always include one zero vector (the code includes the zeros of padding
  only when a history is shorter than its batch's longest), so that a prediction does
  not depend on its batch;
- the attention and regressor first layers are applied per item and combined per pair
  (exact, by linearity of g_ij), instead of per pair.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from sarn.models.base import Batch, CTRModel, ModelOutput
from sarn.nn import (
    AttentiveMaxPool,
    ClickHead,
    OutputHead,
    SimilitudeRelation,
    masked_max,
    masked_mean,
    relation_combine,
)
from sarn.nn.activation import DiceEval
from sarn.nn.head import BatchNormMode


class RelationalView(NamedTuple):
    """t (B, d), X (B, L, d), mask (B, L), R (B, L, L), user vector u (B, d), scores s (B, L, L)."""

    target: torch.Tensor
    history: torch.Tensor
    mask: torch.Tensor
    relation: torch.Tensor
    user: torch.Tensor
    scores: torch.Tensor


class SARN(CTRModel):
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
    ) -> None:
        super().__init__(n_items, n_categories, embedding_dim)
        d = self.item_dim
        self.alpha, self.beta = alpha, beta
        self.relation = SimilitudeRelation(d, relation_dim)
        self.pool = AttentiveMaxPool(d, attention_hidden)
        self.regressor_in = nn.Linear(d, regressor_hidden)
        self.regressor_out = nn.Linear(regressor_hidden, 1)
        self.aux_net = ClickHead(2 * d, aux_hidden, batchnorm)
        # The code's head: 50 units with bias, then bias-free layers.
        self.head = OutputHead(5 * d, head, "dice", batchnorm, dice_eval, bias=[True] + [False] * len(head))

    def relational_view(self, batch: Batch) -> RelationalView:
        """Everything SARN computes before its output MLP (also what Figs. 5 and 6 plot)."""
        target, history, mask = self.embed(batch)
        rel = self.relation(history)
        pairs = relation_combine(rel, history)
        pair_mask = mask.unsqueeze(2) * mask.unsqueeze(1)
        projection = relation_combine(rel, self.pool.pair(history))
        user, scores = self.pool(target, pairs, pair_mask, projection)
        return RelationalView(target, history, mask, rel, user, scores)

    def forward(self, batch: Batch) -> ModelOutput:
        view = self.relational_view(batch)
        target, history, mask = view.target, view.history, view.mask
        mean = masked_mean(history, mask)
        features = torch.cat([target, view.user, target * mean, masked_max(history, mask), mean], dim=-1)
        logit = self.head(features)
        if not self.training:
            return ModelOutput(logit, self.no_aux_loss(logit))
        aux = self.alpha * self._position_loss(history, view.relation, mask)
        aux = aux + self.beta * self._click_loss(batch, history, view.relation, mask)
        return ModelOutput(logit, aux)

    def _position_loss(self, history: torch.Tensor, rel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Eq. 4: regress d(i, j) = sign(j − i)·sqrt(|j − i| / L) from g_ij; rows masked."""
        length = history.shape[1]
        hidden = relation_combine(rel, nn.functional.linear(history, self.regressor_in.weight))
        pred = self.regressor_out(torch.relu(hidden + self.regressor_in.bias)).squeeze(-1)
        pos = torch.arange(length, device=history.device, dtype=history.dtype)
        gap = pos.unsqueeze(0) - pos.unsqueeze(1)  # gap[i, j] = j - i
        target = torch.sign(gap) * torch.sqrt(gap.abs() / length)
        return (mask.unsqueeze(2) * (pred - target) ** 2).mean()

    def _click_loss(
        self, batch: Batch, history: torch.Tensor, rel: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """DIEN's negative-sampling loss on h_j = Σ_i g_ij / len, positions shuffled once per batch.

        As in the code, the sum runs over all L rows, padded rows included (each adds x_j).
        """
        length = history.shape[1]
        count = mask.sum(dim=1).clamp(min=1.0)[:, None, None]
        summary = (length * history + rel.transpose(1, 2) @ history) / count
        shuffled = summary[:, torch.randperm(length, device=history.device)]
        negative = self.embedding(batch.neg_item, batch.neg_category)
        log_p_click, _ = self.aux_net(torch.cat([shuffled, history], dim=-1))
        _, log_p_no_click = self.aux_net(torch.cat([shuffled, negative], dim=-1))
        return -(mask * (log_p_click + log_p_no_click)).mean()
