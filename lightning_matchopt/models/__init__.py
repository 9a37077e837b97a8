"""Surrogates, loss terms and the LightningModule that sums them."""

from lightning_matchopt.models.ensemble import EnsembleMLP
from lightning_matchopt.models.losses import (
    endpoint_matching_loss,
    gaussian_nll_loss,
    gradient_matching_loss,
    lagrangian_conservative,
    listnet_loss,
    predicted_differences,
    quadrature_nodes,
    rankcosine_loss,
    regression_loss,
)
from lightning_matchopt.models.module import MatchOptModule
from lightning_matchopt.models.objectives import (
    Conservative,
    GaussianLikelihood,
    GradientMatching,
    LagrangianConservative,
    ListNet,
    Objective,
    RankCosine,
    Regression,
)
from lightning_matchopt.models.surrogate import GaussianMLP, MLPSurrogate

__all__ = [
    "Conservative",
    "EnsembleMLP",
    "GaussianLikelihood",
    "GaussianMLP",
    "GradientMatching",
    "LagrangianConservative",
    "ListNet",
    "MLPSurrogate",
    "MatchOptModule",
    "Objective",
    "RankCosine",
    "Regression",
    "endpoint_matching_loss",
    "gaussian_nll_loss",
    "gradient_matching_loss",
    "lagrangian_conservative",
    "listnet_loss",
    "predicted_differences",
    "quadrature_nodes",
    "rankcosine_loss",
    "regression_loss",
]
