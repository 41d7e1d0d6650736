"""Properties every model must have, and SARN against a straightforward computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from benchmarks.straightforward_sarn import MaterialisedSARN, reference_outputs
from sarn.batch import Batch
from sarn.errors import ConfigError
from sarn.models import MODELS, build_model, model_class
from sarn.nn import collecting_statistics, masked_max, relation_combine
from sarn.nn import relation as relation_module
from sarn.params import load
from sarn.train.loop import click_loss
from tests.conftest import ROOT

N_ITEMS, N_CATS = 50, 8
RUNS = load(ROOT / "params.yaml").models
# Each run's architecture, and each registered class's: its run of the same name, else its first run.
ARCH = {name: spec.architecture for name, spec in RUNS.items()}
for _spec in RUNS.values():
    ARCH.setdefault(_spec.model, _spec.architecture)


def make_batch(lengths: list[int], width: int | None = None, seed: int = 0, pad_value: int = 0) -> Batch:
    """Random ids; positions past each length hold ``pad_value`` (0 in real batches)."""
    g = torch.Generator().manual_seed(seed)
    b, width = len(lengths), width or max(max(lengths), 1)
    mask = (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).float()

    def ids(n: int, shape) -> torch.Tensor:
        raw = torch.randint(1, n, shape, generator=g)
        return torch.where(mask.bool(), raw, torch.full_like(raw, pad_value)) if len(shape) == 2 else raw

    now = torch.full((b,), 1_400_000_000)
    ages = torch.randint(0, 5000 * 86_400, (b, width), generator=g)
    return Batch(
        item=ids(N_ITEMS, (b,)), category=ids(N_CATS, (b,)), timestamp=now,
        hist_item=ids(N_ITEMS, (b, width)), hist_category=ids(N_CATS, (b, width)),
        hist_timestamp=torch.where(mask.bool(), now[:, None] - ages, torch.full_like(ages, pad_value)),
        neg_item=ids(N_ITEMS, (b, width)), neg_category=ids(N_CATS, (b, width)),
        mask=mask, label=torch.randint(0, 2, (b,), generator=g).float(),
    )


def model(name: str, seed: int = 0, dtype=torch.float32, **changes: object):
    torch.manual_seed(seed)
    return build_model(name, N_ITEMS, N_CATS, {**ARCH[name], **changes}).to(dtype)


def fit(net, batches: list[Batch]) -> None:
    """One Adam step per batch in training mode; then the statistics batch norm and Dice evaluate
    with are measured on the distinct batches, as training does before an evaluation."""
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    net.train()
    for batch in batches:
        out = net(batch)
        loss = click_loss(out.logit, batch.label) + out.aux_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad(), collecting_statistics(net):
        for batch in {id(batch): batch for batch in batches}.values():
            net(batch)
    net.eval()


def warm_up(net) -> None:
    """A few training steps so that running statistics are not trivial."""
    fit(net, [make_batch([5, 3, 7, 1, 6, 2], seed=100 + s) for s in range(3)])


ALL = sorted(MODELS)


@pytest.mark.parametrize("name", ALL)
def test_padded_positions_do_not_change_the_output(name: str) -> None:
    net = model(name)
    warm_up(net)
    lengths = [4, 7, 2, 0, 5]
    clean = make_batch(lengths, width=9, seed=1, pad_value=0)
    noisy = make_batch(lengths, width=9, seed=1, pad_value=5)
    assert not torch.equal(clean.hist_item, noisy.hist_item)
    with torch.no_grad():
        torch.testing.assert_close(net(clean).logit, net(noisy).logit, rtol=0, atol=0)


@pytest.mark.parametrize("name", ALL)
def test_evaluation_prediction_does_not_depend_on_the_batch(name: str) -> None:
    net = model(name)
    warm_up(net)
    batch = make_batch([3, 9, 5, 1], seed=2)
    with torch.no_grad():
        together = net(batch).logit
        for k, n in enumerate([3, 9, 5, 1]):
            # Sample k on its own, padded only to its own length.
            alone = Batch(**{f: v[k : k + 1, :n] if v.dim() == 2 else v[k : k + 1]
                             for f, v in vars(batch).items() if v is not None})
            torch.testing.assert_close(net(alone).logit, together[k : k + 1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_gradients_reach_every_parameter(name: str) -> None:
    net = model(name)
    net.train()
    batch = make_batch([5, 3, 7, 2, 6, 4, 1, 7], seed=3)
    out = net(batch)
    (click_loss(out.logit, batch.label) + out.aux_loss).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


@pytest.mark.parametrize("name", ALL)
def test_a_tiny_batch_can_be_overfitted(name: str) -> None:
    net = model(name)
    batch = make_batch([3, 5, 2, 6, 4, 1, 5, 3] * 4, seed=4)
    fit(net, [batch] * 300)
    with torch.no_grad():
        logit = net(batch).logit
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logit, batch.label).item()
    assert roc_auc_score(batch.label.numpy(), logit.numpy()) == 1.0
    assert bce < 0.1


@pytest.mark.parametrize("name", ALL)
def test_all_padding_histories_give_finite_outputs_and_gradients(name: str) -> None:
    for lengths in ([0, 0, 0], [0, 4, 0]):
        net = model(name)
        net.train()
        batch = make_batch(lengths, seed=5)
        out = net(batch)
        loss = click_loss(out.logit, batch.label) + out.aux_loss
        loss.backward()
        assert torch.isfinite(loss)
        assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
        net.eval()
        with torch.no_grad():
            assert torch.isfinite(net(batch).logit).all()


@pytest.mark.parametrize("name", ALL)
def test_index0_is_a_fixed_zero_or_a_learned_row_for_unseen_ids(name: str) -> None:
    batch = make_batch([3, 5, 2, 4], seed=6)
    batch.item[0], batch.category[0] = 0, 0  # a target whose ids were not seen in training
    batch.hist_item[1, 0] = 0  # and a history click
    for index0, learned in (("zero", False), ("trainable", True)):
        net = model(name, index0=index0)
        net.train()
        out = net(batch)
        (click_loss(out.logit, batch.label) + out.aux_loss).backward()
        table = net.embedding.items.weight
        assert bool(table.grad[0].abs().sum() > 0) is learned
        assert bool(table[0].abs().sum() > 0) is learned


SUMMING = {"pnn", "gru", "din", "dien"}  # the DIEN code's models: an unmasked Σ X in the head


@pytest.mark.parametrize("name", ALL)
def test_a_learned_index0_enters_the_dien_codes_sums_over_the_batchs_padding(name: str) -> None:
    """As in the DIEN code, whose history is padded with index 0 to the batch's longest and
    summed unmasked; the other models mask padding whatever index 0 is."""
    net = model(name, index0="trainable")
    warm_up(net)
    lengths = [4, 2, 5]
    wide = make_batch(lengths, width=9, seed=7)
    narrow = Batch(**{f: v[:, :5] if v.dim() == 2 else v for f, v in vars(wide).items() if v is not None})
    with torch.no_grad():
        changed = not torch.allclose(net(narrow).logit, net(wide).logit, rtol=0, atol=1e-6)
        assert changed is (name in SUMMING) is net.batch_dependent
        assert not model(name).batch_dependent
        if name in SUMMING:
            target, history, mask = net.embed(wide)
            _, summed, _ = net.sum_pool_features(target, history, mask)
            padding = torch.cat([net.embedding.items.weight[0], net.embedding.categories.weight[0]])
            expected = history.sum(dim=1) + torch.tensor([5.0, 7.0, 4.0])[:, None] * padding
            torch.testing.assert_close(summed, expected)


@pytest.mark.parametrize("name", ["sarn", "rn"])
def test_the_codes_max_pools_take_a_zero_only_from_a_historys_padding(name: str) -> None:
    """``max_pool_zero: padded`` pools as the code does: a history as long as its batch's longest
    has no padding, so no zero joins its max, and its prediction depends on that batch."""
    net = model(name, max_pool_zero="padded")
    warm_up(net)
    assert net.batch_dependent and not model(name).batch_dependent
    wider = make_batch([6, 2, 4], width=8, seed=3)
    batch = Batch(**{f: v[:, :6] if v.dim() == 2 else v for f, v in vars(wider).items() if v is not None})
    with torch.no_grad():
        _, history, mask = net.embed(batch)
        top = masked_max(history, mask, "padded")
        assert (top[0] < 0).any() and (top[1:] >= 0).all()  # only the longest history has no padding
        torch.testing.assert_close(top[1:], masked_max(history, mask)[1:])
        assert not torch.allclose(net(wider).logit[0], net(batch).logit[0])  # padded to 8, row 0 meets a zero
        torch.testing.assert_close(net(wider).logit[1:], net(batch).logit[1:])


def test_unknown_model_name_lists_known_ones() -> None:
    assert {"atrank", "dien", "din", "gru", "pnn", "rn", "sarn", "wide_deep"} <= set(MODELS)
    known = ", ".join(sorted(MODELS))
    with pytest.raises(ConfigError, match=f"unknown model 'bert'; known models: {known}$"):
        model_class("bert")


def test_every_model_of_table_two_is_registered_and_every_registered_model_configured() -> None:
    assert list(MODELS)[:8] == ["wide_deep", "pnn", "gru", "atrank", "din", "dien", "rn", "sarn"]
    assert set(MODELS) <= set(ARCH)


def test_sarn_relations_lie_in_unit_interval_and_vanish_on_padding() -> None:
    net = model("sarn")
    lengths = [4, 7, 2, 0]
    batch = make_batch(lengths, seed=6)
    with torch.no_grad():
        view = net.relational_view(batch)
    rel = view.relation
    assert rel.min() >= 0 and rel.max() <= 1 + 1e-6
    assert rel.max() > 0.1
    for k, n in enumerate(lengths):
        assert (rel[k, n:, :] == 0).all() and (rel[k, :, n:] == 0).all()
        assert (view.scores[k, n:, :] == 0).all() and (view.scores[k, :, n:] == 0).all()


@pytest.mark.parametrize("zero", ["always", "padded"])
@pytest.mark.parametrize("materialised", [False, True], ids=["sarn", "sarn_materialised"])
@pytest.mark.parametrize(("lengths", "seed"), [([6, 3, 8, 1, 0, 5], 8), ([7, 7, 7, 7], 11), ([9, 2, 5], 12)])
def test_sarn_matches_the_straightforward_graph_in_float64(lengths: list[int], seed: int, materialised: bool,
                                                           zero: str) -> None:
    """Logits, every loss and every gradient agree with the reference graph on fresh inputs
    (the second batch has no padding, so pooled channels whose pairs are all negative meet
    the zero vector without a padded pair to tie with, or with ``padded`` as the code pools,
    no zero at all); so do the benchmark's SARN with materialised pairs."""
    net = model("sarn", seed=seed, dtype=torch.float64, max_pool_zero=zero)
    if materialised:
        torch.manual_seed(seed)
        net = MaterialisedSARN(N_ITEMS, N_CATS, **{**ARCH["sarn"], "max_pool_zero": zero}).double()
    net.train()
    batch = make_batch(lengths, seed=seed + 100)
    label = batch.label.double()

    def run(compute) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        torch.manual_seed(seed)  # the same permutation of positions in the auxiliary loss
        values = compute()
        values["loss"] = 0.5 * click_loss(values["logit"], label) + values["aux_loss"]
        net.zero_grad()
        values["loss"].backward()
        return values, {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}

    def ours() -> dict[str, torch.Tensor]:
        view = net.relational_view(batch)
        out = net(batch)
        torch.manual_seed(seed)
        click = net._click_loss(batch, view)
        return {"relation": view.relation, "scores": view.scores, "user": view.user, "logit": out.logit,
                "position_loss": net._position_loss(view.pairs, view.mask), "click_aux_loss": click,
                "aux_loss": out.aux_loss}

    ref, ref_grads = run(lambda: reference_outputs(net, batch))
    mine, my_grads = run(ours)
    if zero == "padded" and len(set(lengths)) == 1:  # no padding: no zero joins the max, as in the code
        assert (mine["user"] < 0).any()
    for key, value in ref.items():
        err = (mine[key] - value).abs().max() / value.abs().max().clamp(min=1e-300)
        assert err < 1e-10, key
    assert ref_grads.keys() == my_grads.keys() and len(ref_grads) == len(list(net.parameters()))
    for n, grad in ref_grads.items():
        err = (my_grads[n] - grad).abs().max() / grad.abs().max().clamp(min=1e-300)
        assert err < 1e-10, n


