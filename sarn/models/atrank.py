"""ATRank (Zhou et al., AAAI 2018) as its own code computes it (jinze1994/ATRank, atrank/), reduced
to the single behaviour type of these datasets.

Each click is item ⊕ category embeddings (``embedding_dim`` each; the paper keeps
ATRank's 64) concatenated with a one-hot time-gap bucket and projected to 2·embedding_dim.
One self-attention block (``heads`` heads, ReLU projections of queries, keys and values,
scaled dot product, residual + layer norm), then the position-wise feed-forward net
(hidden ``ff_hidden``, the code's 128 / 4 = 32; residual + layer norm). The target then
attends over the block's outputs in a block of the same form (attention, residual with
the target, layer norm, feed-forward, residual, layer norm), giving u; logit = item bias
+ ⟨u, t⟩, the bias starting at 0. Training adds the code's L2 term ``l2`` · (‖u‖² + ‖t‖²) / 2
summed over the batch (``tf.nn.l2_loss``), to the plain sigmoid cross-entropy (click-loss
weight 1), with the code's gradient clipping at norm 5 (``grad_clip_norm``).

Time gap, as the code's ``build_dataset.py``: in whole days, ``day(target) − day(click) + 1``
with ``day = seconds // 86400``; the bucket counts the boundaries 2, 4, 8, …, 4096 it
reaches (0 to 12), one-hot over 12 columns, so that the last bucket (over 4096 days) is
the zero vector. Layer norms use the code's epsilon 1e-8. The paper trains ATRank with
SGD, learning rate 1.0, batch 32 (params.yaml); the code's drop of the rate to 0.1 at
step 336,000 lies beyond five epochs of these datasets. Not kept: the code's dropout
(its rate is 0). A user with no usable history gets no attention output (finite logits).
"""

from __future__ import annotations

import torch
from torch import nn

from sarn.batch import Batch
from sarn.models.base import CTRModel, ModelOutput
from sarn.nn import AttentionBlock, DenseInit, Index0

_GAP_DOUBLINGS = 12
N_GAP_BUCKETS = _GAP_DOUBLINGS  # one-hot width: the bucket past the last boundary is all zeros
_DAY = 86_400


def gap_buckets(target_time: torch.Tensor, click_time: torch.Tensor) -> torch.Tensor:
    """Bucket index (0 … 12) of each click's age in whole days at the target's time."""
    days = (target_time.div(_DAY, rounding_mode="floor")[:, None]
            - click_time.div(_DAY, rounding_mode="floor")).clamp(min=0) + 1
    # The boundaries are made on the device: a tensor built from Python values would be
    # copied from the host at every step, and such a copy waits for the GPU.
    bounds = 2 ** torch.arange(1, _GAP_DOUBLINGS + 1, device=days.device)
    return (days.unsqueeze(-1) >= bounds).sum(dim=-1)


def one_hot(index: torch.Tensor, classes: int, dtype: torch.dtype) -> torch.Tensor:
    """One-hot rows, all zeros for an index of ``classes`` or more (as ``tf.one_hot``), and
    without ``nn.functional.one_hot``'s range check, which reads the index back from the device."""
    return (index.unsqueeze(-1) == torch.arange(classes, device=index.device)).to(dtype)


class ATRank(CTRModel):
    def __init__(
        self,
        n_items: int,
        n_categories: int,
        *,
        embedding_dim: int,
        heads: int,
        ff_hidden: int,
        l2: float,
        dense_init: DenseInit,
        index0: Index0,
    ) -> None:
        super().__init__(n_items, n_categories, embedding_dim, dense_init, index0)
        d = self.item_dim
        self.l2 = l2
        self.item_bias = nn.Embedding(n_items, 1, padding_idx=0 if index0 == "zero" else None)
        nn.init.zeros_(self.item_bias.weight)
        self.project = nn.Linear(d + N_GAP_BUCKETS, d)
        self.history_block = AttentionBlock(d, heads, ff_hidden)
        self.target_block = AttentionBlock(d, heads, ff_hidden)

    @classmethod
    def architecture_problems(cls, **architecture: object) -> list[str]:
        size, heads = 2 * architecture["embedding_dim"], architecture["heads"]
        return [f"the model size {size} is not divisible by {heads} heads"] if size % heads else []

    def score(self, batch: Batch) -> ModelOutput:
        target, history, mask = self.embed(batch)
        gaps = one_hot(gap_buckets(batch.timestamp, batch.hist_timestamp), N_GAP_BUCKETS, history.dtype)
        clicks = self.project(torch.cat([history, gaps], dim=-1)) * mask.unsqueeze(-1)
        encoded = self.history_block(clicks, clicks, mask)
        any_click = (mask.sum(dim=1) > 0).to(target.dtype)[:, None, None]
        user = self.target_block(target.unsqueeze(1), encoded, mask, any_click).squeeze(1)
        logit = self.item_bias(batch.item).squeeze(-1) + (user * target).sum(dim=-1)
        if not self.training or not self.l2:
            return ModelOutput(logit, self.no_aux_loss(logit))
        return ModelOutput(logit, self.l2 * 0.5 * (user.square().sum() + target.square().sum()))
