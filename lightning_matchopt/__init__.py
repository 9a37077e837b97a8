"""lightning_matchopt: MATCH-OPT offline black-box optimization as a PyTorch Lightning trainer.

Data flows one way: Task -> MatchOptDataModule -> MatchOptModule -> DesignSearch -> logger.
"""

from __future__ import annotations

import importlib
from typing import Any

# Names are imported on first use, so that light entry points (``matchopt data``, the oracles'
# worker processes) do not pay for importing torch and Lightning.
_EXPORTS = {
    "MatchOptDataModule": "lightning_matchopt.data",
    "GradientFieldDiagnostics": "lightning_matchopt.diagnostics",
    "ConfigError": "lightning_matchopt.errors",
    "DataError": "lightning_matchopt.errors",
    "MatchOptError": "lightning_matchopt.errors",
    "OracleError": "lightning_matchopt.errors",
    "SearchResults": "lightning_matchopt.metrics",
    "gradient_errors": "lightning_matchopt.metrics",
    "percentile_scores": "lightning_matchopt.metrics",
    "MatchOptModule": "lightning_matchopt.models",
    "MLPSurrogate": "lightning_matchopt.models",
    "gradient_matching_loss": "lightning_matchopt.models",
    "regression_loss": "lightning_matchopt.models",
    "DesignSearch": "lightning_matchopt.search",
    "MatchOptTrainer": "lightning_matchopt.trainer",
    "PredictionWriter": "lightning_matchopt.predict",
    "gradient_ascent": "lightning_matchopt.search",
    "TASKS": "lightning_matchopt.tasks",
    "Task": "lightning_matchopt.tasks",
    "make_task": "lightning_matchopt.tasks",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lightning_matchopt' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__version__ = "0.1.0"

__all__ = [
    "TASKS",
    "ConfigError",
    "DataError",
    "DesignSearch",
    "GradientFieldDiagnostics",
    "MLPSurrogate",
    "MatchOptDataModule",
    "MatchOptError",
    "MatchOptModule",
    "MatchOptTrainer",
    "OracleError",
    "PredictionWriter",
    "SearchResults",
    "Task",
    "gradient_ascent",
    "gradient_errors",
    "gradient_matching_loss",
    "make_task",
    "percentile_scores",
    "regression_loss",
]