@pytest.mark.parametrize("name", ["sarn", "rn"])
def test_relational_extra_losses_follow_alpha_and_beta(name: str) -> None:
    """The extra loss is α·L_reg + β·L_aux; a model built with a zero weight has no net for that loss."""
    batch = make_batch([5, 3, 7, 2], seed=9)
    torch.manual_seed(0)
    net = build_model(name, N_ITEMS, N_CATS, {**ARCH[name], "alpha": 1.0, "beta": 1.0}).train()
    losses = {}
    for alpha, beta in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (2.0, 0.5)]:
        net.alpha, net.beta = alpha, beta
        torch.manual_seed(1)  # same permutation of positions in the auxiliary loss
        losses[alpha, beta] = net(batch).aux_loss.item()
    assert losses[0.0, 0.0] == 0.0
    assert losses[1.0, 0.0] > 0 and losses[0.0, 1.0] > 0
    assert np.isclose(losses[1.0, 1.0], losses[1.0, 0.0] + losses[0.0, 1.0], rtol=1e-5)
    assert np.isclose(losses[2.0, 0.5], 2 * losses[1.0, 0.0] + 0.5 * losses[0.0, 1.0], rtol=1e-5)
    without = build_model(name, N_ITEMS, N_CATS, {**ARCH[name], "alpha": 0.0, "beta": 0.0})
    assert without.regressor_in is None and without.aux_net is None


