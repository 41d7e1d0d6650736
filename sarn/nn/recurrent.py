"""The GRU of the GRU baseline and DIEN's interest extractor, and DIEN's AUGRU, over padded,
left-aligned histories (a row's valid clicks first, its padding after).

Gates (r, z, n) in PyTorch's layout, z a *keep* gate: ``h' = (1 − z) ⊙ n + z ⊙ h``. Where
the reset gate acts is a choice (``reset``):

- ``after_product``: ``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))``, the DIEN paper's
  equations (1) to (4) and PyTorch's and cuDNN's GRU;
- ``before_product``: ``n = tanh(W_in x + b_in + W_hn (r ⊙ h))``, TensorFlow's ``GRUCell``,
  which the DIEN and SARN code run. It has one bias per gate, so the hidden side's bias
  (``b_hh``) takes no part and keeps its starting 0.

The DIEN paper writes ``h' = (1 − u) ⊙ h + u ⊙ h̃`` with an *update* gate u = 1 − z: the same
model, the gate's pre-activation negated (u = σ(a) ⟺ z = σ(−a)).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from sarn.nn.init import glorot_block_

ResetGate = Literal["after_product", "before_product"]


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
    """A GRU over padded histories. Outputs at padded steps are zero, as TF's ``dynamic_rnn``
    (the DIEN and SARN code) emits them: DIEN's auxiliary net, whose batch norm sees every
    step's output, then sees what the reference code feeds it. A history of length 0 gets
    the zero state, not what the biases alone give.

    With ``reset="after_product"`` it runs ``nn.GRU`` over the whole padded batch: one fused
    cuDNN kernel on a GPU, ATen's C++ loop on the CPU. A valid step's output cannot depend on
    the padding after it, and the final state is gathered at each row's last valid step, so
    no lengths are read back to the host. No fused kernel has TensorFlow's form
    (``before_product``), which runs :class:`_GatedSteps` with the mask as each step's scale.

    Under autocast the GRU computes in its inputs' precision (float32 here): PyTorch casts a
    cuDNN RNN to float16 whatever the autocast dtype, and bf16 runs scale no losses.
    """

    def __init__(self, input_dim: int, hidden_dim: int, reset: ResetGate = "after_product") -> None:
        super().__init__()
        self.gru = nn.GRU(input_dim, hidden_dim, batch_first=True)
        self.reset = reset

    def init_like_tensorflow(self) -> None:
        gru = self.gru
        gru_like_tensorflow_(gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """States at every step (B, L, H), zero at padded ones, and the state after the last
        valid step (B, H); ``mask`` (B, L) is 1 at valid steps."""
        gru = self.gru
        with torch.autocast(x.device.type, enabled=False):
            if self.reset == "after_product":
                states = gru(x)[0] * mask.unsqueeze(-1)
                last = (mask.sum(1).long() - 1).clamp(min=0)
                final = states.gather(1, last[:, None, None].expand(-1, 1, states.shape[-1])).squeeze(1)
                return states, final
            projected = nn.functional.linear(x, gru.weight_ih_l0, gru.bias_ih_l0)  # every step's at once
            carried = _GatedSteps.apply(projected, mask.to(x.dtype), gru.weight_hh_l0, gru.bias_hh_l0, self.reset)
        return carried * mask.unsqueeze(-1), carried[:, -1]


class AUGRU(nn.Module):
    """DIEN's GRU with attentional update gate (AUGRU), after the paper: the update gate
    u = 1 − z is scaled by the step's attention score a, ``h' = (1 − a·u) ⊙ h + a·u ⊙ n``,
    that is ``h' = h + a·(g − h)`` with g the plain GRU step. A padded step has a = 0 and
    keeps the state. The DIEN code computes ``(1 − a)·z`` on the keep gate instead, which
    makes a step with attention 1 replace the state by n and one with attention 0 a plain
    GRU step; we follow the paper.

    The parameters are an ``nn.GRUCell``'s (laid out and initialised as ``nn.GRU``'s). The
    attention enters between the gates and the update, so no fused GRU kernel applies: the
    recurrence is :class:`_GatedSteps`. Under autocast it computes in its inputs' precision,
    as :class:`PaddedGRU` does.
    """

    def __init__(self, input_dim: int, hidden_dim: int, reset: ResetGate = "after_product") -> None:
        super().__init__()
        self.cell = nn.GRUCell(input_dim, hidden_dim)
        self.reset = reset

    def init_like_tensorflow(self) -> None:
        cell = self.cell
        gru_like_tensorflow_(cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """The state after each row's last valid step (B, H); ``mask`` and ``attention`` are (B, L)."""
        cell = self.cell
        with torch.autocast(x.device.type, enabled=False):
            projected = nn.functional.linear(x, cell.weight_ih, cell.bias_ih)  # every step's at once
            return _GatedSteps.apply(projected, attention * mask, cell.weight_hh, cell.bias_hh, self.reset)[:, -1]


