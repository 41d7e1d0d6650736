"""SARN reproduction: data preparation, CTR models, training and reports.

The package is split so that dependencies point one way: ``sarn.data`` knows no model,
``sarn.models`` and ``sarn.nn`` know tensors only, ``sarn.train`` composes them, and
``sarn.report`` reads stage outputs only.
"""

__version__ = "0.1.0"

# glibc allocator settings under which the training stages run (see sarn/__main__.py).
ALLOCATOR_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "17179869184"}