def test_dien_auxiliary_loss_ignores_padded_steps() -> None:
    net = model("dien")
    net.train()
    lengths = [6, 2, 4, 1]
    losses = []
    for pad_value in (0, 5):
        batch = make_batch(lengths, width=8, seed=10, pad_value=pad_value)
        _, history, mask = net.embed(batch)
        states, _ = net.extractor(history, mask)
        losses.append(net.next_click_loss(batch, states, history, mask))
    assert losses[0] > 0
    torch.testing.assert_close(losses[0], losses[1], rtol=0, atol=0)


def test_atrank_time_gap_buckets_follow_its_code() -> None:
    """Whole days between the click's and the target's calendar day, plus one, against the
    boundaries 2, 4, …, 4096 (ATRank's build_dataset.py); bucket 12 one-hots to zeros."""
    from sarn.models.atrank import N_GAP_BUCKETS, gap_buckets, one_hot

    day = 86_400
    now = torch.tensor([2_000_000_000 - 2_000_000_000 % day + 3600])  # one hour into a day
    ages = [0, 3599, 3601, day, 2 * day, 3 * day, 6 * day, 7 * day, 4094 * day, 4095 * day, 10_000 * day]
    expected = [0, 0, 1, 1, 1, 2, 2, 3, 11, 12, 12]
    clicks = now - torch.tensor([ages])
    buckets = gap_buckets(now, clicks)
    assert buckets.tolist() == [expected]
    assert N_GAP_BUCKETS == 12 and one_hot(buckets, N_GAP_BUCKETS, torch.float32)[0, -1].sum() == 0


