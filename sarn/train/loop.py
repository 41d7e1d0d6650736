"""One training run: a model, a seed, evaluations chosen on validation AUC.

The validation and test sets are evaluated every ``eval_every`` optimizer steps (params.yaml gives
it in samples; the SARN code evaluates every 100 steps of 128) and at the end of every epoch (the
curves of Fig. 4); each evaluation also records the mean click LogLoss of the training batches
since the previous evaluation (in training mode, as the optimiser saw them). Before each evaluation, batch norm and Dice
measure the statistics they evaluate with at the current weights, on a fixed sample of one
buffer of training batches (:func:`calibrate`). The reported test metrics are those of the
evaluation with the best validation AUC: the test set never chooses anything. The best
*test* AUC over the evaluations, the reference code's rule, is kept beside it only to
show how much that rule adds.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from sarn.batch import Batch
from sarn.errors import Interrupted, TrainingError
from sarn.models import CTRModel
from sarn.nn import collecting_statistics
from sarn.params import CompileMode, EpochDecay, Precision, TrainingSpec
from sarn.train.batching import BatchIndex, DeviceSamples
from sarn.train.metrics import evaluate as evaluate_split
from sarn.train.negatives import NegativeSampler
from sarn.train.optim import TensorFlowAdam

log = logging.getLogger(__name__)

EVAL_SPLITS = ("valid", "test")


def click_loss(logit: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the click probability sigmoid(logit), averaged over the batch."""
    return torch.nn.functional.binary_cross_entropy_with_logits(logit, label)


# The training samples batch norm and Dice measure their evaluation statistics on are drawn once
# per run from a stream seeded by the run's seed plus this offset (any fixed number would do).
STATISTICS_SEED_OFFSET = 7919

# Non-finite losses are looked for once every this many steps: reading a loss back from a
# GPU waits for all queued work, and a read per step would idle the GPU between batches.
CHECK_EVERY = 50


def autocast(device: torch.device, precision: Precision) -> AbstractContextManager:
    """bf16: the forward pass under CUDA autocast to bfloat16. fp32 and tf32 need no context
    (TF32 is a global switch, set by :func:`sarn.train.runner.configure_torch`); the CPU
    always computes in float32."""
    if precision == "bf16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


@torch.no_grad()
def predict(model: CTRModel, samples: DeviceSamples, batch_size: int, precision: Precision = "fp32",
            reference_chunk: int | None = None) -> np.ndarray:
    """Logits of every sample, in order, in evaluation mode, in batches of ``batch_size`` cut as
    :meth:`DeviceSamples.evaluation_order` orders them (``reference_chunk``: as the reference
    iterator's test pass)."""
    model.eval()
    order = samples.evaluation_order(reference_chunk)
    with autocast(samples.device, precision):
        logits = torch.cat([model(b).logit.double() for b in samples.batches(order, batch_size)]).cpu()
    out = torch.empty_like(logits)
    out[order] = logits
    return out.numpy()


@torch.no_grad()
def calibrate(model: CTRModel, samples: DeviceSamples, parts: list[BatchIndex], precision: Precision = "fp32") -> None:
    """Measure the statistics ``model``'s batch norms and Dice evaluate with (sarn.nn.statistics)
    at its current weights: their batch statistics pooled over ``parts`` of ``samples``, each
    normalised as in training. The model runs in evaluation mode, so its extra training losses
    (and their random draws) are not computed, and the auxiliary nets' statistics, which no
    prediction uses, are not measured. Leaves ``model`` in evaluation mode."""
    model.eval()
    with collecting_statistics(model) as any_kept, autocast(samples.device, precision):
        if any_kept:
            for part in parts:
                model(samples.batch(part))


def evaluation_batches(model: CTRModel, spec: TrainingSpec, eval_batch_size: int) -> tuple[int, int | None]:
    """The batch size and reference chunk :func:`predict` evaluates ``model`` with. A prediction
    that depends on its batch is made in the reference code's test batches (the run's training
    batch size, sorted by length within its buffers); any other in the fastest ones."""
    if model.batch_dependent:
        return spec.batch_size, spec.batch_size * spec.length_sort_chunk
    return eval_batch_size, None


def make_optimizer(model: CTRModel, spec: TrainingSpec) -> torch.optim.Optimizer:
    """The configured optimizer. Adam is TensorFlow's (:class:`TensorFlowAdam`, as both reference
    codes train) and runs fused (one kernel for all parameters) on every device: on the CPU that
    makes an Electronics-sized step 1.2 to 2.3 times faster, most of it in the dense update of
    the item table (docs/benchmarks.md, "The optimizer")."""
    if spec.optimizer == "adam":
        return TensorFlowAdam(model.parameters(), lr=spec.lr, fused=True)
    return torch.optim.SGD(model.parameters(), lr=spec.lr)


