"""The checks of params.yaml that need the model classes: each run's architecture against the
constructor of its registered model.

The constructor's keyword-only arguments, with their type hints, are the schema: adding a model
never means editing this file. Nothing is built to check: the values are checked against the
signature and the class's own :meth:`~sarn.models.CTRModel.architecture_problems`. Kept apart
from :mod:`sarn.params` so that reading params.yaml (every stage, Snakemake's parse of the
workflow) never imports torch; the stages that build models call :func:`check_models`.
"""

from __future__ import annotations

import inspect
import typing
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from sarn.errors import ConfigError
from sarn.models import MODELS, model_class
from sarn.params import Params, format_error, overridden_runs


@cache
def architecture_schema(model: str) -> type[BaseModel]:
    """A strict schema built from the keyword-only arguments of ``model``'s constructor."""
    cls = model_class(model)
    hints = typing.get_type_hints(cls.__init__, include_extras=True)
    names = [name for name, param in inspect.signature(cls.__init__).parameters.items()
             if param.kind is inspect.Parameter.KEYWORD_ONLY]
    untyped = [name for name in names if name not in hints]
    if untyped:
        raise ConfigError(f"model {model!r} ({cls.__module__}.{cls.__name__}): the constructor's "
                          f"keyword-only argument(s) {', '.join(untyped)} have no type hint; params.yaml's "
                          "schema is read from them (docs/adding-a-model.md)")
    fields: dict[str, Any] = {name: (hints[name], ...) for name in names}
    return create_model(f"{cls.__name__}Architecture",
                        __config__=ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False),
                        **fields)


def _value_problems(path: str, model: str, architecture: dict[str, Any]) -> list[str]:
    """Sizes must be positive and weights non-negative; then the class's own constraints."""
    problems = []
    for key, value in architecture.items():
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, bool) for v in values):
            continue
        if any(isinstance(v, int) and v <= 0 for v in values):
            problems.append(f"  {path}.{key}: sizes must be positive (got {value!r})")
        elif any(isinstance(v, float) and v < 0 for v in values):
            problems.append(f"  {path}.{key}: must not be negative (got {value!r})")
    if not problems:
        problems += [f"  {path}: {problem}" for problem in model_class(model).architecture_problems(**architecture)]
    return problems


def architecture_problems(path: str, model: str, architecture: dict[str, Any], source: str) -> list[str]:
    """What is wrong with ``architecture`` for the registered ``model``; ``path`` prefixes each line."""
    try:
        architecture_schema(model).model_validate(architecture)
    except ValidationError as err:
        return [line.replace("  ", f"  {path}.", 1) for line in format_error(source, err).splitlines()[1:]]
    return _value_problems(path, model, architecture)


def check_models(params: Params, source: str = "params.yaml") -> None:
    """Every configured run, and every protocol-effects run, names a registered model and gives
    its constructor what it takes."""
    problems = []
    for name, spec in params.models.items():
        if spec.model not in MODELS:
            problems.append(f"  models.{name}.model: unknown model {spec.model!r} "
                            f"(known: {', '.join(sorted(MODELS))})")
        else:
            problems += architecture_problems(f"models.{name}.architecture", spec.model, spec.architecture, source)
    for choice, name, spec in overridden_runs(params):
        if spec.model in MODELS:
            problems += [f"{line} (applied to models.{name})" for line in architecture_problems(
                f"protocol_effects.choices.{choice}.architecture", spec.model, spec.architecture, source)]
    if problems:
        raise ConfigError("\n".join([f"{source}: invalid parameters", *dict.fromkeys(problems)]))
