"""The statistics batch norm and Dice evaluate with: the plain average over the training batches
run while collecting, at the weights evaluated."""

from __future__ import annotations

import pytest
import torch

from sarn.models import MODELS
from sarn.nn import BatchNorm, Dice, EvaluationStatistics, collecting_statistics
from tests.test_models import fit, make_batch, model


def _batches() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(rows, 4, generator=g, dtype=torch.float64) * (1 + k) + k
            for k, rows in enumerate([7, 3, 12])]


def test_the_evaluation_statistics_are_the_plain_average_of_the_batches_collected() -> None:
    stats = EvaluationStatistics(4, eps=1e-3).double().train()
    torch_bn = torch.nn.BatchNorm1d(4, eps=1e-3, momentum=None, affine=False).double().train()
    stats.normalise(_batches()[2] * 5, use_batch=True)  # training, not collecting: not counted
    assert stats.batches.item() == 0
    with collecting_statistics(torch.nn.Sequential(stats)) as any_kept:
        assert any_kept
        for x in _batches():
            normed = stats.normalise(x, use_batch=True)
            torch.testing.assert_close(normed, torch_bn(x), rtol=0, atol=1e-12)  # batch statistics
    assert not stats.collecting
    mean, var = stats.average()
    torch.testing.assert_close(mean, torch.stack([x.mean(0) for x in _batches()]).mean(0), rtol=0, atol=1e-12)
    torch.testing.assert_close(var, torch.stack([x.var(0) for x in _batches()]).mean(0), rtol=0, atol=1e-12)
    # PyTorch's cumulative average (momentum None) is the same average, for an independent check.
    torch.testing.assert_close(mean, torch_bn.running_mean, rtol=0, atol=1e-12)
    torch.testing.assert_close(var, torch_bn.running_var, rtol=0, atol=1e-12)
    x = _batches()[0]
    stats.eval()
    torch.testing.assert_close(stats.normalise(x, use_batch=False), (x - mean) / torch.sqrt(var + 1e-3))

    with collecting_statistics(stats):  # collecting again forgets what was held
        mean, var = stats.average()  # no batch yet: statistics 0 and 1
        assert torch.equal(mean, torch.zeros(4, dtype=torch.float64))
        assert torch.equal(var, torch.ones(4, dtype=torch.float64))
        stats.train()
        stats.normalise(x, use_batch=True)
    torch.testing.assert_close(stats.average()[1], x.var(0), rtol=0, atol=1e-12)
    with collecting_statistics(torch.nn.Linear(2, 2)) as any_kept:
        assert not any_kept


def test_evaluation_neither_adds_to_the_statistics_nor_depends_on_its_batch() -> None:
    norm = BatchNorm(4, "standard").double().train()
    with collecting_statistics(norm):
        for x in _batches():
            norm(x)
    norm.eval()
    before = {k: v.clone() for k, v in norm.state_dict().items()}
    x = _batches()[2]
    whole = norm(x)
    torch.testing.assert_close(torch.cat([norm(x[:5]), norm(x[5:])]), whole, rtol=0, atol=0)
    assert all(torch.equal(v, norm.state_dict()[k]) for k, v in before.items())


def test_dice_on_a_batch_of_one_normalises_to_zero_as_tensorflow_does() -> None:
    """TensorFlow's Dice gives p = 1/2 for a lone sample (x − its own mean is 0); PyTorch's batch
    norm refuses one value per channel."""
    dice = Dice(3, "batch").eval()
    with torch.no_grad():
        dice.alpha.fill_(0.2)
    x = torch.tensor([[1.5, -2.0, 0.3]])
    torch.testing.assert_close(dice(x), x * (0.2 * 0.5 + 0.5))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_trains_on_a_batch_of_one(name: str) -> None:
    """A split whose size is one more than a multiple of the batch size ends in a batch of one."""
    net = model(name)
    fit(net, [make_batch([4, 2, 5]), make_batch([3])])
    with torch.no_grad():
        assert torch.isfinite(net(make_batch([3, 1], seed=1)).logit).all()
