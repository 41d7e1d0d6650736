"""The GRU of the GRU baseline and DIEN's interest extractor, and DIEN's AUGRU, over padded,
left-aligned histories (a row's valid clicks first, its padding after).

Both follow PyTorch's (and cuDNN's) GRU: gates (r, z, n),
``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))`` and ``h' = (1 − z) ⊙ n + z ⊙ h``, z a
*keep* gate, as in TF's ``GRUCell`` (which applies r to h before its matrix product). The
DIEN paper writes ``h' = (1 − u) ⊙ h + u ⊙ h̃`` with an *update* gate u = 1 − z: the same
model family, the gate's pre-activation negated (u = σ(a) ⟺ z = σ(−a)).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from sarn.nn.init import glorot_block_


def gru_like_tensorflow_(weight_ih: torch.Tensor, weight_hh: torch.Tensor, bias_ih: torch.Tensor,
                         bias_hh: torch.Tensor) -> None:
    """Start a GRU's parameters (PyTorch's layout: gates r, z, n) as TF's ``GRUCell`` starts its
    own: its kernels are Glorot-uniform over the concatenated ``[x, h]`` input, the two gates
    as one kernel of width 2H and the candidate as one of width H; the gates' bias is 1.0 and
    the candidate's 0. TF's z is a keep gate too, so the 1.0 lands on the same rows. PyTorch
    has a bias on each side where TF has one: the input side carries it, the hidden side is 0."""
    hidden = weight_hh.shape[1]
    fan_in = weight_ih.shape[1] + hidden
    for weight in (weight_ih, weight_hh):
        glorot_block_(weight[: 2 * hidden], fan_in, 2 * hidden)
        glorot_block_(weight[2 * hidden :], fan_in, hidden)
    with torch.no_grad():
        bias_ih.zero_()
        bias_ih[: 2 * hidden] = 1.0
        bias_hh.zero_()


class PaddedGRU(nn.Module):
    """A GRU over padded histories, run by ``nn.GRU``: one fused cuDNN kernel on a GPU; on
    the CPU ATen's C++ loop, which dispatches about as many operators a step as a Python loop.

    It runs over the whole padded batch: a valid step's output cannot depend on the padding
    after it, and the final state is gathered at each row's last valid step, so no lengths
    are read back to the host (packing a batch would need them there, making a training
    step wait for the device). Outputs at padded steps are zero, as TF's ``dynamic_rnn``
    (the DIEN and SARN code) emits them: DIEN's auxiliary net, whose batch norm sees every
    step's output, then sees what the reference code feeds it. A history of length 0 gets
    the zero state (its gather reads a zeroed padded step), not what the biases alone give.

    Under autocast the GRU computes in its inputs' precision (float32 here): PyTorch casts a
    cuDNN RNN to float16 whatever the autocast dtype, and bf16 runs scale no losses.
    """

    def __init__(self, input_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.gru = nn.GRU(input_dim, hidden_dim, batch_first=True)

    def init_like_tensorflow(self) -> None:
        gru = self.gru
        gru_like_tensorflow_(gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """States at every step (B, L, H), zero at padded ones, and the state after the last
        valid step (B, H); ``mask`` (B, L) is 1 at valid steps."""
        with torch.autocast(x.device.type, enabled=False):
            states, _ = self.gru(x)
        states = states * mask.unsqueeze(-1)
        last = (mask.sum(1).long() - 1).clamp(min=0)
        final = states.gather(1, last[:, None, None].expand(-1, 1, states.shape[-1])).squeeze(1)
        return states, final


class AUGRU(nn.Module):
    """DIEN's GRU with attentional update gate (AUGRU), after the paper: the update gate
    u = 1 − z is scaled by the step's attention score a, ``h' = (1 − a·u) ⊙ h + a·u ⊙ n``,
    that is ``h' = h + a·(g − h)`` with g the plain GRU step. A padded step has a = 0 and
    keeps the state. The DIEN code computes ``(1 − a)·z`` on the keep gate instead, which
    makes a step with attention 1 replace the state by n and one with attention 0 a plain
    GRU step; we follow the paper.

    The parameters are an ``nn.GRUCell``'s (laid out and initialised as ``nn.GRU``'s). The
    attention enters between the gates and the update, so no fused GRU kernel applies: the
    recurrence is a step loop with its backward written out (:class:`_AUGRUSteps`). Under
    autocast it computes in its inputs' precision, as :class:`PaddedGRU` does.
    """

    def __init__(self, input_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.cell = nn.GRUCell(input_dim, hidden_dim)

    def init_like_tensorflow(self) -> None:
        cell = self.cell
        gru_like_tensorflow_(cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """The state after each row's last valid step (B, H); ``mask`` and ``attention`` are (B, L)."""
        cell = self.cell
        with torch.autocast(x.device.type, enabled=False):
            projected = nn.functional.linear(x, cell.weight_ih, cell.bias_ih)  # every step's at once
            return _AUGRUSteps.apply(projected, attention * mask, cell.weight_hh, cell.bias_hh)


