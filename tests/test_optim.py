"""The optimizer: Adam as TensorFlow 1 computes it."""

from __future__ import annotations

import math

import pytest
import torch

from sarn.train.optim import TensorFlowAdam


def tensorflow_adam_steps(start: torch.Tensor, grads: list[torch.Tensor], lr: float,
                          beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> torch.Tensor:
    """``tf.train.AdamOptimizer``'s dense update, written out from its documented formula."""
    w, m, v = start.clone(), torch.zeros_like(start), torch.zeros_like(start)
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        lr_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
        w = w - lr_t * m / (v.sqrt() + eps)
    return w


def run(optimizer_class: type[torch.optim.Adam], start: torch.Tensor, grads: list[torch.Tensor],
        lr: float, **kwargs) -> torch.Tensor:
    w = torch.nn.Parameter(start.clone())
    opt = optimizer_class([w], lr=lr, **kwargs)
    for g in grads:
        w.grad = g.clone()
        opt.step()
    return w.detach()


@pytest.mark.parametrize("fused", [False, True])
def test_adam_places_epsilon_as_tensorflow_does(fused: bool) -> None:
    """Gradients of size 1e-9 to 1 over 30 steps: where the gradient is near epsilon, PyTorch's
    own Adam moves the weight differently; TensorFlowAdam agrees with TensorFlow's formula."""
    gen = torch.Generator().manual_seed(0)
    scale = torch.logspace(-9, 0, 10, dtype=torch.float64)
    start = torch.randn(10, generator=gen, dtype=torch.float64)
    grads = [torch.randn(10, generator=gen, dtype=torch.float64) * scale for _ in range(30)]
    want = tensorflow_adam_steps(start, grads, lr=0.01)

    got = run(TensorFlowAdam, start, grads, lr=0.01, fused=fused)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-14)

    torchs = run(torch.optim.Adam, start, grads, lr=0.01, fused=fused)
    assert (torchs - want).abs().max() > 1e-4  # the test tells the two forms apart
