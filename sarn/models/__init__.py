"""The model registry: one name per model of Table II, mapped to its class.

A model's hyperparameters are the keyword-only arguments of its constructor; params.yaml
is validated against that signature (sarn.params), so a new model is one thin file plus
one line here.
"""

from __future__ import annotations

from sarn.errors import ConfigError
from sarn.models.atrank import ATRank
from sarn.models.base import CTRModel, ModelOutput
from sarn.models.dien import DIEN
from sarn.models.din import DIN
from sarn.models.gru import GRU
from sarn.models.pnn import PNN
from sarn.models.rn import RN
from sarn.models.sarn import SARN
from sarn.models.wide_deep import WideDeep
from sarn.nn import init_dense

# Table II's models, in the paper's order.
MODELS: dict[str, type[CTRModel]] = {
    "wide_deep": WideDeep,
    "pnn": PNN,
    "gru": GRU,
    "atrank": ATRank,
    "din": DIN,
    "dien": DIEN,
    "rn": RN,
    "sarn": SARN,
}


def model_class(name: str) -> type[CTRModel]:
    """The class registered under ``name``; an unknown name lists the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}") from None


def build_model(name: str, n_items: int, n_categories: int, architecture: dict, n_contexts: int = 0) -> CTRModel:
    """Instantiate model ``name`` for a vocabulary with the given architecture keywords
    (and a context feature of ``n_contexts`` values, index 0 included, when it is positive),
    its dense layers started as its ``dense_init`` says."""
    net = model_class(name)(n_items, n_categories, **architecture)
    init_dense(net, net.dense_init)
    if n_contexts:
        net.attach_context(n_contexts)
    return net


__all__ = ["MODELS", "CTRModel", "ModelOutput", "build_model", "model_class"]
