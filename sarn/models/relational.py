"""The pipeline SARN and the paper's RN baseline share (paper Fig. 2).

pair vectors g_ij → attentive max-pooling with the target → output MLP on
``[t, u, t ⊙ mean X, max X, mean X]`` (batch norm → 50 (bias) → Dice → 10 → Dice → 2, the
later layers bias-free as in the code). Subclasses say how g_ij is made and may add
training losses.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from sarn.models.base import Batch, CTRModel, ModelOutput
from sarn.nn import AttentiveMaxPool, OutputHead, masked_max, masked_mean
from sarn.nn.activation import DiceEval
from sarn.nn.head import BatchNormMode
from sarn.nn.relation import Pairs


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
        head: list[int],
        batchnorm: BatchNormMode,
        dice_eval: DiceEval,
    ) -> None:
        super().__init__(n_items, n_categories, embedding_dim)
        d = self.item_dim
        self.pool = AttentiveMaxPool(d, attention_hidden)
        self.head = OutputHead(5 * d, head, "dice", batchnorm, dice_eval, bias=[True] + [False] * len(head))

    def pair_vectors(self, history: torch.Tensor) -> tuple[Pairs, torch.Tensor | None]:
        """The pairs g of a history (B, L, d) and the relation R (B, L, L), or None."""
        raise NotImplementedError

    def extra_loss(self, batch: Batch, view: RelationalView) -> torch.Tensor:
        """Weighted training losses beyond the click loss (none by default)."""
        return self.no_aux_loss(view.user)

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
        features = torch.cat([target, view.user, target * mean, masked_max(history, mask), mean], dim=-1)
        logit = self.head(features)
        aux = self.extra_loss(batch, view) if self.training else self.no_aux_loss(logit)
        return ModelOutput(logit, aux)
