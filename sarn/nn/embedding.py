"""Item representation: item embedding concatenated with category embedding."""

from __future__ import annotations

import torch
from torch import nn


class ItemEmbedding(nn.Module):
    """``[item ⊕ category]`` vectors of size ``2 * dim``; index 0 (padding/unknown) is zero."""

    def __init__(self, n_items: int, n_categories: int, dim: int) -> None:
        super().__init__()
        self.items = nn.Embedding(n_items, dim, padding_idx=0)
        self.categories = nn.Embedding(n_categories, dim, padding_idx=0)
        self.out_dim = 2 * dim

    def forward(self, items: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.items(items), self.categories(categories)], dim=-1)
