"""lightning_matchopt: MATCH-OPT offline black-box optimization as a PyTorch Lightning trainer.

Data flows one way: Task -> MatchOptDataModule -> MatchOptModule -> DesignSearch -> logger.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from typing import Any

# Names are imported on first use, so that light entry points (``matchopt data``, the oracles'
# worker processes) do not pay for importing torch and Lightning.
_EXPORTS = {
    "MatchOptDataModule": "lightning_matchopt.data",
    "GradientFieldDiagnostics": "lightning_matchopt.callbacks",
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
    "PredictionWriter": "lightning_matchopt.callbacks",
    "gradient_ascent": "lightning_matchopt.search",
    "TASKS": "lightning_matchopt.tasks",
    "Task": "lightning_matchopt.tasks",
    "make_task": "lightning_matchopt.tasks",
}


# Modules that moved, at their old import paths: class paths in users' config.yaml files (e.g.
# ``lightning_matchopt.signals.StopOnSignal``) and imports keep resolving, to the same objects.
MOVED_MODULES = {
    "lightning_matchopt.cli": "lightning_matchopt.commands",
    "lightning_matchopt.config_names": "lightning_matchopt.commands.config_names",
    "lightning_matchopt.grid": "lightning_matchopt.commands.grid",
    "lightning_matchopt.datafetch": "lightning_matchopt.fetching",
    "lightning_matchopt.checkpoints": "lightning_matchopt.callbacks.checkpoints",
    "lightning_matchopt.diagnostics": "lightning_matchopt.callbacks.diagnostics",
    "lightning_matchopt.predict": "lightning_matchopt.callbacks.prediction",
    "lightning_matchopt.signals": "lightning_matchopt.callbacks.signals",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module path as its new module (no file stays behind at the old path)."""

    def find_spec(self, fullname, path=None, target=None):  # noqa: D102
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED_MODULES else None

    def create_module(self, spec):  # noqa: D102
        return None

    def exec_module(self, module):  # noqa: D102
        # The import system returns what sys.modules holds after exec_module: the moved module.
        sys.modules[module.__name__] = importlib.import_module(MOVED_MODULES[module.__name__])


if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())


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
