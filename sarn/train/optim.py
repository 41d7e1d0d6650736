"""Adam as the authors' code computes it.

Both reference codes train with TensorFlow 1's ``tf.train.AdamOptimizer`` (SARN_CTR and
mouna99/dien, ``script/model.py``). TensorFlow folds both bias corrections into the step size
and adds epsilon to the uncorrected root of the second moment:

    lr_t = lr · √(1 − β₂ᵗ) / (1 − β₁ᵗ),    w ← w − lr_t · m / (√v + ε)

PyTorch's Adam adds epsilon after correcting the second moment, √v / √(1 − β₂ᵗ) + ε, so its
ε weighs √(1 − β₂ᵗ) times less (0.03 at the first step, 0.2 at the twentieth). Setting
PyTorch's ε to ε / √(1 − β₂ᵗ) before step t makes the two updates the same function; the
moments, the bias corrections and the fused kernel are PyTorch's own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch


class TensorFlowAdam(torch.optim.Adam):
    """``torch.optim.Adam`` with TensorFlow 1's placement of epsilon (see the module's text).

    TensorFlow counts steps once per optimizer (its β powers are shared by every variable), so
    the count here is the optimizer's too; every parameter of the models here has a gradient at
    every step, where PyTorch's per-parameter counts agree with it."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, eps: float = 1e-8, **kwargs) -> None:
        super().__init__(params, lr=lr, eps=eps, **kwargs)
        self.tf_eps = eps
        self.tf_step = 0

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        self.tf_step += 1
        for group in self.param_groups:
            beta2 = group["betas"][1]
            group["eps"] = self.tf_eps / math.sqrt(1.0 - beta2**self.tf_step)
        return super().step(closure)
