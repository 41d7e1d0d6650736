"""The GRU of the GRU baseline and DIEN's interest extractor, and DIEN's AUGRU, over padded,
left-aligned histories (a row's valid clicks first, its padding after).

Both follow PyTorch's GRU (cuDNN's, TF's ``GRUCell`` up to where the reset gate applies):
gates (r, z, n), ``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))`` and
``h' = (1 − z) ⊙ n + z ⊙ h``, z a *keep* gate. The DIEN paper writes
``h' = (1 − u) ⊙ h + u ⊙ h̃`` with an *update* gate u = 1 − z: the same model family, the
gate's pre-activation negated (u = σ(a) ⟺ z = σ(−a)).
"""

from __future__ import annotations

import torch
from torch import nn


class PaddedGRU(nn.Module):
    """A GRU over padded histories, run as one fused kernel (``nn.GRU``: cuDNN on a GPU,
    ATen's C++ loop on the CPU).

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
    u = 1 − z is scaled by the step's attention score a, ``h' = (1 − a·u) ⊙ h + a·u ⊙ n``.

    That is ``h' = h + a·(g − h)`` with g the plain GRU step, which is how it is computed:
    two interpolations (``lerp``) a step, after the gates, with the input projections of all
    steps made at once. A padded step has a = 0 and keeps the state. The DIEN code computes
    ``(1 − a)·z`` on the keep gate instead, which makes a step with attention 1 replace the
    state by n and one with attention 0 a plain GRU step; we follow the paper.

    The parameters are an ``nn.GRUCell``'s (laid out and initialised as ``nn.GRU``'s);
    the step is written out because the attention enters between the gates and the update.
    """

    def __init__(self, input_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.cell = nn.GRUCell(input_dim, hidden_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """The state after each row's last valid step (B, H); ``mask`` and ``attention`` are (B, L)."""
        cell, hidden = self.cell, self.cell.hidden_size
        # Under autocast the projections come in bfloat16; the state stays in x's precision
        # (lerp does not promote, the additions below do).
        projected = nn.functional.linear(x, cell.weight_ih, cell.bias_ih).to(x.dtype)
        scale = attention * mask
        h = x.new_zeros(x.shape[0], hidden)
        for t in range(x.shape[1]):
            xg = projected[:, t]
            hg = nn.functional.linear(h, cell.weight_hh, cell.bias_hh)
            reset, keep = torch.sigmoid(xg[:, : 2 * hidden] + hg[:, : 2 * hidden]).chunk(2, dim=-1)
            candidate = torch.tanh(torch.addcmul(xg[:, 2 * hidden :], reset, hg[:, 2 * hidden :]))
            h = torch.lerp(h, torch.lerp(candidate, h, keep), scale[:, t, None])
        return h
