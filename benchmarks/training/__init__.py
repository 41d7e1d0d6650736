"""The training benchmark, one module per question; ``python -m benchmarks.train_speed`` runs them together.

    full_length        part 1: every model on full-length histories, beside the references
    sarn_leads         part 2: what each of SARN's leads buys at Amazon Electronics' lengths
    electronics_epoch  part 3: one training epoch on data of Electronics' size
    embedded_default   part 4: the embedded default's Table II end to end, seeds one or two at once
    host_floor         part 5: the operators of an eager step and what the host spends on them
    threads            part 6: threads a process and seeds at once, idle and beside a busy core
    profile_steps      torch.profiler's top operators of 20 steps of one model

Each runs alone as ``python -m benchmarks.training.<module>``. ``rows`` holds what they
share (a row in its own process, its warm-up, timing and peak memory, the command line),
``samples`` the data rows train on and ``deepctr`` the peer DIN.

A new row is a function ``row(params, ..., device=, precision=) -> dict`` of JSON-able
arguments, run with ``rows.run_row(setting, row, ...)``; a new part is a module with a
``rows.Part`` and a ``main`` calling ``rows.run_alone``, added to ``train_speed.PARTS``.
"""
