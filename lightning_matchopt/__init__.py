"""lightning_matchopt: MATCH-OPT offline black-box optimization as a PyTorch Lightning trainer.

Data flows one way: Task -> MatchOptDataModule -> MatchOptModule -> DesignSearch -> logger.
"""

from lightning_matchopt.data import MatchOptDataModule
from lightning_matchopt.diagnostics import GradientFieldDiagnostics
from lightning_matchopt.errors import ConfigError, DataError, MatchOptError, OracleError
from lightning_matchopt.metrics import SearchResults, gradient_errors, percentile_scores
from lightning_matchopt.models import MatchOptModule, MLPSurrogate, gradient_matching_loss, regression_loss
from lightning_matchopt.search import DesignSearch, gradient_ascent
from lightning_matchopt.tasks import TASKS, Task, make_task

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
    "OracleError",
    "SearchResults",
    "Task",
    "gradient_ascent",
    "gradient_errors",
    "gradient_matching_loss",
    "make_task",
    "percentile_scores",
    "regression_loss",
]
