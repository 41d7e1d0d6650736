"""Where the time of a model's training steps goes: torch.profiler's top operators.

    python -m benchmarks.training.profile_steps MODEL [--compile default|reduce-overhead]
                                                [--device cpu|cuda] [--precision fp32|tf32|bf16]

20 steps of MODEL on part 2's batches (Electronics-like lengths, grouped by length), after
the warm-up (and compiling) that stays outside the profile.
"""

from __future__ import annotations

import torch

from benchmarks.training.rows import (
    ROW_NAMES,
    Setting,
    build_row_model,
    parser_for,
    pipeline_trainer,
    set_up_from,
    time_training,
)
from benchmarks.training.samples import LENGTHS_USERS, electronics_arrays
from sarn.params import CompileMode
from sarn.train.batching import DeviceSamples
from sarn.train.loop import compile_model

PROFILED_ROWS = [name for name in ROW_NAMES if name != "deepctr_din"]  # DeepCTR's has no pipeline step


def profile(setting: Setting, name: str, compile_mode: CompileMode = "eager", steps: int = 20) -> None:
    """The time of ``steps`` steps of row ``name``, then the profiler's table of its top operators."""
    params, device = setting.params, setting.device
    arrays, meta = electronics_arrays(LENGTHS_USERS, 30)
    samples = DeviceSamples({key: value[: 128 * (steps + 1)] for key, value in arrays.items()}, device)
    batches = samples.training_batches(128, params.models["sarn"].training.length_sort_chunk,
                                       torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    net = build_row_model(params, name, meta["n_items"], meta["n_categories"], device)
    compile_model(net, compile_mode, device)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    prof = torch.profiler.profile(activities=activities)  # the warm-up (and compiling) stays outside it
    train = pipeline_trainer(params, name, net, samples, setting.precision)
    _, seconds = time_training(train, batches[:steps], device, timed=prof)
    events = prof.key_averages()
    busy = sum(getattr(e, "self_device_time_total", 0) for e in events) / 1000 / steps
    print(f"# {name}: {steps} steps in {seconds:.3f} s, {1000 * seconds / steps:.2f} ms a step (profiled); "
          f"{sum(e.count for e in events) / steps:.0f} operator calls and {busy:.2f} ms of device time "
          "a step")
    print(events.table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=50))


def main(argv: list[str] | None = None) -> None:
    parser = parser_for(__doc__.splitlines()[0], [])
    parser.add_argument("model", choices=PROFILED_ROWS, metavar="MODEL",
                        help=f"one of {', '.join(PROFILED_ROWS)}")
    parser.add_argument("--compile", choices=["default", "reduce-overhead"], default="eager",
                        help="profile the model compiled in this mode")
    args = parser.parse_args(argv)
    profile(set_up_from(args), args.model, args.compile)


if __name__ == "__main__":
    main()
