"""The model registry: one name per model of Table II, mapped to its class.

A model's hyperparameters are the keyword-only arguments of its constructor; params.yaml
is validated against that signature (sarn.params), so a new model is one thin file plus
one line here.
"""

from __future__ import annotations

from sarn.errors import ConfigError
from sarn.models.base import Batch, CTRModel, ModelOutput
from sarn.models.din import DIN
from sarn.models.sarn import SARN

MODELS: dict[str, type[CTRModel]] = {
    "din": DIN,
    "sarn": SARN,
}

# Table II's models that have no implementation yet: asking for one fails loudly.
PLANNED = ("wide_deep", "pnn", "gru", "atrank", "dien", "rn")


def model_class(name: str) -> type[CTRModel]:
    """The class registered under ``name``; an unknown name lists the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        hint = " (planned, not implemented yet)" if name in PLANNED else ""
        raise ConfigError(
            f"unknown model {name!r}{hint}; known models: {', '.join(sorted(MODELS))}"
        ) from None


def build_model(name: str, n_items: int, n_categories: int, architecture: dict) -> CTRModel:
    """Instantiate model ``name`` for a vocabulary with the given architecture keywords."""
    return model_class(name)(n_items, n_categories, **architecture)


__all__ = ["MODELS", "Batch", "CTRModel", "ModelOutput", "build_model", "model_class"]
