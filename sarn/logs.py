"""How every process of the package logs (to stderr, one format), so that a stage's log reads the
same whichever of its processes (the command's, or a seed's own: ``runtime.parallel_seeds``) wrote a line."""

from __future__ import annotations

import logging


def configure_logging() -> None:
    """INFO and above to stderr, each line with its time and logger."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
