"""Oracles re-created with maintained packages (scikit-learn, mujoco, gymnasium), imported on use.

These are optional extras: ``pip install 'lightning_matchopt[oracles]'``.
"""

from __future__ import annotations

import importlib.util


def mujoco_missing(task_name: str) -> str | None:
    """One line naming what to install when mujoco or gymnasium is absent; None when both import."""
    absent = [name for name in ("mujoco", "gymnasium") if importlib.util.find_spec(name) is None]
    if absent:
        return (
            f"{task_name}: the oracle needs {' and '.join(absent)}: pip install 'lightning_matchopt[oracles]'"
        )
    return None
