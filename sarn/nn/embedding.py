"""Item representation: item embedding concatenated with category embedding."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Index0 = Literal["zero", "trainable"]


class ItemEmbedding(nn.Module):
    """``[item ⊕ category]`` vectors of size ``2 * dim``; index 0 means padding or unknown.

    ``index0``: ``zero`` keeps row 0 a fixed zero vector, so that an id unseen in training
    carries nothing and padding adds nothing; ``trainable`` learns it like any other row,
    as the reference code's vocabularies do (their ``default_mid``/``default_cat`` entry).

    Tables start Glorot-uniform like the reference TensorFlow code's (``tf.get_variable``'s
    default), not N(0, 1) like PyTorch's: with N(0, 1), dot-product models such as ATRank
    start with logits of size ~10 and SGD at learning rate 1 never recovers.
    """

    def __init__(self, n_items: int, n_categories: int, dim: int, index0: Index0 = "zero") -> None:
        super().__init__()
        padding_idx = 0 if index0 == "zero" else None
        self.items = nn.Embedding(n_items, dim, padding_idx=padding_idx)
        self.categories = nn.Embedding(n_categories, dim, padding_idx=padding_idx)
        for table in (self.items, self.categories):
            nn.init.xavier_uniform_(table.weight)
            if padding_idx is not None:
                with torch.no_grad():
                    table.weight[padding_idx].zero_()
        self.index0 = index0
        self.out_dim = 2 * dim

    def forward(self, items: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.items(items), self.categories(categories)], dim=-1)

    def padding_vector(self) -> torch.Tensor | None:
        """The vector of index 0, (2·dim,), where it is learned; None where it is zero."""
        if self.index0 == "zero":
            return None
        return torch.cat([self.items.weight[0], self.categories.weight[0]])
