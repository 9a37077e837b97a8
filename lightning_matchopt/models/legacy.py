"""Old checkpoints: flat ``model.*`` keys, before ``model.surrogate`` and ``model.objectives``.

Checkpoints saved before the surrogate and the loss terms were components held flat keys
(``hidden_dims``, ``gm_weight``, ``ensemble_size``, ...).

``upgrade_hyperparameters`` rewrites them into today's form, so such a checkpoint builds the same
network (same parameter names: its weights load unchanged) and the same losses.
"""

from __future__ import annotations

from typing import Any

LEGACY_KEYS = (
    "hidden_dims",
    "negative_slope",
    "integration_steps",
    "regression_weight",
    "gm_weight",
    "quadrature",
    "conservative_weight",
    "conservative_steps",
    "conservative_step_size",
    "ensemble_size",
)
MODELS = "lightning_matchopt.models"


def is_legacy(hparams: dict[str, Any]) -> bool:
    """Whether ``hparams`` are of the flat form (no ``surrogate`` key, some of the old ones)."""
    return "surrogate" not in hparams and any(key in hparams for key in LEGACY_KEYS)


def upgrade_hyperparameters(hparams: dict[str, Any]) -> dict[str, Any]:
    """The flat hyperparameters of an old checkpoint as ``surrogate`` and ``objectives`` specs.

    The old module summed ``gm_weight * loss_gm + regression_weight * loss_reg (+
    conservative_weight * loss_cons)``, computing the regression term always and the others only
    at a weight > 0: the same terms, in the same order, are listed here.
    """
    if not is_legacy(hparams):
        return hparams
    old = dict(hparams)
    get = lambda key, default: old.pop(key, default)  # noqa: E731
    network = {
        "hidden_dims": list(get("hidden_dims", (512, 128, 32))),
        "negative_slope": get("negative_slope", 0.3),
    }
    ensemble_size = get("ensemble_size", 1)
    if ensemble_size == 1:
        surrogate = {"class_path": f"{MODELS}.MLPSurrogate", "init_args": network}
    else:
        surrogate = {
            "class_path": f"{MODELS}.EnsembleMLP",
            "init_args": {**network, "ensemble_size": ensemble_size},
        }
    gm_weight, integration_steps, quadrature = (
        get("gm_weight", 1.0),
        get("integration_steps", 5),
        get("quadrature", "left"),
    )
    regression_weight = get("regression_weight", 1.0)
    conservative = {
        "weight": get("conservative_weight", 0.0),
        "steps": get("conservative_steps", 50),
        "step_size": get("conservative_step_size", 0.05),
    }
    objectives = []
    if gm_weight > 0:
        objectives.append(
            {
                "class_path": f"{MODELS}.GradientMatching",
                "init_args": {
                    "weight": gm_weight,
                    "integration_steps": integration_steps,
                    "quadrature": quadrature,
                },
            }
        )
    objectives.append(
        {"class_path": f"{MODELS}.Regression", "init_args": {"weight": regression_weight}}
    )
    if conservative["weight"] > 0:
        objectives.append({"class_path": f"{MODELS}.Conservative", "init_args": conservative})
    return {**old, "surrogate": surrogate, "objectives": objectives}
