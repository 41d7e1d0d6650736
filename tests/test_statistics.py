"""The statistics batch norm and Dice evaluate with: those of the training batches run while
collecting, at the weights evaluated, pooled by rows."""

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


def test_the_evaluation_statistics_pool_the_batches_collected_by_their_rows() -> None:
    """The mean over every row, and the within-batch variance with each batch's degrees of
    freedom: a batch of three weighs a quarter of one of twelve."""
    stats = EvaluationStatistics(4, eps=1e-3).double().train()
    torch_bn = torch.nn.BatchNorm1d(4, eps=1e-3, momentum=None, affine=False).double().train()
    stats.normalise(_batches()[2] * 5, use_batch=True)  # training, not collecting: not counted
    assert stats.rows.item() == 0
    stats.eval()  # collecting uses each batch's statistics in evaluation mode too
    with collecting_statistics(torch.nn.Sequential(stats)) as any_kept:
        assert any_kept
        for x in _batches():
            normed = stats.normalise(x, use_batch=False)
            torch.testing.assert_close(normed, torch_bn(x), rtol=0, atol=1e-12)  # batch statistics
    assert not stats.collecting
    mean, var = stats.collected()
    rows = torch.cat(_batches())
    torch.testing.assert_close(mean, rows.mean(0), rtol=0, atol=1e-12)
    within = sum(((x - x.mean(0)) ** 2).sum(0) for x in _batches())
    torch.testing.assert_close(var, within / (len(rows) - len(_batches())), rtol=0, atol=1e-12)
    x = _batches()[0]
    torch.testing.assert_close(stats.normalise(x, use_batch=False), (x - mean) / torch.sqrt(var + 1e-3))
    # Batches of one size: the average of their unbiased variances, as PyTorch's cumulative average.
    torch_bn.reset_running_stats()
    with collecting_statistics(stats):
        for x in _batches():
            stats.normalise(x[:3], use_batch=True)
            torch_bn(x[:3])
    torch.testing.assert_close(stats.collected(), (torch_bn.running_mean, torch_bn.running_var),
                               rtol=0, atol=1e-12)

    with collecting_statistics(stats):  # collecting again forgets what was held
        mean, var = stats.collected()  # no batch yet: statistics 0 and 1
        assert torch.equal(mean, torch.zeros(4, dtype=torch.float64))
        assert torch.equal(var, torch.ones(4, dtype=torch.float64))
        stats.train()
        stats.normalise(x, use_batch=True)
    torch.testing.assert_close(stats.collected()[1], x.var(0), rtol=0, atol=1e-12)
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


def test_statistics_are_computed_in_float32_under_bfloat16() -> None:
    stats = EvaluationStatistics(4, eps=1e-3)
    x = (_batches()[2] * 30 + 1000).float()
    with collecting_statistics(stats):
        normed = stats.normalise(x.bfloat16(), use_batch=True)
    assert normed.dtype == torch.bfloat16
    torch.testing.assert_close(stats.collected()[0], x.bfloat16().float().mean(0), rtol=0, atol=1e-4)
    torch.testing.assert_close(normed.float(), stats.normalise(x.bfloat16().float(), use_batch=True),
                               rtol=1e-2, atol=1e-2)


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
