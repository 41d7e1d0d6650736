"""Training throughput and peak memory of every model, SARN against the straightforward graph,
and the project's DIN against DeepCTR-Torch's.

    python -m benchmarks.train_speed [--parts 1 2 3 4 5 6 7 8] [--device cpu|cuda] [--precision fp32|tf32|bf16]
                                     [--steps N] [--batches 128 1024] [--lengths 30 50] [--models ...]

Eight parts (1, 2, 3 and 5 by default), each printed as a table; every ratio compares rows
of the same invocation. Each part is a module of benchmarks/training/, which also runs it
alone (``python -m benchmarks.training.<module>``) and says what it measures:

1. full_length: every model at each batch size and history length, every history full
   length, beside the straightforward SARN graph and DeepCTR-Torch 0.3.0's DIN.
2. sarn_leads: SARN at batch 128 on Amazon Electronics' lengths, the straightforward graph
   first, then the known leads added one at a time.
3. electronics_epoch: one training epoch of DIN and SARN (both forms) on generated data of
   Electronics' size and lengths, batched as the pipeline batches.
4. embedded_default: the embedded default's Table II (every model, every seed) through the
   stages' code, with runtime.parallel_seeds 1 and 2 side by side.
5. host_floor: what an eager training step costs the host, the floor of an eager GPU epoch.
6. threads: training steps a second at each runtime.threads and number of seeds at once,
   idle and beside a busy core.
7. optimizer: a training step at Electronics' size with Adam in torch's multi-tensor form
   and fused, as the pipeline runs it.
8. evaluation: samples a second that an evaluation at Electronics' size predicts at each
   evaluation batch size (runtime.eval_batch_size).

``--profile MODEL`` runs none of them: it prints torch.profiler's top operators of 20
steps of MODEL (benchmarks/training/profile_steps.py).
"""

from __future__ import annotations

from benchmarks.training import (
    electronics_epoch,
    embedded_default,
    evaluation,
    full_length,
    host_floor,
    optimizer,
    profile_steps,
    sarn_leads,
    threads,
)
from benchmarks.training.rows import parser_for, refuse_bad_arguments, run_parts, set_up_from

PARTS = (full_length.PART, sarn_leads.PART, electronics_epoch.PART, embedded_default.PART, host_floor.PART,
         threads.PART, optimizer.PART, evaluation.PART)


def main(argv: list[str] | None = None) -> None:
    parser = parser_for(__doc__.splitlines()[0], PARTS)
    parser.add_argument("--parts", type=int, nargs="+", default=[1, 2, 3, 5],
                        choices=[part.number for part in PARTS],
                        help="which parts to run (3: one epoch on Electronics-sized data, 4: the embedded "
                             "default's Table II end to end, minutes each on a CPU; 5: the host's cost of "
                             "an eager step; 6: threads and seeds at once, tens of minutes; 7: Adam fused or not; "
                             "8: the evaluation batch size)")
    parser.add_argument("--profile", metavar="MODEL", choices=profile_steps.PROFILED_ROWS,
                        help="only profile 20 training steps of MODEL on part 2's batches (grouped by "
                             "length), compiled in the first --compile mode if one is given")
    args = parser.parse_args(argv)
    parts = [part for part in PARTS if part.number in args.parts]
    refuse_bad_arguments(parser, parts, args)
    setting = set_up_from(args)
    if args.profile:
        profile_steps.profile(setting, args.profile, (args.compile or ["eager"])[0])
        return
    run_parts(setting, parts, args)


if __name__ == "__main__":
    main()
