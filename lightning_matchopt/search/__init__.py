"""Gradient-ascent search and the callback that runs it during training.

Names are imported on first use: ``lightning_matchopt.search.metrics`` (read by ``matchopt grid``)
does not import Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DesignSearch": "lightning_matchopt.search.callback",
    "gradient_ascent": "lightning_matchopt.search.ascent",
}

__all__ = ["DesignSearch", "gradient_ascent"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lightning_matchopt.search' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