def compile_model(model: CTRModel, mode: CompileMode, device: torch.device) -> CompileMode:
    """Put ``model``'s forward pass under ``torch.compile`` in place (its state_dict keeps
    its keys); return the mode it runs in.

    A model that is not ``compilable`` stays eager, and ``reduce-overhead`` (CUDA graphs)
    is ``default`` off CUDA. Shapes are dynamic, so that batches of every history length
    share one compiled graph; a few more are made for training and evaluation, width 1
    and small last batches.
    """
    if not model.compilable:
        return "eager"
    effective = compile_mode_on(device, mode)
    if effective != "eager":
        model.compile(dynamic=True, mode=effective)
    return effective


def compile_mode_on(device: torch.device, mode: CompileMode) -> CompileMode:
    """The mode ``mode`` is on ``device``: CUDA graphs (``reduce-overhead``) need CUDA."""
    return "default" if mode == "reduce-overhead" and device.type != "cuda" else mode


def _check_finite(losses: list[torch.Tensor], first_step: int, label: str, epoch: int) -> None:
    values = torch.stack(losses)
    bad = (~torch.isfinite(values)).nonzero()
    if len(bad):
        k = int(bad[0, 0])
        raise TrainingError(
            f"{label}: loss became {values[k].item()} at epoch {epoch}, batch {first_step + k}; "
            "lower the learning rate or check the inputs"
        )


