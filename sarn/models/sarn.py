"""SARN (paper eqs. 4-9) as the authors' code computes it (../shared/reference/models.md).

Choices and deviations, all recorded in the report:
- the loss scale of the code is kept: 0.5·BCE + α·L_reg + β·L_aux (the trainer supplies
  the click loss of every model, this file the two extra terms);
- the max-pools always include one zero vector (the code includes the zeros of padding
  only when a history is shorter than its batch's longest), so that a prediction does
  not depend on its batch;
- the attention and regressor first layers are applied per item and combined per pair
  (exact, by linearity of g_ij), instead of per pair, and no pair-sized tensor is kept
  for the backward pass (see :class:`sarn.nn.relation.SimilitudePairs` and
  :class:`sarn.nn.attention.AttentiveMaxPool`): same values and gradients, far less memory;
- sampled negatives at padded positions are zeroed before the auxiliary net, so the
  content of padding never reaches its batch normalisation.
"""

from __future__ import annotations

import torch
from torch import nn

from sarn.models.base import Batch
from sarn.models.relational import RelationalModel, RelationalView
from sarn.nn import ClickHead, SimilitudePairs, SimilitudeRelation
from sarn.nn.activation import DiceEval
from sarn.nn.head import BatchNormMode


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
    ) -> None:
        super().__init__(n_items, n_categories, embedding_dim, attention_hidden, head, batchnorm, dice_eval)
        d = self.item_dim
        self.alpha, self.beta = alpha, beta
        self.relation = SimilitudeRelation(d, relation_dim)
        self.regressor_in = nn.Linear(d, regressor_hidden)
        self.regressor_out = nn.Linear(regressor_hidden, 1)
        self.aux_net = ClickHead(2 * d, aux_hidden, batchnorm)

    def pair_vectors(self, history: torch.Tensor) -> tuple[SimilitudePairs, torch.Tensor]:
        rel = self.relation(history)
        return SimilitudePairs(rel, history), rel

    def extra_loss(self, batch: Batch, view: RelationalView) -> torch.Tensor:
        assert view.relation is not None
        loss = self.no_aux_loss(view.user)
        if self.alpha:
            loss = loss + self.alpha * self._position_loss(view.pairs, view.mask)
        if self.beta:
            loss = loss + self.beta * self._click_loss(batch, view.history, view.relation, view.mask)
        return loss

    def _position_loss(self, pairs: SimilitudePairs, mask: torch.Tensor) -> torch.Tensor:
        """Eq. 4: regress d(i, j) = sign(j − i)·sqrt(|j − i| / L) from g_ij; rows masked."""
        length = mask.shape[1]
        pred = pairs.score(self.regressor_in.weight, self.regressor_in.bias, self.regressor_out.weight.squeeze(0))
        pred = pred + self.regressor_out.bias
        pos = torch.arange(length, device=pred.device, dtype=pred.dtype)
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
        negative = self.embedding(batch.neg_item, batch.neg_category) * mask.unsqueeze(-1)
        log_p_click, _ = self.aux_net(torch.cat([shuffled, history], dim=-1))
        _, log_p_no_click = self.aux_net(torch.cat([shuffled, negative], dim=-1))
        return -(mask * (log_p_click + log_p_no_click)).mean()
