"""Item representation: item embedding concatenated with category embedding."""

from __future__ import annotations

import torch
from torch import nn


class ItemEmbedding(nn.Module):
    """``[item ⊕ category]`` vectors of size ``2 * dim``; index 0 (padding/unknown) is zero.

    Tables start Glorot-uniform like the reference TensorFlow code's (``tf.get_variable``'s
    default), not N(0, 1) like PyTorch's: with N(0, 1), dot-product models such as ATRank
    start with logits of size ~10 and SGD at learning rate 1 never recovers.
    """

    def __init__(self, n_items: int, n_categories: int, dim: int) -> None:
        super().__init__()
        self.items = nn.Embedding(n_items, dim, padding_idx=0)
        self.categories = nn.Embedding(n_categories, dim, padding_idx=0)
        for table in (self.items, self.categories):
            nn.init.xavier_uniform_(table.weight)
            with torch.no_grad():
                table.weight[0].zero_()
        self.out_dim = 2 * dim

    def forward(self, items: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.items(items), self.categories(categories)], dim=-1)
