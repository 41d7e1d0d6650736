"""The GRU and the AUGRU, in each place of the reset gate, against a GRU written out a step at
a time in float64."""

from __future__ import annotations

import pytest
import torch

from sarn.models import build_model
from sarn.nn.recurrent import AUGRU, PaddedGRU, ResetGate
from sarn.train.loop import click_loss
from tests.test_models import ARCH, N_CATS, N_ITEMS, make_batch

TOLERANCE = 1e-10
# Ragged rows with empty histories and padding past the longest, equal full rows, all empty.
LENGTHS = [([5, 0, 3, 7, 1, 0], 9), ([4, 4, 4], 4), ([0, 0], 3)]
RESETS: list[ResetGate] = ["after_product", "before_product"]


def step_by_step(x: torch.Tensor, mask: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor,
                 bias_ih: torch.Tensor, bias_hh: torch.Tensor, reset: ResetGate,
                 attention: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A GRU's equations a step at a time, the DIEN paper's AUGRU where ``attention`` is given:
    states (zero at padded steps) and the state carried over padded steps. ``before_product``
    is TensorFlow's ``GRUCell``, written as its code is: one kernel over ``[x, h]`` for the
    gates and one over ``[x, r ⊙ h]`` for the candidate, one bias each (``bias_hh`` unused)."""
    hidden = weight_hh.shape[1]
    gate_kernel = torch.cat([weight_ih[: 2 * hidden], weight_hh[: 2 * hidden]], dim=1)
    candidate_kernel = torch.cat([weight_ih[2 * hidden :], weight_hh[2 * hidden :]], dim=1)
    h = x.new_zeros(x.shape[0], hidden)
    states = []
    for t in range(x.shape[1]):
        if reset == "after_product":
            xr, xz, xn = (x[:, t] @ weight_ih.T + bias_ih).chunk(3, dim=-1)
            hr, hz, hn = (h @ weight_hh.T + bias_hh).chunk(3, dim=-1)
            reset_gate, keep = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
            candidate = torch.tanh(xn + reset_gate * hn)
        else:
            gates = torch.cat([x[:, t], h], dim=1) @ gate_kernel.T + bias_ih[: 2 * hidden]
            reset_gate, keep = torch.sigmoid(gates).chunk(2, dim=-1)
            candidate = torch.tanh(torch.cat([x[:, t], reset_gate * h], dim=1) @ candidate_kernel.T
                                   + bias_ih[2 * hidden :])
        update = 1.0 - keep
        if attention is not None:
            update = attention[:, t, None] * update
        update = update * mask[:, t, None]
        h = (1.0 - update) * h + update * candidate
        states.append(h * mask[:, t, None])
    return torch.stack(states, dim=1), h


def reference_gru(layer: PaddedGRU, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    g = layer.gru
    return step_by_step(x, mask, g.weight_ih_l0, g.weight_hh_l0, g.bias_ih_l0, g.bias_hh_l0, layer.reset)


def reference_augru(layer: AUGRU, x: torch.Tensor, mask: torch.Tensor, attention: torch.Tensor
                    ) -> torch.Tensor:
    c = layer.cell
    return step_by_step(x, mask, c.weight_ih, c.weight_hh, c.bias_ih, c.bias_hh, layer.reset, attention)[1]


def relative_error(mine: torch.Tensor, ref: torch.Tensor) -> float:
    return float((mine - ref).detach().abs().max() / ref.detach().abs().max().clamp(min=1e-300))


def inputs(lengths: list[int], width: int, dim: int, seed: int
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random histories (padded steps hold values too), their mask and attention scores."""
    g = torch.Generator().manual_seed(seed)
    mask = (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).double()
    x = torch.randn(len(lengths), width, dim, generator=g, dtype=torch.float64).requires_grad_()
    attention = torch.rand(len(lengths), width, generator=g, dtype=torch.float64).requires_grad_()
    return x, mask, attention


def grads(outputs: list[torch.Tensor], leaves: list[torch.Tensor], seed: int) -> list[torch.Tensor | None]:
    """Gradients of a random linear function of ``outputs`` (each output gets its own direction);
    None for a leaf that takes no part."""
    g = torch.Generator().manual_seed(seed)
    loss = sum((out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum() for out in outputs)
    return list(torch.autograd.grad(loss, leaves, allow_unused=True))


def assert_same_gradients(mine: list[torch.Tensor | None], ref: list[torch.Tensor | None]) -> None:
    for k, (a, b) in enumerate(zip(mine, ref, strict=True)):
        assert (a is None) == (b is None), f"gradient {k}"
        assert a is None or relative_error(a, b) < TOLERANCE, f"gradient {k}"


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize(("lengths", "width"), LENGTHS)
def test_the_gru_matches_the_step_by_step_gru(lengths: list[int], width: int, reset: ResetGate) -> None:
    """States at valid steps, zeros at padded ones, final states (zero for an empty history)
    and the gradients of the input and of every parameter (TensorFlow's form: none for the
    hidden side's bias, which it has not)."""
    torch.manual_seed(0)
    layer = PaddedGRU(5, 4, reset).double()
    x, mask, _ = inputs(lengths, width, 5, seed=1)
    leaves = [x, *layer.parameters()]
    mine, ref = layer(x, mask), reference_gru(layer, x, mask)
    for key, a, b in zip(("states", "final"), mine, ref, strict=True):
        assert relative_error(a, b) < TOLERANCE, key
    assert (mine[0] * (1 - mask[..., None]) == 0).all()
    empty = torch.tensor(lengths) == 0
    assert (mine[1][empty] == 0).all()
    assert_same_gradients(grads(list(mine), leaves, 2), grads(list(ref), leaves, 2))


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize(("lengths", "width"), LENGTHS)
def test_the_augru_matches_the_step_by_step_augru(lengths: list[int], width: int, reset: ResetGate) -> None:
    """Final states and the gradients of the input, the attention and every parameter; with
    every attention score 1 the AUGRU is the plain GRU (``nn.GRU`` where the reset acts after
    the product)."""
    torch.manual_seed(0)
    layer = AUGRU(5, 4, reset).double()
    x, mask, attention = inputs(lengths, width, 5, seed=3)
    leaves = [x, attention, *layer.parameters()]
    mine, ref = layer(x, mask, attention), reference_augru(layer, x, mask, attention)
    assert relative_error(mine, ref) < TOLERANCE
    assert_same_gradients(grads([mine], leaves, 4), grads([ref], leaves, 4))
    plain = PaddedGRU(5, 4, reset).double()
    with torch.no_grad():
        for name, value in layer.cell.named_parameters():
            getattr(plain.gru, f"{name}_l0").copy_(value)
    _, final = plain(x, mask)
    assert relative_error(layer(x, mask, torch.ones_like(attention)), final) < TOLERANCE


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("name", ["gru", "dien"])
def test_models_match_their_step_by_step_twins(name: str, reset: ResetGate, monkeypatch) -> None:
    """Logits, the auxiliary loss (DIEN's batch norm sees the padded steps' zero outputs) and
    every parameter's gradient, in training mode, with the recurrences swapped for the reference."""
    torch.manual_seed(5)
    net = build_model(name, N_ITEMS, N_CATS, {**ARCH[name], "gru_reset": reset}).double()
    net.train()
    batch = make_batch([6, 3, 8, 1, 0, 5, 8, 2], seed=6)

    def run() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        out = net(batch)
        net.zero_grad()
        (0.5 * click_loss(out.logit, batch.label.double()) + out.aux_loss).backward()
        return {"logit": out.logit, "aux_loss": out.aux_loss}, {n: p.grad for n, p in net.named_parameters()}

    mine, my_grads = run()
    for layer in net.modules():
        if isinstance(layer, PaddedGRU):
            monkeypatch.setattr(layer, "forward", lambda x, mask, layer=layer: reference_gru(layer, x, mask))
        elif isinstance(layer, AUGRU):
            monkeypatch.setattr(layer, "forward", lambda x, mask, attention, layer=layer:
                                reference_augru(layer, x, mask, attention))
    ref, ref_grads = run()
    assert name == "gru" or ref["aux_loss"] > 0
    for key, value in ref.items():
        assert relative_error(mine[key], value) < TOLERANCE, key
    assert my_grads.keys() == ref_grads.keys()
    assert_same_gradients(list(my_grads.values()), list(ref_grads.values()))
    assert (reset == "after_product") == all(grad is not None for grad in ref_grads.values())
