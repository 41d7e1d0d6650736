"""``python -m sarn plan``: the bill of the configured experiments before they run.

``shapes`` finds each dataset's size and history lengths, ``probe`` times a few training steps and
evaluations of each run on generated batches of that shape, ``bill`` counts every run's steps and
evaluations and prints what they cost here, and on the GPUs whose step times ``gpu_steps.yaml``
records.
"""
