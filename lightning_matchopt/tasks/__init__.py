"""Tasks and the registry that maps names (and Design-Bench ids) to them.

Light on purpose (numpy only): the synthetic functions, written in torch, are imported when first
used, so ``matchopt data`` and the oracles' worker processes do not pay for torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from lightning_matchopt.errors import ConfigError
from lightning_matchopt.tasks.base import OfflineData, Task, to_logits, to_tokens
from lightning_matchopt.tasks.continuous import (
    AntMorphology,
    ContinuousDesignBenchTask,
    DKittyMorphology,
    HopperController,
    Superconductor,
)
from lightning_matchopt.tasks.design_bench import TFBind8, TFBind10
from lightning_matchopt.tasks.ehrlich import EhrlichTask
from lightning_matchopt.tasks.files import FilesTask

_SYNTHETIC = "lightning_matchopt.tasks.synthetic"
_LAZY = {name: _SYNTHETIC for name in ("Shekel", "Ackley", "Rosenbrock", "Linear", "Quadratic", "SyntheticTask")}


class _Registry(Mapping):
    """Task name -> task class; an entry given as a class name is imported on first access."""

    def __init__(self, entries: dict[str, type[Task] | str]) -> None:
        self._entries = entries

    def __getitem__(self, name: str) -> type[Task]:
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = self._entries[name] = getattr(importlib.import_module(_LAZY[entry]), entry)
        return entry

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


TASKS: Mapping[str, type[Task]] = _Registry({
    **{cls.name: cls for cls in (
        TFBind8, TFBind10, Superconductor, HopperController, AntMorphology, DKittyMorphology, FilesTask, EhrlichTask,
    )},
    "shekel": "Shekel",
    "ackley": "Ackley",
    "rosenbrock": "Rosenbrock",
    "linear": "Linear",
    "quadratic": "Quadratic",
})
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


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'lightning_matchopt.tasks' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


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
    "EhrlichTask",
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
