"""StopOnSignal: SIGTERM or SIGUSR1 ends a run at the next epoch boundary, its checkpoint saved.

Without this, Lightning stops at the next batch on SIGTERM and exits with status 0 and no word,
leaving a ``last.ckpt`` of the epoch before, and SIGUSR1 kills the process outright. Stopping
between epochs instead means ``--ckpt_path last`` resumes exactly where the run stopped
(trajectories are drawn from ``(seed, epoch)``), so the resumed run ends where an uninterrupted
one would.

Under SLURM, Lightning's auto-requeue owns both signals (it saves and requeues on SIGUSR1, stops on
SIGTERM at the next batch), but its handlers do their work inside the signal handler, where it can
hang the job for good: the requeue handler's logger flush waits forever on the TensorBoard writer's
lock if the interrupted code holds it, and under DDP the SIGTERM handler's broadcast meets another
rank's unrelated collective. This callback runs both handlers at the next training batch end
instead, on every DDP rank at the same one, and says how the run ended.

However a DDP run ends, ``release_process_group`` then joins the process group's threads before
the interpreter shuts down, so that the exit status is the run's and not an abort.
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
    finish. Under SLURM, Lightning's handlers run at the next training batch end instead of
    inside the signal handler; a signal after the last training batch is not acted on (the run
    is finishing). Handlers are Lightning's again when ``fit`` returns.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.deferred: dict[int, Any] = {}  # SLURM: Lightning's handlers, run at a batch end
        self.pending: set[int] = set()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Take the stop signals for this fit: noted for the next epoch start, or (SLURM) Lightning's run at a batch end."""
        # after Lightning's own handlers are set (Trainer._run), so these replace them for this fit
        self.received, self.deferred, self.pending = None, {}, set()
        if threading.current_thread() is not threading.main_thread():
            return
        if SLURMEnvironment.detect():
            environment = getattr(trainer.strategy, "cluster_environment", None)
            requeue = getattr(environment, "requeue_signal", None) or signal.SIGUSR1
            for signum in (requeue, signal.SIGTERM):  # in this order: save and requeue before stopping
                handler = signal.getsignal(signum)
                if callable(handler):  # Lightning's (the requeue one only with auto-requeue on)
                    self.deferred[signum] = handler
                    signal.signal(signum, self._defer)
            return
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._record)

    def _record(self, signum: int, frame: Any) -> None:
        self.received = self.received or signum

    def _defer(self, signum: int, frame: Any) -> None:
        self.pending.add(signum)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        """Run the deferred signals' handlers, on every rank at the same batch."""
        if not self.deferred:
            return
        # Lightning's handlers hold collectives (a checkpoint save, a broadcast): every rank runs
        # them at the same batch, whichever ranks got the signal.
        taken = set(self.pending)  # a signal landing from here on stays pending for the next batch
        self.pending -= taken
        flags = torch.tensor([int(s in taken) for s in self.deferred], device=trainer.strategy.root_device)
        flags = trainer.strategy.reduce(flags, reduce_op="max")
        for (signum, handler), flag in zip(self.deferred.items(), flags.tolist(), strict=True):
            if flag:
                handler(signum, None)  # requeue: flush loggers, save hpc_ckpt_N.ckpt, scontrol requeue; SIGTERM: stop

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Stop cleanly at an epoch boundary if any rank received a stopping signal."""
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
        """Say why the run stopped, and how to continue, instead of a traceback."""
        if isinstance(exception, SIGTERMException):  # Lightning's own stop (SLURM): say so, not exit 0
            if trainer.is_global_zero:
                print(
                    f"matchopt: stopped by SIGTERM in epoch {trainer.current_epoch + 1}; last.ckpt holds the "
                    "epoch before: continue with --ckpt_path last (keep it in a requeued SLURM job's command)",
                    file=sys.stderr,
                )
            exception.code = 128 + signal.SIGTERM


def release_process_group() -> None:
    """Destroy the default process group while the interpreter is still whole.

    Lightning destroys it at exit for NCCL only. Left to the interpreter's shutdown, a gloo worker
    thread that is still finishing the last collective (releasing its work and tensors, or running a
    future's callback) needs the GIL of a finalizing interpreter, which ends the thread with a forced
    unwind: "terminate called without an active exception", and the rank dies of SIGABRT instead of
    exiting with its status (pytorch/pytorch#179291). Destroying the group joins those threads first.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