@pytest.mark.parametrize("name", ALL)
def test_a_context_feature_reaches_every_model_as_a_learned_bias(name: str) -> None:
    from dataclasses import replace

    torch.manual_seed(0)
    net = build_model(name, N_ITEMS, N_CATS, ARCH[name], n_contexts=4).eval()
    batch = replace(make_batch([3, 9, 5, 1], seed=2), context=torch.tensor([1, 2, 3, 0]))
    before = net(batch).logit.detach()
    with torch.no_grad():
        net.context_bias.weight[2] = 0.5
    after = net(batch).logit.detach()
    torch.testing.assert_close(after - before, torch.tensor([0.0, 0.5, 0.0, 0.0]))
    net.train()
    net(batch).logit.sum().backward()
    assert net.context_bias.weight.grad[1:].abs().sum() > 0 and net.context_bias.weight.grad[0] == 0
    with pytest.raises(ValueError, match="built for a context feature but the batch has none"):
        net(replace(batch, context=None))


@pytest.mark.parametrize("chunk_elements", [2**24, 40])
def test_pair_scores_without_stored_pairs_match_the_materialised_ones(monkeypatch, chunk_elements: int) -> None:
    """SARN's pair MLP (recomputed a slice of the batch at a time in the backward pass)
    gives the values and gradients of the same MLP on materialised pairs, and passes
    autograd's numerical gradient check, with one slice and with many."""
    monkeypatch.setattr(relation_module, "CHUNK_ELEMENTS", chunk_elements)
    g = torch.Generator().manual_seed(3)
    b, length, d, h = 5, 4, 3, 6

    def leaf(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()

    relation, items, weight, shift, out = leaf(b, length, length), leaf(b, length, d), leaf(h, d), leaf(b, h), leaf(h)
    inputs = (relation, items, weight, shift, out)

    def similitude(*args):
        return relation_module.SimilitudePairs(args[0], args[1]).score(*args[2:])

    def materialised(*args):
        return relation_module.MaterialisedPairs(relation_combine(args[0], args[1])).score(*args[2:])

    assert torch.autograd.gradcheck(similitude, inputs)
    ours, ref = similitude(*inputs), materialised(*inputs)
    assert torch.allclose(ours, ref, rtol=1e-12, atol=0)
    probe = torch.randn(ours.shape, generator=g, dtype=torch.float64)
    grads = [torch.autograd.grad((f(*inputs) * probe).sum(), inputs) for f in (similitude, materialised)]
    for mine, theirs in zip(*grads, strict=True):
        assert torch.allclose(mine, theirs, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_trains_under_bfloat16_autocast(name: str) -> None:
    """runtime.precision: bf16 runs the forward pass under autocast (CUDA); the CPU's
    autocast mixes the same dtypes, so a model that breaks there breaks on the GPU too."""
    net = model(name)
    net.train()
    batch = make_batch([5, 3, 7, 2], seed=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(batch)
        loss = click_loss(out.logit.float(), batch.label) + out.aux_loss
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


def test_a_constructor_argument_without_a_type_hint_is_named(monkeypatch) -> None:
    """params.yaml's schema for a model comes from its constructor's hints: a missing one is said
    with the model and the argument, not a bare KeyError."""
    from sarn.checks import architecture_schema

    class Untyped:
        def __init__(self, n_items: int, n_categories: int, *, hidden, embedding_dim: int, dense_init) -> None:
            pass

    monkeypatch.setitem(MODELS, "untyped_for_this_test", Untyped)
    with pytest.raises(ConfigError, match=r"model 'untyped_for_this_test' \(.*Untyped\): the constructor's keyword-only "
                                          r"argument\(s\) hidden, dense_init have no type hint"):
        architecture_schema("untyped_for_this_test")