class _GatedSteps(torch.autograd.Function):
    """A GRU recurrence whose step t moves the state by the fraction a_t of a plain GRU step,
    ``h_t = h + a_t·(1 − z) ⊙ (n − h)``, from the input projections (B, L, 3H) and the scales
    a (B, L): the mask for a plain GRU over padded rows (padded steps keep the state), the
    attention times the mask for the AUGRU. Returns every step's state (B, L, H).

    Forward and backward are written out: 7 operators a step forward, and 4 backward where the
    reset acts after the state's product (9 before it), against about 40 in autograd's graph
    of the same step. The backward takes the state's gradient through a step with
    factors computed for all steps at once, and forms the weight gradients with one matrix
    product after the loop.

    Notation: r the reset gate, z the keep gate, n the candidate, ``h_hat`` the hidden side's
    projections (W_h h + b_h), ``before`` the state a step starts from.
    """

    @staticmethod
    def forward(ctx, projected: torch.Tensor, scale: torch.Tensor, weight_hh: torch.Tensor,
                bias_hh: torch.Tensor, reset: ResetGate) -> torch.Tensor:
        hidden = weight_hh.shape[1]
        gates_t, candidate_t = weight_hh[: 2 * hidden].t(), weight_hh[2 * hidden :].t()  # before_product's
        h = projected.new_zeros(projected.shape[0], hidden)
        states, gates, candidates, h_hats = [], [], [], []
        for t in range(projected.shape[1]):
            x_hat = projected[:, t]
            if reset == "after_product":
                h_hat = torch.addmm(bias_hh, h, weight_hh.t())
                rz = torch.sigmoid(x_hat[:, : 2 * hidden] + h_hat[:, : 2 * hidden])
                n = torch.tanh(torch.addcmul(x_hat[:, 2 * hidden :], rz[:, :hidden], h_hat[:, 2 * hidden :]))
                h_hats.append(h_hat[:, 2 * hidden :])
            else:
                rz = torch.sigmoid(torch.addmm(x_hat[:, : 2 * hidden], h, gates_t))
                n = torch.tanh(torch.addmm(x_hat[:, 2 * hidden :], rz[:, :hidden] * h, candidate_t))
            h = torch.lerp(h, torch.lerp(n, h, rz[:, hidden:]), scale[:, t, None])
            states.append(h)
            gates.append(rz)
            candidates.append(n)
        stacked = [torch.stack(each, dim=1) for each in (states, gates, candidates, h_hats) if each]
        ctx.reset = reset
        ctx.save_for_backward(scale, weight_hh, *stacked)
        return stacked[0]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_states: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        scale, weight_hh, states, rz, n, *h_hat_n = ctx.saved_tensors
        hidden = weight_hh.shape[1]
        before = torch.cat([states.new_zeros(states.shape[0], 1, hidden), states[:, :-1]], dim=1)
        r, z = rz.chunk(2, dim=-1)
        a, change, update = scale[..., None], n - before, 1 - z  # update: the paper's u
        # ∂h'/∂h with the gates held, and the factors taking ∂h' to each pre-activation
        carry = 1 - a * update
        dn = a * update * (1 - n * n)
        dz = -a * change * z * update
        length = states.shape[1]
        grads = []
        grad = grad_states[:, -1]
        if ctx.reset == "after_product":
            dr = dn * h_hat_n[0] * r * (1 - r)
            to_hidden = torch.stack([dr, dz, dn * r], dim=2)  # (B, L, 3, H)
            for t in reversed(range(length)):
                grads.append(grad)
                if t:
                    grad = torch.addmm(grad * carry[:, t], (to_hidden[:, t] * grad[:, None]).flatten(1),
                                       weight_hh).add_(grad_states[:, t - 1])
            per_step = torch.stack(grads[::-1], dim=1)[:, :, None]  # ∂/∂h_t, (B, L, 1, H)
            d_hidden = (to_hidden * per_step).flatten(2)
            d_input = torch.stack([dr, dz, dn], dim=2) * per_step
            d_weight = d_hidden.flatten(0, 1).t() @ before.flatten(0, 1)
            d_bias = d_hidden.sum((0, 1))
        else:
            gates_w, candidate_w = weight_hh[: 2 * hidden], weight_hh[2 * hidden :]
            dr_factor = before * r * (1 - r)
            to_reset = []  # per step: ∂/∂(r ⊙ h)
            for t in reversed(range(length)):
                grads.append(grad)
                to_reset.append(torch.mm(grad * dn[:, t], candidate_w))
                if t:
                    dgates = torch.cat([to_reset[-1] * dr_factor[:, t], grad * dz[:, t]], dim=1)
                    grad = torch.addmm(torch.addcmul(grad * carry[:, t], to_reset[-1], r[:, t]), dgates,
                                       gates_w).add_(grad_states[:, t - 1])
            per_step = torch.stack(grads[::-1], dim=1)[:, :, None]
            d_reset = torch.stack(to_reset[::-1], dim=1)
            d_input = torch.stack([d_reset * dr_factor, dz * per_step[:, :, 0], dn * per_step[:, :, 0]], dim=2)
            d_weight = torch.cat([d_input[:, :, :2].flatten(2).flatten(0, 1).t() @ before.flatten(0, 1),
                                  d_input[:, :, 2].flatten(0, 1).t() @ (r * before).flatten(0, 1)])
            d_bias = None  # the hidden side's bias takes no part
        d_scale = (update * change * per_step[:, :, 0]).sum(-1)
        return d_input.flatten(2), d_scale, d_weight, d_bias, None
