"""StopOnSignal: SIGTERM or SIGUSR1 ends a run at the next epoch boundary, its checkpoint saved.

Without this, Lightning stops at the next batch on SIGTERM and exits with status 0 and no word,
leaving a ``last.ckpt`` of the epoch before, and SIGUSR1 kills the process outright. Stopping
between epochs instead means ``--ckpt_path last`` resumes exactly where the run stopped
(trajectories are drawn from ``(seed, epoch)``), so the resumed run ends where an uninterrupted
one would. Under SLURM, Lightning's auto-requeue owns both signals (it saves and requeues on
SIGUSR1, stops on SIGTERM) and this callback only says how the run ended.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lightning_matchopt.errors import RunStopped

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class StopOnSignal(Callback):
    """Finish the current epoch (and its search), save ``last.ckpt``, then stop with one line.

    The run exits with status 128 + the signal's number, as a shell reports a process ended by
    it. Under DDP the ranks agree at each epoch start, so a signal to any one process stops all
    of them at the same epoch. A signal during the last epoch lets training and the final search
    finish. Handlers are Lightning's again when ``fit`` returns.
    """

    def __init__(self) -> None:
        self.received: int | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after Lightning's own handlers are set (Trainer._run), so these replace them for this fit
        self.received = None
        if SLURMEnvironment.detect() or threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._record)

    def _record(self, signum: int, frame: Any) -> None:
        self.received = self.received or signum

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        flag = torch.tensor(self.received or 0, device=trainer.strategy.root_device)
        signum = int(trainer.strategy.reduce(flag, reduce_op="max"))  # every rank reaches this collective
        if not signum:
            return
        name, done = signal.Signals(signum).name, trainer.current_epoch
        if done == 0:
            raise RunStopped(f"stopped by {name} before the first epoch ended; nothing to resume: run it again", signum)
        checkpoint = getattr(trainer.checkpoint_callback, "last_model_path", "") or "no checkpoint (checkpointing is off)"
        raise RunStopped(
            f"stopped by {name} after epoch {done} of {trainer.max_epochs}; {checkpoint} holds it: "
            "run the same fit command with --ckpt_path last to continue",
            signum,
        )

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException):  # Lightning's own stop (SLURM): say so, not exit 0
            if trainer.is_global_zero:
                print(
                    f"matchopt: stopped by SIGTERM in epoch {trainer.current_epoch + 1}; last.ckpt holds the "
                    "epoch before: continue with --ckpt_path last (keep it in a requeued SLURM job's command)",
                    file=sys.stderr,
                )
            exception.code = 128 + signal.SIGTERM
