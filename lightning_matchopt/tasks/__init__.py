"""Tasks and the registry that maps names (and Design-Bench ids) to them."""

from __future__ import annotations

from typing import Any

from lightning_matchopt.errors import ConfigError
from lightning_matchopt.tasks.base import OfflineData, Task, to_logits, to_tokens
from lightning_matchopt.tasks.design_bench import (
    AntMorphology,
    ContinuousDesignBenchTask,
    DKittyMorphology,
    HopperController,
    Superconductor,
    TFBind8,
    TFBind10,
)
from lightning_matchopt.tasks.files import FilesTask
from lightning_matchopt.tasks.synthetic import (
    Ackley,
    Linear,
    Quadratic,
    Rosenbrock,
    Shekel,
    SyntheticTask,
)

TASKS: dict[str, type[Task]] = {
    cls.name: cls
    for cls in (
        TFBind8,
        TFBind10,
        Superconductor,
        HopperController,
        AntMorphology,
        DKittyMorphology,
        FilesTask,
        Shekel,
        Ackley,
        Rosenbrock,
        Linear,
        Quadratic,
    )
}
ALIASES = {
    "TFBind8-Exact-v0": "tfbind8",
    "tf-bind-8": "tfbind8",
    "TFBind10-Exact-v0": "tfbind10",
    "tf-bind-10": "tfbind10",
    "Superconductor-RandomForest-v0": "superconductor",
    "HopperController-Exact-v0": "hopper",
    "AntMorphology-Exact-v0": "ant",
    "DKittyMorphology-Exact-v0": "dkitty",
}
DATA_TASKS = {"tfbind8", "tfbind10", "superconductor", "hopper", "ant", "dkitty"}  # tasks that read the data root


def make_task(name: str, data_root: str | None = None, **options: Any) -> Task:
    """Build a task by name or alias; ``data_root`` goes to the tasks that read files."""
    key = ALIASES.get(name, name)
    if key not in TASKS:
        known = ", ".join(sorted(TASKS)) + " (aliases: " + ", ".join(sorted(ALIASES)) + ")"
        raise ConfigError(f"unknown task {name!r}; known tasks: {known}")
    if key in DATA_TASKS:
        options["data_root"] = data_root
    try:
        return TASKS[key](**options)
    except TypeError as e:
        raise ConfigError(f"bad options for task {key!r}: {e}") from None


__all__ = [
    "ALIASES",
    "TASKS",
    "Ackley",
    "AntMorphology",
    "ContinuousDesignBenchTask",
    "DKittyMorphology",
    "HopperController",
    "Linear",
    "Quadratic",
    "Superconductor",
    "FilesTask",
    "OfflineData",
    "Rosenbrock",
    "Shekel",
    "SyntheticTask",
    "TFBind8",
    "TFBind10",
    "Task",
    "make_task",
    "to_logits",
    "to_tokens",
]
