"""The search's settings: checked when the callback is built (a bad one fails before training), recorded in results."""

from __future__ import annotations

from typing import Any

from lightning_matchopt.errors import ConfigError
from lightning_matchopt.search.ascent import OBJECTIVES, OPTIMIZERS, STEP_RULES, step_size
from lightning_matchopt.search.starts import START_KINDS


def check_settings(
    n_designs: int, steps: int, lr: float | None, start: str, every_n_epochs: int, trace_every: int,
    oracle_timeout: float | None, objective: str, beta: float, optimizer: str, step_rule: str,
    max_edits: int | None = None, max_distance: float | None = None,
) -> None:
    """Raise :class:`~lightning_matchopt.errors.ConfigError` naming the first bad ``search.*`` setting."""
    if n_designs < 1 or steps < 0 or every_n_epochs < 0 or trace_every < 0:
        raise ConfigError(
            f"search.n_designs ({n_designs}) must be >= 1, search.steps ({steps}), "
            f"search.every_n_epochs ({every_n_epochs}) and search.trace_every ({trace_every}) >= 0"
        )
    if lr is not None and not lr > 0:
        raise ConfigError(f"search.lr must be > 0, got {lr}")
    if objective not in OBJECTIVES or beta < 0:
        raise ConfigError(
            f"search.objective must be one of {', '.join(OBJECTIVES)} (got {objective!r}) and search.beta >= 0 (got {beta})"
        )
    if start not in START_KINDS:
        raise ConfigError(f"unknown search.start {start!r}; use 'top', 'random_data' or 'random'")
    if oracle_timeout is not None and not oracle_timeout > 0:
        raise ConfigError(f"search.oracle_timeout must be > 0 seconds or null, got {oracle_timeout}")
    if optimizer not in OPTIMIZERS or step_rule not in STEP_RULES:
        raise ConfigError(
            f"search.optimizer must be one of {', '.join(OPTIMIZERS)} (got {optimizer!r}) and "
            f"search.step_rule one of {', '.join(STEP_RULES)} (got {step_rule!r})"
        )
    if max_edits is not None and not max_edits >= 1:
        raise ConfigError(f"search.max_edits must be >= 1 (positions that may change) or null, got {max_edits}")
    if max_distance is not None and not max_distance > 0:
        raise ConfigError(f"search.max_distance must be > 0 (z-scored units) or null, got {max_distance}")


def resolved_step(lr: float | None, step_rule: str, discrete: bool, input_dim: int) -> tuple[float, float]:
    """``search.lr`` with its default resolved (1e-2 for token tasks' logits, 1e-3 otherwise) and the step it gives."""
    lr = lr if lr is not None else (1e-2 if discrete else 1e-3)
    return lr, step_size(lr, step_rule, input_dim)


def recorded_settings(search: Any, lr: float, step_length: float) -> dict[str, Any]:
    """``results.json``'s ``search`` entry: how the designs were found, with the defaults resolved."""
    return {
        "steps": search.steps, "lr": lr, "start": search.start, "objective": search.objective, "beta": search.beta,
        "drop_duplicates": search.drop_duplicates, "optimizer": search.optimizer, "step_rule": search.step_rule,
        "step_size": step_length, "standardize": search.standardize,
        "max_edits": search.max_edits, "max_distance": search.max_distance,
    }
