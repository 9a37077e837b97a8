"""The surrogate, MATCH-OPT's losses and the LightningModule."""

from lightning_matchopt.models.losses import (
    endpoint_matching_loss,
    gradient_matching_loss,
    predicted_differences,
    quadrature_nodes,
    regression_loss,
)
from lightning_matchopt.models.module import MatchOptModule
from lightning_matchopt.models.surrogate import MLPSurrogate

__all__ = [
    "MLPSurrogate",
    "MatchOptModule",
    "endpoint_matching_loss",
    "gradient_matching_loss",
    "predicted_differences",
    "quadrature_nodes",
    "regression_loss",
]
