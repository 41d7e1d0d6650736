"""Reusable layers the model files compose: embeddings, Dice, output heads, attention units."""

from sarn.nn.activation import Dice, make_activation
from sarn.nn.attention import AttentiveMaxPool, TargetAttention
from sarn.nn.embedding import ItemEmbedding
from sarn.nn.head import BatchNorm, ClickHead, OutputHead
from sarn.nn.relation import MaterialisedPairs, Pairs, SimilitudePairs, SimilitudeRelation, relation_combine
from sarn.nn.sequence import masked_max, masked_mean, masked_sum

__all__ = [
    "AttentiveMaxPool",
    "BatchNorm",
    "ClickHead",
    "Dice",
    "ItemEmbedding",
    "MaterialisedPairs",
    "OutputHead",
    "Pairs",
    "SimilitudePairs",
    "SimilitudeRelation",
    "TargetAttention",
    "make_activation",
    "masked_max",
    "masked_mean",
    "masked_sum",
    "relation_combine",
]
