"""Errors the command line reports as a one-line message instead of a traceback."""


class SarnError(Exception):
    """Base class for problems caused by input, configuration or a failed run."""


class ConfigError(SarnError):
    """params.yaml (or a value in it) is not what the project expects."""


class DataError(SarnError):
    """An input file is missing, malformed or inconsistent."""


class TrainingError(SarnError):
    """A training run cannot go on (for example its loss became NaN)."""
