"""Every private attribute of Lightning, jsonargparse (argparse) and torch that lightning_matchopt uses.

Private attributes change without notice between releases, so each is reached only through this
module (or, where a subclass must override it by name, listed in ``PRIVATE_ATTRIBUTES`` with the
place that does), and ``tests/test_layout.py`` checks that each still exists. Checked against
lightning 2.6.6 (the newest release; pyproject bounds ``lightning<=2.6.6``), jsonargparse 4.53.0
and torch 2.13.0. Light to import: nothing here imports Lightning or torch.
"""

from __future__ import annotations

from typing import Any

CHECKED_AGAINST = {"lightning": "2.6.6", "jsonargparse": "4.53.0", "torch": "2.13.0"}

# (owner, attribute, what it is for, where it is used). The owner's import path is what the test checks.
PRIVATE_ATTRIBUTES = [
    ("lightning.pytorch.Trainer", "_run_stage",
     "the stage run after setup and checkpoint restore: matchopt search replaces validation by one search",
     "trainer.py: MatchOptTrainer._run_stage overrides it"),
    ("lightning.pytorch.callbacks.ModelCheckpoint", "_every_n_epochs",
     "the every_n_epochs setting, as the callback keeps it", "callbacks/checkpoints.py via every_n_epochs()"),
    ("lightning.pytorch.callbacks.ModelCheckpoint", "_should_skip_saving_checkpoint",
     "Lightning's own reasons not to save (sanity check, fast_dev_run, saved this step)",
     "callbacks/checkpoints.py via save_last_checkpoint()"),
    ("lightning.pytorch.callbacks.ModelCheckpoint", "_should_save_on_train_epoch_end",
     "whether the callback saves at train epoch end or after validation", "callbacks/checkpoints.py via save_last_checkpoint()"),
    ("lightning.pytorch.callbacks.ModelCheckpoint", "_save_last_checkpoint",
     "write last.ckpt (also with save_top_k=0)", "callbacks/checkpoints.py via save_last_checkpoint()"),
    ("lightning.pytorch.callbacks.ModelCheckpoint", "_monitor_candidates",
     "the metrics a checkpoint's file name may use", "callbacks/checkpoints.py via save_last_checkpoint()"),
    ("lightning.pytorch.loggers.TensorBoardLogger", "_default_hp_metric",
     "off: Lightning's start-of-run HPARAMS session would hide the final one", "pictures.py via quiet_default_hp_metric()"),
    ("torch.utils.tensorboard.SummaryWriter", "_get_file_writer",
     "the event file writer the HPARAMS session is added to", "pictures.py via file_writer()"),
    ("lightning.pytorch.core.module.LightningModule", "_current_fx_name",
     "set around every hook call; MatchOptModule.__setattr__ takes a fast path for it",
     "models/module.py (by name)"),
    ("jsonargparse.ArgumentParser", "_actions", "a parser's options (argparse's list)",
     "commands/cli.py via parser_actions()"),
    ("jsonargparse.ArgumentParser", "_subcommands_action", "the subcommands' action of a parser (jsonargparse)",
     "commands/cli.py via subcommand_parsers()"),
    ("argparse._SubParsersAction", "_name_parser_map", "subcommand name -> its parser (argparse)",
     "commands/cli.py via subcommand_parsers()"),
    ("lightning.pytorch.cli.LightningCLI", "_parse_ckpt_path",
     "puts a --ckpt_path checkpoint's model hyperparameters into the config",
     "commands/cli.py: MatchOptCLI._parse_ckpt_path overrides it (old checkpoints' flat keys upgraded)"),
]


def every_n_epochs(checkpoint: Any) -> int:
    """``ModelCheckpoint``'s ``every_n_epochs`` setting."""
    return checkpoint._every_n_epochs


def save_last_checkpoint(checkpoint: Any, trainer: Any) -> None:
    """Write ``last.ckpt`` now, unless Lightning itself would not save at this point (or at all at epoch end)."""
    if checkpoint._should_skip_saving_checkpoint(trainer) or not checkpoint._should_save_on_train_epoch_end(trainer):
        return
    checkpoint._save_last_checkpoint(trainer, checkpoint._monitor_candidates(trainer))


def disable_default_hp_metric(logger: Any) -> None:
    """Stop a ``TensorBoardLogger`` from writing its start-of-run ``hp_metric = -1`` HPARAMS session."""
    logger._default_hp_metric = False


def file_writer(logger: Any) -> Any:
    """The event file writer of a ``TensorBoardLogger``'s ``SummaryWriter``."""
    return logger.experiment._get_file_writer()


def parser_actions(parser: Any) -> list:
    """A (jsonargparse or argparse) parser's actions: its options."""
    return parser._actions


def subcommand_parsers(parser: Any) -> list:
    """The parsers of a jsonargparse parser's subcommands (none without subcommands)."""
    return list(getattr(parser._subcommands_action, "_name_parser_map", {}).values())
