"""Entry point of ``python -m sarn``: every workflow stage calls this.

glibc returns large freed blocks to the system at once, and the pair tensors of SARN
are allocated and freed every batch: with mmap disabled and a high trim threshold the
allocator keeps that memory and training runs about 1.7 times faster on the CPU (at
the price of memory held). These variables only act if set before Python starts, so
a training command restarts itself once with them.
"""

import os
import sys

from sarn import ALLOCATOR_ENV

# Only the training commands (and `plan`, which times training steps as they run): the data
# stages free large arrays as they go and want the memory back (the Taobao preprocessing stays
# under its memory target that way).
TRAINING_COMMANDS = {"train", "sweep", "effects", "snapshots", "plan"}

if (sys.platform.startswith("linux") and TRAINING_COMMANDS & set(sys.argv[1:])
        and any(os.environ.get(k) is None for k in ALLOCATOR_ENV)):
    os.execve(sys.executable, [sys.executable, "-m", "sarn", *sys.argv[1:]], {**ALLOCATOR_ENV, **os.environ})

from sarn.cli import main

raise SystemExit(main())
