"""Checkpoints that survive faults, and the checks of a checkpoint given to any subcommand.

Saved every epoch, written atomically, the previous one kept, checked on resume; the same checks
(readable, this task, this surrogate's shape) run before ``matchopt validate / predict / search``
load one, so a wrong checkpoint fails in one line that names it in every subcommand.

Lightning's own writer (``TorchCheckpointIO``) goes through an fsspec transaction whose temporary
file lies in the system's temp folder: when that is another filesystem than the log dir (a
node's ``/tmp`` and a shared disk), the final move is a copy that a kill can cut short, and
nothing is fsynced. Here a checkpoint is written beside its target, fsynced and renamed over it,
and before ``last.ckpt`` is replaced the one it replaces is kept as ``previous.ckpt`` (a hard
link: no copy), so one unreadable ``last.ckpt`` costs at most an epoch.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only

from lightning_matchopt import compat
from lightning_matchopt.atomic import write_atomic
from lightning_matchopt.errors import CheckpointError
from lightning_matchopt.models.legacy import upgrade_hyperparameters
from lightning_matchopt.tasks import ALIASES

PREVIOUS = "previous.ckpt"
LIGHTNING_KEYWORDS = ("last", "best", "hpc")
FIT_HINT = (
    "a checkpoint written by matchopt fit, e.g. <default_root_dir>/lightning_logs/version_0/checkpoints/last.ckpt"
)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` that writes local files atomically and keeps the previous ``last.ckpt``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        """Local files atomically, keeping the previous ``last.ckpt``; remote storage goes through fsspec."""
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            return super().save_checkpoint(checkpoint, path, storage_options)  # remote storage: fsspec's way
        path = Path(path)
        if path.name == "last.ckpt" and path.is_file():
            _keep_previous(path)
        write_atomic(path, lambda f: torch.save(checkpoint, f), ".ckpt")


def _keep_previous(path: Path) -> None:
    """Make ``previous.ckpt`` the current ``last.ckpt``; a complete file is in place at every moment."""
    staged = path.with_name(f".{PREVIOUS}.part")
    staged.unlink(missing_ok=True)  # left by a kill between the two steps below
    try:
        os.link(path, staged)
    except OSError:  # a filesystem without hard links
        shutil.copyfile(path, staged)
    os.replace(staged, path.with_name(PREVIOUS))


class EpochCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` writing ``last.ckpt`` every ``every_n_epochs`` and after the last epoch, also with ``save_top_k=0``.

    Lightning 2.6 writes ``last.ckpt`` only beside a top-k checkpoint; with ``save_top_k=0`` the
    first one appeared at ``on_train_end``, after the final search, so a run killed earlier had
    nothing to resume from and a failing final oracle left no model. Files are written by
    :class:`AtomicCheckpointIO`, installed here unless a custom checkpoint IO is configured.
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Install :class:`AtomicCheckpointIO` unless a custom checkpoint IO is configured."""
        super().setup(trainer, pl_module, stage)
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()

    @property
    def state_key(self) -> str:
        """The parent's key, so that checkpoints written before this subclass existed still resume."""
        return super().state_key.replace(type(self).__qualname__, "ModelCheckpoint", 1)  # older checkpoints resume

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Also save ``last.ckpt`` when due and after the last epoch (before the final search)."""
        super().on_train_epoch_end(trainer, pl_module)
        epoch = trainer.current_epoch + 1
        every = compat.every_n_epochs(self)
        due = every >= 1 and epoch % every == 0
        final = trainer.max_epochs is not None and 0 <= trainer.max_epochs <= epoch  # before the final search
        if self.save_last and (due or final):
            compat.save_last_checkpoint(self, trainer)  # skipped as well when super() saved this step already


def latest_checkpoint(default_root_dir: str | Path | None) -> Path | None:
    """The newest ``lightning_logs/version_*/checkpoints/last.ckpt`` under the root dir, or None."""
    root = Path(default_root_dir or ".") / "lightning_logs"
    found = sorted(root.glob("version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def resolve_checkpoint(ckpt_path: str | None, default_root_dir: str | Path | None, subcommand: str) -> str:
    """``--ckpt_path`` of ``validate / predict / search``: required; ``last`` is the newest ``last.ckpt`` under the root dir.

    The file is then checked by :func:`readable_checkpoint` like one to resume from.
    """
    if ckpt_path is None:
        raise CheckpointError(f"matchopt {subcommand} needs --ckpt_path: {FIT_HINT} (or 'last': the newest one)")
    if ckpt_path == "last":
        found = latest_checkpoint(default_root_dir)
        if found is None:
            raise CheckpointError(
                f"--ckpt_path last: no lightning_logs/version_*/checkpoints/last.ckpt under "
                f"{str(default_root_dir or '.')!r}; pass --trainer.default_root_dir of the training run or a file"
            )
        return str(found)
    if ckpt_path in LIGHTNING_KEYWORDS:
        raise CheckpointError(f"matchopt {subcommand} --ckpt_path {ckpt_path}: pass a file ({FIT_HINT}) or 'last'")
    return str(Path(ckpt_path).expanduser())


def readable_checkpoint(ckpt_path: str | None, subcommand: str = "fit") -> str | None:
    """The checkpoint to resume from (or to validate, predict or search with), checked to be readable.

    CheckpointError says what to do. An unreadable ``last.ckpt`` with a readable
    ``previous.ckpt`` beside it falls back to that one, with a notice (training is deterministic
    per epoch, so a resumed run ends where it would have; ``validate / predict / search`` use the
    epoch before). Lightning's own keywords (``last`` when nothing was found, ``best``, ``hpc``)
    are left to Lightning.
    """
    if ckpt_path is None or ckpt_path in LIGHTNING_KEYWORDS:
        return ckpt_path
    path = Path(ckpt_path)
    try:
        _read(path, subcommand)
    except CheckpointError:
        previous = path.with_name(PREVIOUS)
        if path.name != "last.ckpt" or not previous.is_file():
            raise
        try:
            _read(previous, subcommand)
        except CheckpointError:
            fix = "start fresh without --ckpt_path" if subcommand == "fit" else f"pass {FIT_HINT}"
            raise CheckpointError(f"neither {path} nor {previous} can be read: {fix}") from None
        doing = "resuming from" if subcommand == "fit" else f"{subcommand} uses"
        _notice(f"matchopt: {path} cannot be read; {doing} {previous}, one epoch earlier")
        return str(previous)
    return str(path)


def check_checkpoint_fits(ckpt_path: str | None, model: L.LightningModule, datamodule, subcommand: str = "fit") -> None:
    """A checkpoint to resume from (or to use) must come from this task and a surrogate of this shape."""
    if ckpt_path is None or ckpt_path in LIGHTNING_KEYWORDS:
        return
    path = Path(ckpt_path)
    checkpoint = _read(path)
    if subcommand == "fit":
        fresh = "pass a checkpoint of this run, or start fresh without --ckpt_path (in another --trainer.default_root_dir)"
    else:
        fresh = "pass the config it was trained with (its log dir's config.yaml)"
    saved_task = (checkpoint.get("datamodule_hyper_parameters") or {}).get("task")
    task = datamodule.task.name
    if saved_task is not None and ALIASES.get(saved_task, saved_task) != task:
        raise CheckpointError(f"checkpoint {path} was trained on task {saved_task!r}, not {task!r}: {fresh}")
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    saved = {k: tuple(v.shape) for k, v in checkpoint["state_dict"].items()}
    for key in [*expected, *sorted(saved.keys() - expected.keys())]:  # the model's order: input layer first
        if expected.get(key) != saved.get(key):
            raise CheckpointError(
                f"checkpoint {path} holds another surrogate ({key}: {saved.get(key)} in the file, "
                f"{expected.get(key)} here; another input width or model.surrogate): {fresh}"
            )


def read_hyperparameters(ckpt_path: str) -> dict[str, Any]:
    """A readable checkpoint's surrogate hyperparameters; CheckpointError if it holds none (not MATCH-OPT's)."""
    path = Path(ckpt_path)
    hparams = _read(path).get("hyper_parameters")
    if not isinstance(hparams, dict) or "input_dim" not in hparams:
        raise CheckpointError(f"checkpoint {path} is not a MATCH-OPT checkpoint (no surrogate hyperparameters): pass {FIT_HINT}")
    return upgrade_hyperparameters(hparams)  # a checkpoint of the flat model.* keys, in today's form


def _read(path: Path, subcommand: str = "fit") -> dict[str, Any]:
    """The checkpoint's contents; CheckpointError (one line, with what to do in ``subcommand``) if there are none."""
    if subcommand == "fit":
        missing = "check --ckpt_path, or start fresh without it"
        unreadable = "resume from another one (--ckpt_path FILE) or start fresh without --ckpt_path"
    else:
        missing = unreadable = f"pass {FIT_HINT}"
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: {missing}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch's reasons vary with where the file breaks (zip, pickle, EOF)
        reason = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else 'no details'}"
        checkpoint = reason
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        reason = checkpoint if isinstance(checkpoint, str) else "no model state in it"
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({reason}): it is truncated, empty or not a Lightning checkpoint; "
            f"{unreadable}"
        )
    return checkpoint


@rank_zero_only
def _notice(line: str) -> None:
    print(line, file=sys.stderr)
