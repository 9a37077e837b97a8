"""DiscardFailedStart: a command that fails before its first training step leaves no run folder.

Lightning creates the run's TensorBoard folder (``version_N`` with an event file, and
``config.yaml``) while it sets up, before the data module has read a file; a wrong data root or a
missing predict file then left an empty run that TensorBoard lists beside the real ones. On such a
failure this callback notes the folder, and the command removes it once Lightning has closed its
loggers, so the one error line is all that is left. A folder holding anything else (a checkpoint,
results, predictions) is never removed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback

# What Lightning writes into a run folder by itself, before any work is done.
AUTOMATIC_FILES = ("config.yaml", "hparams.yaml")
AUTOMATIC_PREFIXES = ("events.out.tfevents.",)


def holds_only_automatic_files(folder: Path) -> bool:
    """True when ``folder`` exists and holds nothing but what Lightning writes on its own."""
    if not folder.is_dir():
        return False
    return all(
        entry.is_file() and (entry.name in AUTOMATIC_FILES or entry.name.startswith(AUTOMATIC_PREFIXES))
        for entry in folder.iterdir()
    )


class DiscardFailedStart(Callback):
    """Note the run folder of a command that fails before training a step; ``discard()`` removes it."""

    def __init__(self) -> None:
        self.doomed: Path | None = None

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """Note the log dir of a run that failed before its first step, if it holds nothing of its own."""
        self.doomed = None
        if trainer.global_step or not trainer.is_global_zero or trainer.logger is None:
            return
        log_dir = trainer.logger.log_dir
        if log_dir and holds_only_automatic_files(Path(log_dir)):
            self.doomed = Path(log_dir)

    def discard(self) -> None:
        """Remove the noted folder (checked again: nothing may have been written since), and a parent left empty."""
        folder, self.doomed = self.doomed, None
        if folder is None or not holds_only_automatic_files(folder):
            return
        shutil.rmtree(folder, ignore_errors=True)
        parent = folder.parent  # lightning_logs/, when this was its only run
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
