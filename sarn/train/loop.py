"""One training run: a model, a seed, epochs chosen on validation AUC.

Every epoch records the mean LogLoss of its training batches (in training mode, as the
optimiser saw them) and ends with an evaluation of the validation and test sets (the
curves of Fig. 4). The reported test metrics are those of the epoch with the best
validation AUC; the test set never chooses anything.
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

from sarn.errors import TrainingError
from sarn.models import Batch, CTRModel
from sarn.params import CompileMode, Precision, TrainingSpec
from sarn.train.batching import BatchIndex, DeviceSamples
from sarn.train.metrics import evaluate

log = logging.getLogger(__name__)

EVAL_SPLITS = ("valid", "test")


@dataclass
class RunResult:
    history: list[dict[str, float]]  # one row per epoch
    best_epoch: int
    best: dict[str, float]  # valid_* and test_* metrics of the best epoch
    state_dict: dict[str, torch.Tensor]
    # fraction of training → (optimizer steps taken, weights at that point)
    snapshots: dict[float, tuple[int, dict[str, torch.Tensor]]] = field(default_factory=dict)


def click_loss(logit: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the click probability sigmoid(logit), averaged over the batch."""
    return torch.nn.functional.binary_cross_entropy_with_logits(logit, label)


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
def predict(model: CTRModel, samples: DeviceSamples, batch_size: int, precision: Precision = "fp32") -> np.ndarray:
    """Logits of every sample, in order, in evaluation mode."""
    model.eval()
    order = samples.evaluation_order()
    with autocast(samples.device, precision):
        logits = torch.cat([model(b).logit.double() for b in samples.batches(order, batch_size)]).cpu()
    out = torch.empty_like(logits)
    out[order] = logits
    return out.numpy()


def make_optimizer(model: CTRModel, spec: TrainingSpec, device: torch.device) -> torch.optim.Optimizer:
    """The configured optimizer; Adam runs fused (one kernel for all parameters) on CUDA."""
    if spec.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=spec.lr, fused=True if device.type == "cuda" else None)
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


def train_epoch(model: CTRModel, optimizer: torch.optim.Optimizer, train: DeviceSamples,
                batches: list[BatchIndex], spec: TrainingSpec, label: str, epoch: int,
                on_step: Callable[[], None] = lambda: None, precision: Precision = "fp32") -> float:
    """One pass over ``batches`` in training mode; returns the mean click LogLoss over the
    epoch's samples. ``on_step`` runs after each optimizer step. Nothing is read back
    from the device inside the loop except every ``CHECK_EVERY`` steps."""
    model.train()
    bar = tqdm((train.batch(part) for part in batches), total=len(batches), leave=False,
               desc=f"{label} epoch {epoch}/{spec.epochs}", mininterval=2.0)
    pending: list[torch.Tensor] = []
    click_sums: list[torch.Tensor] = []
    for step, batch in enumerate(bar, start=1):
        loss, ctr = train_step(model, optimizer, batch, spec, precision)
        on_step()
        pending.append(loss.detach())
        click_sums.append(ctr.detach() * batch.label.numel())
        if len(pending) == CHECK_EVERY or step == len(batches):
            _check_finite(pending, step - len(pending) + 1, label, epoch)
            pending = []
    return float(torch.stack(click_sums).double().sum()) / train.size


def train_run(
    model: CTRModel,
    data: dict[str, DeviceSamples],
    spec: TrainingSpec,
    seed: int,
    eval_batch_size: int,
    label: str,
    snapshot_fractions: Sequence[float] = (),
    precision: Precision = "fp32",
) -> RunResult:
    """Train ``model`` (already initialised under ``seed``) and keep its best epoch.

    ``snapshot_fractions`` (0 = before the first update, 1 = after the last) also keeps
    the weights at those points of training (Fig. 5a).
    """
    optimizer = make_optimizer(model, spec, data["train"].device)
    shuffler = torch.Generator().manual_seed(seed)
    train = data["train"]
    history: list[dict[str, float]] = []
    best_auc, best_epoch, best_state = -np.inf, 0, None
    snapshots: dict[float, tuple[int, dict[str, torch.Tensor]]] = {}
    wanted: dict[int, list[float]] = {}  # optimizer step → fractions to keep there
    step_total = 0

    def keep(step: int) -> None:
        for fraction in wanted.get(step, []):
            snapshots[fraction] = (step, copy.deepcopy(model.state_dict()))

    for epoch in range(1, spec.epochs + 1):
        batches = train.training_batches(spec.batch_size, spec.length_sort_chunk, shuffler)
        if epoch == 1:  # every epoch has the same number of batches
            for fraction in snapshot_fractions:
                wanted.setdefault(round(fraction * len(batches) * spec.epochs), []).append(fraction)
            keep(0)

        def stepped() -> None:
            nonlocal step_total
            step_total += 1
            keep(step_total)

        train_logloss = train_epoch(model, optimizer, train, batches, spec, label, epoch, stepped, precision)
        row: dict[str, float] = {"epoch": epoch, "train_logloss": train_logloss}
        for split in EVAL_SPLITS:
            logits = predict(model, data[split], eval_batch_size, precision)
            metrics = evaluate(data[split].label, logits, data[split].user)
            row.update({f"{split}_{k}": v for k, v in metrics.items()})
        history.append(row)
        log.info("%s epoch %d: valid AUC %.4f, test AUC %.4f", label, epoch, row["valid_auc"], row["test_auc"])
        if row["valid_auc"] > best_auc:
            best_auc, best_epoch = row["valid_auc"], epoch
            best_state = copy.deepcopy(model.state_dict())
    assert best_state is not None
    best_row = history[best_epoch - 1]
    best = {k: v for k, v in best_row.items() if k.startswith(("valid_", "test_"))}
    return RunResult(history, best_epoch, best, best_state, snapshots)
