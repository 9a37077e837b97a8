"""Gradient-ascent search and the callback that runs it during training."""

from lightning_matchopt.search.ascent import gradient_ascent
from lightning_matchopt.search.callback import DesignSearch

__all__ = ["DesignSearch", "gradient_ascent"]
