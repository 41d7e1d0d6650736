"""Training composes data arrays and models: batching, the loop, metrics, run outputs."""