class _AUGRUSteps(torch.autograd.Function):
    """The AUGRU's recurrence from the input projections (B, L, 3H) and the per-step scales
    a = attention·mask (B, L): 7 operators a step forward and 3 backward, where autograd's
    graph of the same step dispatches about 40. The backward takes the state's gradient
    through a step with factors computed for all steps at once, and forms the weight
    gradients with one matrix product after the loop.

    Notation: r the reset gate, z the keep gate, n the candidate, ``h_hat`` the hidden
    side's projections (W_h h + b_h), so ``n = tanh(x_n + r ⊙ h_hat_n)`` and
    ``h' = h + a·(1 − z) ⊙ (n − h)``.
    """

    @staticmethod
    def forward(ctx, projected: torch.Tensor, scale: torch.Tensor, weight_hh: torch.Tensor,
                bias_hh: torch.Tensor) -> torch.Tensor:
        hidden = weight_hh.shape[1]
        h = projected.new_zeros(projected.shape[0], hidden)
        kept = []  # per step: the state before it, h_hat, (r, z), n
        for t in range(projected.shape[1]):
            x_hat = projected[:, t]
            h_hat = torch.addmm(bias_hh, h, weight_hh.t())
            rz = torch.sigmoid(x_hat[:, : 2 * hidden] + h_hat[:, : 2 * hidden])
            n = torch.tanh(torch.addcmul(x_hat[:, 2 * hidden :], rz[:, :hidden], h_hat[:, 2 * hidden :]))
            kept.append((h, h_hat, rz, n))
            h = torch.lerp(h, torch.lerp(n, h, rz[:, hidden:]), scale[:, t, None])
        stacked = [torch.stack(each, dim=1) for each in zip(*kept, strict=True)]
        ctx.save_for_backward(scale, weight_hh, *stacked)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
        scale, weight_hh, before, h_hat, rz, n = ctx.saved_tensors
        hidden = weight_hh.shape[1]
        r, z = rz.chunk(2, dim=-1)
        a, change, update = scale[..., None], n - before, 1 - z  # update: the paper's u
        # ∂h'/∂h with the gates held, and the factors taking ∂h' to each gate's pre-activation
        carry = 1 - a * update
        dn = a * update * (1 - n * n)
        dr = dn * h_hat[..., 2 * hidden :] * r * (1 - r)
        dz = -a * change * z * update
        to_hidden = torch.stack([dr, dz, dn * r], dim=2)  # (B, L, 3, H)
        to_input = torch.stack([dr, dz, dn], dim=2)
        grads = []
        for t in reversed(range(before.shape[1])):
            grads.append(grad)
            grad = torch.addmm(grad * carry[:, t], (to_hidden[:, t] * grad[:, None]).flatten(1), weight_hh)
        per_step = torch.stack(grads[::-1], dim=1)[:, :, None]  # ∂/∂h_t, (B, L, 1, H)
        d_hidden = (to_hidden * per_step).flatten(2)
        d_weight = d_hidden.flatten(0, 1).t() @ before.flatten(0, 1)
        d_scale = (update * change * per_step[:, :, 0]).sum(-1)
        return (to_input * per_step).flatten(2), d_scale, d_weight, d_hidden.sum((0, 1))
