"""Reusable layers the model files compose: embeddings, Dice, output heads, attention units."""

from sarn.nn.activation import Activation, Dice, DiceEval, make_activation
from sarn.nn.attention import AttentionBlock, AttentiveMaxPool, MultiHeadAttention, TargetAttention
from sarn.nn.embedding import Index0, ItemEmbedding
from sarn.nn.head import BatchNorm, BatchNormMode, ClickHead, OutputHead
from sarn.nn.init import DenseInit, init_dense
from sarn.nn.recurrent import AUGRU, PaddedGRU, ResetGate
from sarn.nn.relation import MaterialisedPairs, Pairs, SimilitudePairs, SimilitudeRelation, relation_combine
from sarn.nn.sequence import MaxPoolZero, masked_max, masked_mean, masked_sum
from sarn.nn.statistics import EvaluationStatistics, collecting_statistics

__all__ = [
    "AUGRU",
    "Activation",
    "AttentionBlock",
    "AttentiveMaxPool",
    "BatchNorm",
    "BatchNormMode",
    "ClickHead",
    "DenseInit",
    "Dice",
    "DiceEval",
    "EvaluationStatistics",
    "Index0",
    "ItemEmbedding",
    "MaterialisedPairs",
    "MaxPoolZero",
    "MultiHeadAttention",
    "OutputHead",
    "PaddedGRU",
    "Pairs",
    "ResetGate",
    "SimilitudePairs",
    "SimilitudeRelation",
    "TargetAttention",
    "collecting_statistics",
    "init_dense",
    "make_activation",
    "masked_max",
    "masked_mean",
    "masked_sum",
    "relation_combine",
]
