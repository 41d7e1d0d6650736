"""A GRU over padded, left-aligned histories, with DIEN's attentional update gate.

Written out step by step (histories are at most tens of clicks) so that one module
serves the plain GRU baseline, DIEN's interest extractor and its AUGRU, and so that a
history of length 0 is simply a zero state (packed sequences refuse length 0).
"""

from __future__ import annotations

import torch
from torch import nn

from sarn.nn.init import glorot_block_


class MaskedGRU(nn.Module):
    """GRU whose state stays put at padded steps; optionally an AUGRU.

    Update rule (DIEN paper's notation): ``h_t = (1 − u_t)·h_{t−1} + u_t·h̃_t``. With
    attention scores ``a_t`` the update gate becomes ``u_t' = a_t·u_t`` (AUGRU, DIEN paper
    eq. for AUGRU). The DIEN code computes ``u' = (1 − a)·u`` on a gate with the opposite
    meaning, which lets a step with attention 0 overwrite the state; we follow the paper.
    """

    def __init__(self, input_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.input_gates = nn.Linear(input_dim, 3 * hidden_dim)
        self.state_gates = nn.Linear(hidden_dim, 3 * hidden_dim)

    def init_like_tensorflow(self) -> None:
        """TF's GRUCell: kernels Glorot-uniform over ``[x, h]`` (the two gates as one kernel of
        width 2H, the candidate as one of width H), gate biases 1.0, candidate bias 0. TF's
        update gate keeps the state where this one writes it, so its +1 is −1 here."""
        hidden = self.hidden_dim
        fan_in = self.input_gates.in_features + hidden
        for layer in (self.input_gates, self.state_gates):
            glorot_block_(layer.weight[: 2 * hidden], fan_in, 2 * hidden)
            glorot_block_(layer.weight[2 * hidden :], fan_in, hidden)
            nn.init.zeros_(layer.bias)
        with torch.no_grad():
            self.input_gates.bias[:hidden] = 1.0  # reset gate
            self.input_gates.bias[hidden : 2 * hidden] = -1.0  # update gate (writes: TF's keeps)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, attention: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """States at every step (B, L, H) and the state after the last valid step (B, H)."""
        b, length, _ = x.shape
        h = x.new_zeros(b, self.hidden_dim)
        projected = self.input_gates(x)  # all input projections at once
        states = []
        for t in range(length):
            xr, xu, xn = projected[:, t].chunk(3, dim=-1)
            hr, hu, hn = self.state_gates(h).chunk(3, dim=-1)
            reset = torch.sigmoid(xr + hr)
            update = torch.sigmoid(xu + hu)
            candidate = torch.tanh(xn + reset * hn)
            if attention is not None:
                update = attention[:, t, None] * update
            step = mask[:, t, None]
            update = update * step  # padded step: keep the state
            h = (1.0 - update) * h + update * candidate
            states.append(h)
        return torch.stack(states, dim=1), h
