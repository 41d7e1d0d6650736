"""SARN computed straight from the reference graph: the benchmark's baseline, the tests' reference.

Every pair g_ij = x_j + R_ij x_i is materialised as a (B, L, L, d) tensor; the attention
MLP runs on the concatenation [t ; g_ij] of every pair, the distance regressor on every
g_ij, the pooled vector is a max over the materialised products s_ij·g_ij, and the
auxiliary summary h_j sums the materialised pairs, as the authors' TensorFlow graph
does. It reads the weights of a project :class:`~sarn.models.sarn.SARN`, so the two
compute the same function of the same parameters and can be compared value by value.
It lives here and in the tests only; the project never trains it.

:class:`MaterialisedSARN` is a candidate between the two, measured by the benchmark: the
project's SARN with its pairs held whole, as RN holds its own.
"""

from __future__ import annotations

import torch
from torch import nn

from sarn.batch import Batch
from sarn.models.base import ModelOutput
from sarn.models.sarn import SARN
from sarn.nn.relation import MaterialisedPairs, relation_combine


def reference_outputs(net: SARN, batch: Batch) -> dict[str, torch.Tensor]:
    """R, scores s, user vector u, logit and the extra losses of ``net`` on ``batch``.

    In training mode the auxiliary loss draws one permutation of positions with
    ``torch.randperm`` at the same point as the project's SARN does, so seeding torch
    before each gives both the same permutation.
    """
    t, x, mask = net.embed(batch)
    b, length, d = x.shape
    phi = torch.relu(x @ net.relation.source.weight.T)
    phi = phi / (phi.norm(dim=-1, keepdim=True) + 1e-10)
    vphi = torch.relu(x @ net.relation.target.weight.T)
    vphi = vphi / (vphi.norm(dim=-1, keepdim=True) + 1e-10)
    rel = torch.einsum("bih,bjh->bij", phi, vphi)
    g = x[:, None, :, :] + rel[..., None] * x[:, :, None, :]  # g[b, i, j] = x_j + R_ij x_i
    w1 = torch.cat([net.pool.query.weight, net.pool.pair.weight], dim=1)
    hidden = torch.relu(torch.cat([t[:, None, None, :].expand(b, length, length, d), g], dim=-1) @ w1.T
                        + net.pool.query.bias)
    pair_mask = mask[:, :, None] * mask[:, None, :]
    s = torch.sigmoid(hidden @ net.pool.score.weight.T + net.pool.score.bias).squeeze(-1) * pair_mask
    # The code's max-pools run over the whole padded batch, where padded pairs and positions are 0;
    # ``always`` adds a zero vector to every row's.
    floor = x.new_zeros(d) if net.max_pool_zero == "always" else x.new_full((d,), -torch.inf)
    user = torch.maximum((s[..., None] * g).reshape(b, -1, d).max(dim=1).values, floor)
    count = mask.sum(dim=1, keepdim=True).clamp(min=1.0)
    mean = (x * mask[..., None]).sum(dim=1) / count
    top = torch.maximum((x * mask[..., None]).max(dim=1).values, floor)
    logit = net.head(torch.cat([t, user, t * mean, top, mean], dim=-1))
    out = {"relation": rel, "scores": s, "user": user, "logit": logit}
    if not net.training:
        return out
    pred = net.regressor_out(torch.relu(net.regressor_in(g))).squeeze(-1)
    pos = torch.arange(length, dtype=x.dtype, device=x.device)
    gap = pos[None, :] - pos[:, None]
    target = torch.sign(gap) * torch.sqrt(gap.abs() / length)
    out["position_loss"] = (mask[:, :, None] * (pred - target) ** 2).mean()
    summary = g.sum(dim=1) / count[:, :, None]  # h_j = Σ_i g_ij / len, padded rows included
    shuffled = summary[:, torch.randperm(length, device=x.device)]
    negative = net.embedding(batch.neg_item, batch.neg_category) * mask[..., None]
    log_p_click, _ = net.aux_net(torch.cat([shuffled, x], dim=-1))
    _, log_p_no_click = net.aux_net(torch.cat([shuffled, negative], dim=-1))
    out["click_aux_loss"] = -(mask * (log_p_click + log_p_no_click)).mean()
    out["aux_loss"] = net.alpha * out["position_loss"] + net.beta * out["click_aux_loss"]
    return out


class StraightforwardSARN(nn.Module):
    """A trainable wrapper: ``net``'s parameters, the reference graph's computation."""

    compilable = True  # as the project's SARN, for the benchmark's --compile

    def __init__(self, net: SARN) -> None:
        super().__init__()
        self.net = net

    def forward(self, batch: Batch) -> ModelOutput:
        out = reference_outputs(self.net, batch)
        return ModelOutput(out["logit"], out["aux_loss"] if self.training else out["logit"].new_zeros(()))


class MaterialisedSARN(SARN):
    """The project's SARN with g (B, L, L, d) materialised: autograd keeps the pair-sized
    hidden layers, and no pair MLP runs as a Python autograd function.

    On a GPU at Electronics-like lengths the pair tensors are small, and a step's time is
    the host's dispatching (benchmark part 5), which this form cuts; the project's form
    wins where memory binds. The same function of the same parameters as SARN.
    """

    def pair_vectors(self, history: torch.Tensor) -> tuple[MaterialisedPairs, torch.Tensor]:
        rel = self.relation(history)
        return MaterialisedPairs(relation_combine(rel, history)), rel
