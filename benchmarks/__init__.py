"""Benchmarks: scripts that print figures (run as ``python -m benchmarks.<name>``); no targets are asserted."""