def train_step(model: CTRModel, optimizer: torch.optim.Optimizer, batch: Batch, spec: TrainingSpec,
               precision: Precision = "fp32") -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on ``batch``; returns the total loss and the click loss, on the
    device. Nothing in it waits for the device (tests/test_training.py checks every model)."""
    with autocast(batch.label.device, precision):
        out = model(batch)
        ctr = click_loss(out.logit.float(), batch.label)
        loss = spec.click_loss_weight * ctr + out.aux_loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if spec.grad_clip_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec.grad_clip_norm)
    optimizer.step()
    return loss, ctr


class LossTally:
    """The click losses of the training batches since the last read, kept on the device until read."""

    def __init__(self) -> None:
        self._sums: list[torch.Tensor] = []
        self.samples = 0

    def add(self, click_loss_mean: torch.Tensor, batch_size: int) -> None:
        self._sums.append(click_loss_mean.detach() * batch_size)
        self.samples += batch_size

    def read(self) -> float:
        """Mean click LogLoss over the samples added since the previous read (reads the device
        once), and start afresh: what the reference code prints as its training loss at every
        evaluation (its mean over the 100 iterations since the last one)."""
        mean = float(torch.stack(self._sums).double().sum()) / self.samples
        self._sums, self.samples = [], 0
        return mean


def train_epoch(model: CTRModel, optimizer: torch.optim.Optimizer, train: DeviceSamples,
                batches: list[BatchIndex], spec: TrainingSpec, label: str, epoch: int,
                on_step: Callable[[int, LossTally], None] = lambda step, tally: None,
                precision: Precision = "fp32") -> float:
    """One pass over ``batches`` in training mode; returns the mean click LogLoss of the
    epoch's batches since ``on_step`` last read the tally (all of them if it never did).
    ``on_step(k, tally)`` runs after the epoch's k-th optimizer step (1-based); it may read the
    tally and evaluate, and must leave the model in training mode. Nothing is read back from the device inside the loop except every ``CHECK_EVERY``
    steps."""
    model.train()
    pending: list[torch.Tensor] = []
    tally = LossTally()
    # Closed on the way out of any exception too, so that the bar is wiped before the one-line
    # message of an error or Ctrl-C is printed.
    with tqdm((train.batch(part) for part in batches), total=len(batches), leave=False,
              desc=f"{label} epoch {epoch}/{spec.epochs}", mininterval=2.0) as bar:
        for step, batch in enumerate(bar, start=1):
            loss, ctr = train_step(model, optimizer, batch, spec, precision)
            pending.append(loss.detach())
            tally.add(ctr, batch.label.numel())
            if len(pending) == CHECK_EVERY or step == len(batches):
                _check_finite(pending, step - len(pending) + 1, label, epoch)
                pending = []
            on_step(step, tally)
    return tally.read()


# What a run reports, by the rule that picks one of its evaluations (see RunResult).
SELECTIONS = ("validation", "test", "last")


@dataclass
class RunResult:
    """A run's evaluations and what each selection rule picks among them.

    ``history``: one row per evaluation (``epoch``, optimizer ``step``, ``epoch_end``, the
    mean click LogLoss of the training batches since the previous evaluation, and the metrics
    of each evaluated split).
    ``selected[rule]``: the index in ``history`` that ``rule`` picks: ``validation`` (the best
    validation AUC: what the project reports; absent without a validation set), ``test`` (the
    best test AUC: the reference code's rule, reported only as a labelled extra), ``last``.
    ``reported``: the rule whose row the run reports (validation where there is a validation
    set, else last); ``state_dict`` holds the weights at that row.
    """

    history: list[dict[str, float]]
    selected: dict[str, int]
    reported: str
    state_dict: dict[str, torch.Tensor]
    # fraction of training → (optimizer steps taken, weights at that point)
    snapshots: dict[float, tuple[int, dict[str, torch.Tensor]]] = field(default_factory=dict)

    @property
    def best(self) -> dict[str, float]:
        """The reported row."""
        return self.history[self.selected[self.reported]]


def train_run(
    model: CTRModel,
    data: dict[str, DeviceSamples],
    spec: TrainingSpec,
    seed: int,
    eval_batch_size: int,
    label: str,
    statistics_samples: int,
    eval_every: int | None = None,
    snapshot_fractions: Sequence[float] = (),
    precision: Precision = "fp32",
    negatives: NegativeSampler | None = None,
) -> RunResult:
    """Train ``model`` (already initialised under ``seed``) and keep its reported evaluation.

    The splits of ``data`` other than ``train`` are evaluated after every ``eval_every``
    optimizer steps (None: never between epoch ends) and at the end of every epoch, each time
    with the statistics of batch norm and Dice measured on ``statistics_samples`` training
    samples, the same ones every time (:func:`calibrate`). Where ``data`` has a ``valid``
    split, the evaluation with the best validation AUC is reported; otherwise the last one. ``negatives`` draws the history negatives of the training split
    anew before every epoch (None: they stay as preprocessing drew them).
    ``snapshot_fractions`` (0 = before the first update, 1 = after the last) also keeps
    the weights at those points of training (Fig. 5a).
    """
    optimizer = make_optimizer(model, spec)
    shuffler = torch.Generator().manual_seed(seed)
    train = data["train"]
    evaluated = [split for split in EVAL_SPLITS if split in data]
    eval_size, eval_chunk = evaluation_batches(model, spec, eval_batch_size)
    reported = "validation" if "valid" in data else "last"
    history: list[dict[str, float]] = []
    best_auc, best_state = -np.inf, None
    snapshots: dict[float, tuple[int, dict[str, torch.Tensor]]] = {}
    wanted: dict[int, list[float]] = {}  # optimizer step → fractions to keep there
    step_total = 0
    statistics_parts = train.sample_batches(statistics_samples, spec.batch_size,
                                            torch.Generator().manual_seed(STATISTICS_SEED_OFFSET + seed))

    def keep(step: int) -> None:
        for fraction in wanted.get(step, []):
            calibrate(model, train, statistics_parts, precision)
            snapshots[fraction] = (step, copy.deepcopy(model.state_dict()))
            model.train()

    def evaluate(epoch: int, train_logloss: float, epoch_end: bool) -> None:
        nonlocal best_auc, best_state
        row: dict[str, float] = {"epoch": epoch, "step": step_total, "epoch_end": int(epoch_end),
                                 "train_logloss": train_logloss}
        calibrate(model, train, statistics_parts, precision)
        for split in evaluated:
            logits = predict(model, data[split], eval_size, precision, eval_chunk)
            metrics = evaluate_split(data[split].label, logits, data[split].user)
            row.update({f"{split}_{k}": v for k, v in metrics.items()})
        history.append(row)
        model.train()
        if reported == "validation" and row["valid_auc"] > best_auc:
            best_auc, best_state = row["valid_auc"], copy.deepcopy(model.state_dict())

    try:
        for epoch in range(1, spec.epochs + 1):
            batches = train.training_batches(spec.batch_size, spec.length_sort_chunk, shuffler,
                                             spec.batch_order)
            if negatives is not None:
                negatives.redraw(train)
            if epoch == 1:  # every epoch has the same number of batches
                for fraction in snapshot_fractions:
                    wanted.setdefault(round(fraction * len(batches) * spec.epochs), []).append(fraction)
                keep(0)

            def stepped(step: int, tally: LossTally, epoch: int = epoch, last: int = len(batches)) -> None:
                nonlocal step_total
                step_total += 1
                keep(step_total)
                if eval_every and step_total % eval_every == 0 and step < last:
                    evaluate(epoch, tally.read(), epoch_end=False)

            train_logloss = train_epoch(model, optimizer, train, batches, spec, label, epoch, stepped,
                                        precision)
            evaluate(epoch, train_logloss, epoch_end=True)
            row = history[-1]
            log.info("%s epoch %d: %s", label, epoch,
                     ", ".join(f"{split} AUC {row[f'{split}_auc']:.4f}" for split in evaluated))
            if isinstance(spec.lr_schedule, EpochDecay):
                for group in optimizer.param_groups:
                    group["lr"] *= spec.lr_schedule.factor
    except KeyboardInterrupt:
        raise Interrupted(f"training {label}") from None  # said by the command line
    selected = {"test": _first_best(history, "test_auc"), "last": len(history) - 1}
    if reported == "validation":
        selected["validation"] = _first_best(history, "valid_auc")
    else:
        best_state = copy.deepcopy(model.state_dict())
    assert best_state is not None
    return RunResult(history, selected, reported, best_state, snapshots)


def _first_best(history: list[dict[str, float]], key: str) -> int:
    """Index of the first row with the highest ``key``."""
    return int(np.argmax([row[key] for row in history]))
