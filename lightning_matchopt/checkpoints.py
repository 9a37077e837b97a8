"""Checkpoints given to ``matchopt validate / predict / search``: found, read, and checked against the task.

A wrong checkpoint should fail in one line that names it, before Lightning loads weights into a
network of another shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lightning_matchopt.errors import ConfigError

FIT_HINT = (
    "a checkpoint written by matchopt fit, e.g. <default_root_dir>/lightning_logs/version_0/checkpoints/last.ckpt"
)


def latest_checkpoint(default_root_dir: str | Path | None) -> Path | None:
    """The newest ``lightning_logs/version_*/checkpoints/last.ckpt`` under the root dir, or None."""
    root = Path(default_root_dir or ".") / "lightning_logs"
    found = sorted(root.glob("version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def resolve_checkpoint(ckpt_path: str | None, default_root_dir: str | Path | None, subcommand: str) -> Path:
    """``--ckpt_path`` as a file that exists; ``last`` is the newest ``last.ckpt`` under the root dir."""
    if ckpt_path is None:
        raise ConfigError(f"matchopt {subcommand} needs --ckpt_path: {FIT_HINT} (or 'last': the newest one)")
    if ckpt_path == "last":
        found = latest_checkpoint(default_root_dir)
        if found is None:
            raise ConfigError(
                f"--ckpt_path last: no lightning_logs/version_*/checkpoints/last.ckpt under "
                f"{str(default_root_dir or '.')!r}; pass --trainer.default_root_dir of the training run or a file"
            )
        return found
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise ConfigError(f"checkpoint {str(path)!r} does not exist: pass --ckpt_path {FIT_HINT}")
    return path


def read_hyperparameters(path: Path) -> dict[str, Any]:
    """The module's saved hyperparameters; tensors and plain values only are unpickled."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unreadable file: truncated, not a checkpoint, not a torch file
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"cannot read checkpoint {str(path)!r} ({reason[:200]}): pass {FIT_HINT}") from None
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, dict) or "input_dim" not in hparams or "state_dict" not in checkpoint:
        raise ConfigError(
            f"{str(path)!r} is not a MATCH-OPT checkpoint (no surrogate hyperparameters): pass {FIT_HINT}"
        )
    return hparams


def check_input_width(path: Path, hparams: dict[str, Any], task_name: str, input_dim: int) -> None:
    """The checkpoint's surrogate must take the task's input width."""
    if hparams["input_dim"] != input_dim:
        raise ConfigError(
            f"checkpoint {str(path)!r} takes inputs of width {hparams['input_dim']}, but task {task_name!r} has "
            f"width {input_dim}: it was trained on another task; pass the config it was trained with "
            "(its log dir's config.yaml)"
        )
