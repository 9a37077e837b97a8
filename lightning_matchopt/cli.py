"""The command line: LightningCLI with MATCH-OPT's pieces wired together.

``matchopt fit --config configs/tfbind8.yaml`` (or ``python -m lightning_matchopt``). The search
callback is configured under ``search.*``, checkpointing under ``checkpoint.*``; the surrogate's
input width is linked from the task, never set by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_only

from lightning_matchopt.checkpoints import (
    EpochCheckpoint,
    check_checkpoint_fits,
    readable_checkpoint,
)
from lightning_matchopt.data import MatchOptDataModule
from lightning_matchopt.errors import MatchOptError
from lightning_matchopt.models import MatchOptModule
from lightning_matchopt.search import DesignSearch
from lightning_matchopt.signals import StopOnSignal


class MatchOptCLI(LightningCLI):
    """LightningCLI with the search callback, last-checkpoint saving and ``--ckpt_path last`` resume."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(DesignSearch, "search")
        parser.add_lightning_class_args(EpochCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.save_top_k": 0})
        parser.link_arguments("data.input_dim", "model.input_dim", apply_on="instantiate")
        parser.link_arguments("model.ensemble_size", "data.ensemble_size")  # each member its own draws

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        """Check a ``--ckpt_path`` file before LightningCLI reads its hyperparameters (one line, not a traceback)."""
        super().parse_arguments(parser, args)
        config = self.config.get(self.config.get("subcommand") or "", {})
        if config.get("ckpt_path"):
            config.ckpt_path = readable_checkpoint(config.ckpt_path)

    def before_instantiate_classes(self) -> None:
        config = self.config.get(self.subcommand, self.config) if self.subcommand else self.config
        if self.subcommand == "fit" and config.get("ckpt_path") == "last":
            _resume_in_latest_version(config)
            config.ckpt_path = readable_checkpoint(config.ckpt_path)

    def before_fit(self) -> None:
        """Refuse a checkpoint of another task or surrogate shape before Lightning loads it."""
        check_checkpoint_fits(self.config_init[self.subcommand].get("ckpt_path"), self.model, self.datamodule)


def _resume_in_latest_version(config) -> None:
    """Make ``--ckpt_path last`` continue the newest run under the root dir, in its own log dir.

    Lightning looks for ``last.ckpt`` in the NEW run's checkpoint folder (a fresh
    ``version_N``), which is empty; here the newest ``version_*/checkpoints/last.ckpt`` is used,
    and the TensorBoard logger is pointed at that version so logs and results continue there.
    """
    trainer = config.trainer
    if trainer.get("logger") not in (None, True):
        return  # a user-configured logger decides its own version
    root = Path(trainer.get("default_root_dir") or ".") / "lightning_logs"
    found = sorted(root.glob("version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        return  # Lightning warns that there is nothing to resume and starts fresh
    config.ckpt_path = str(found[-1])
    from jsonargparse import Namespace

    trainer.logger = Namespace(
        class_path="lightning.pytorch.loggers.TensorBoardLogger",
        init_args=Namespace(save_dir=str(root.parent), name="lightning_logs", version=found[-1].parent.parent.name),
    )


def main(args: list[str] | None = None) -> None:
    """Entry point of ``matchopt`` and ``python -m lightning_matchopt``; user errors print one line.

    ``matchopt data ...`` checks or fetches Design-Bench files (``lightning_matchopt.datafetch``),
    ``matchopt grid ...`` runs tasks x methods x seeds (``lightning_matchopt.grid``); every other
    subcommand is LightningCLI's.
    """
    argv = sys.argv[1:] if args is None else args
    if argv[:1] == ["data"]:
        from lightning_matchopt.datafetch import main as data_main

        raise SystemExit(data_main(argv[1:]))
    if argv[:1] == ["grid"]:
        from lightning_matchopt.grid import main as grid_main

        raise SystemExit(grid_main(argv[1:]))
    try:
        MatchOptCLI(
            MatchOptModule,
            MatchOptDataModule,
            seed_everything_default=0,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={"callbacks": [StopOnSignal()]},
            args=args,
        )
    except (MatchOptError, MisconfigurationException) as e:
        if rank_zero_only.rank == 0:  # under DDP every rank raises it: say it once
            print(f"matchopt: error: {e}", file=sys.stderr)
        raise SystemExit(getattr(e, "exit_code", 2)) from None
