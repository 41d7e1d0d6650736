"""The pipeline SARN and the paper's RN baseline share (paper Fig. 2), with SARN's two extra losses.

pair vectors g_ij → attentive max-pooling with the target → output MLP on
``[t, u, t ⊙ mean X, max X, mean X]`` (batch norm → 50 (bias) → Dice → 10 → Dice → 2, the
later layers bias-free as in the code). Subclasses say how g_ij is made.

The paper's two extra training losses (eq. 5) live here too, weighted by ``alpha`` and
``beta``: the relative positional loss regresses each pair's distance from g_ij (eq. 4),
and the auxiliary loss (DIEN's negative sampling, adapted) asks a summary h_j of column j
of the pairs to tell the clicked x_j from a sampled negative. SARN trains with both; the
paper's RN is read here as without them ("rn"), and "rn_aux" is RN with them, since the
paper's sentence that RN differs from SARN "only" in its relational module admits both.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from sarn.batch import Batch
from sarn.models.base import CTRModel, ModelOutput
from sarn.nn import (
    AttentiveMaxPool,
    BatchNormMode,
    ClickHead,
    DenseInit,
    DiceEval,
    Index0,
    MaxPoolZero,
    OutputHead,
    Pairs,
    masked_max,
    masked_mean,
)


class RelationalView(NamedTuple):
    """t (B, d), X (B, L, d), mask (B, L), relation R (B, L, L) or None, the pairs g,
    user vector u (B, d) and attention scores s (B, L, L), zero on padded pairs."""

    target: torch.Tensor
    history: torch.Tensor
    mask: torch.Tensor
    relation: torch.Tensor | None
    pairs: Pairs
    user: torch.Tensor
    scores: torch.Tensor


class RelationalModel(CTRModel):
    def __init__(
        self,
        n_items: int,
        n_categories: int,
        embedding_dim: int,
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
        super().__init__(n_items, n_categories, embedding_dim, dense_init, index0)
        d = self.item_dim
        self.alpha, self.beta = alpha, beta
        self.max_pool_zero = max_pool_zero
        self.pool = AttentiveMaxPool(d, attention_hidden, max_pool_zero)
        self.head = OutputHead(5 * d, head, "dice", batchnorm, dice_eval, bias=[True] + [False] * len(head))
        # Each extra loss's net exists only where its weight is positive (no idle parameters).
        self.regressor_in = nn.Linear(d, regressor_hidden) if alpha else None
        self.regressor_out = nn.Linear(regressor_hidden, 1) if alpha else None
        self.aux_net = ClickHead(2 * d, aux_hidden, batchnorm) if beta else None

    @property
    def batch_dependent(self) -> bool:
        """Also where the max-pools take the zeros of padding: whether a history has any depends
        on the batch's longest."""
        return super().batch_dependent or self.max_pool_zero == "padded"

    def pair_vectors(self, history: torch.Tensor) -> tuple[Pairs, torch.Tensor | None]:
        """The pairs g of a history (B, L, d) and the relation R (B, L, L), or None."""
        raise NotImplementedError

    def column_summary(self, view: RelationalView) -> torch.Tensor:
        """h_j = Σ_i g_ij / len over the valid rows i, (B, L, d): what the auxiliary loss scores."""
        count = view.mask.sum(dim=1).clamp(min=1.0)[:, None, None]
        return (view.pairs.full(slice(None)) * view.mask[:, :, None, None]).sum(dim=1) / count

    def relational_view(self, batch: Batch) -> RelationalView:
        """Everything computed before the output MLP (also what Figs. 5 and 6 plot)."""
        target, history, mask = self.embed(batch)
        pairs, relation = self.pair_vectors(history)
        pair_mask = mask.unsqueeze(2) * mask.unsqueeze(1)
        user, scores = self.pool(target, pairs, pair_mask)
        return RelationalView(target, history, mask, relation, pairs, user, scores)

    def score(self, batch: Batch) -> ModelOutput:
        view = self.relational_view(batch)
        target, history, mask = view.target, view.history, view.mask
        mean = masked_mean(history, mask)
        features = torch.cat([target, view.user, target * mean, masked_max(history, mask, self.max_pool_zero), mean], dim=-1)
        logit = self.head(features)
        aux = self.extra_loss(batch, view) if self.training else self.no_aux_loss(logit)
        return ModelOutput(logit, aux)

    def extra_loss(self, batch: Batch, view: RelationalView) -> torch.Tensor:
        """α·L_reg + β·L_aux (paper eq. 5); a zero weight skips its loss."""
        loss = self.no_aux_loss(view.user)
        if self.alpha:
            loss = loss + self.alpha * self._position_loss(view.pairs, view.mask)
        if self.beta:
            loss = loss + self.beta * self._click_loss(batch, view)
        return loss

    def _position_loss(self, pairs: Pairs, mask: torch.Tensor) -> torch.Tensor:
        """Eq. 4: regress d(i, j) = sign(j − i)·sqrt(|j − i| / L) from g_ij; rows masked."""
        assert self.regressor_in is not None and self.regressor_out is not None
        length = mask.shape[1]
        pred = pairs.score(self.regressor_in.weight, self.regressor_in.bias, self.regressor_out.weight.squeeze(0))
        pred = pred + self.regressor_out.bias
        pos = torch.arange(length, device=pred.device, dtype=pred.dtype)
        gap = pos.unsqueeze(0) - pos.unsqueeze(1)  # gap[i, j] = j - i
        target = torch.sign(gap) * torch.sqrt(gap.abs() / length)
        return (mask.unsqueeze(2) * (pred - target) ** 2).mean()

    def _click_loss(self, batch: Batch, view: RelationalView) -> torch.Tensor:
        """DIEN's negative-sampling loss on the column summaries h_j, positions shuffled once per batch."""
        assert self.aux_net is not None
        history, mask = view.history, view.mask
        summary = self.column_summary(view)
        shuffled = summary[:, torch.randperm(history.shape[1], device=history.device)]
        negative = self.embedding(batch.neg_item, batch.neg_category) * mask.unsqueeze(-1)
        log_p_click, _ = self.aux_net(torch.cat([shuffled, history], dim=-1))
        _, log_p_no_click = self.aux_net(torch.cat([shuffled, negative], dim=-1))
        return -(mask * (log_p_click + log_p_no_click)).mean()
