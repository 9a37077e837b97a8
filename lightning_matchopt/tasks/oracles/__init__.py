"""Oracles re-created with maintained packages (scikit-learn, mujoco, gymnasium), imported on use.

These are optional extras: ``pip install 'lightning_matchopt[oracles]'``.
"""

from __future__ import annotations

from lightning_matchopt.extras import missing


def mujoco_missing(task_name: str) -> str | None:
    """One line naming what to install when mujoco or gymnasium is absent; None when both import."""
    why = missing("mujoco", "gymnasium", extra="oracles")
    return f"{task_name}: the oracle {why}" if why else None
