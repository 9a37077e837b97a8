"""The command line: LightningCLI with MATCH-OPT's pieces wired together.

``matchopt fit --config configs/tfbind8.yaml`` (or ``python -m lightning_matchopt``). The search
callback is configured under ``search.*``, checkpointing under ``checkpoint.*``, the prediction
writer under ``prediction.*``; the surrogate's input width is linked from the task, never set by
hand. After ``fit``, a checkpoint is validated (``validate``), scores designs (``predict``) or is
searched again (``search``); the checkpoint's own hyperparameters define its network.
"""

from __future__ import annotations

import sys
import warnings

from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from lightning_matchopt.checkpoints import (
    check_input_width,
    latest_checkpoint,
    read_hyperparameters,
    resolve_checkpoint,
)
from lightning_matchopt.data import MatchOptDataModule
from lightning_matchopt.errors import ConfigError, MatchOptError
from lightning_matchopt.models import MatchOptModule
from lightning_matchopt.predict import PredictionWriter
from lightning_matchopt.search import DesignSearch
from lightning_matchopt.trainer import MatchOptTrainer

FROM_CHECKPOINT = ("validate", "predict", "search")  # subcommands that use a trained surrogate


class MatchOptCLI(LightningCLI):
    """LightningCLI with the search callback, last-checkpoint saving, ``--ckpt_path last`` resume and ``search``."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """``fit``, ``validate``, ``predict`` and ``search`` (``test``: the module has no test step)."""
        skip = {"model", "dataloaders", "datamodule"}
        return {
            "fit": {"model", "train_dataloaders", "val_dataloaders", "datamodule"},
            "validate": skip,
            "predict": skip,
            "search": {"model", "datamodule"},
        }

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(DesignSearch, "search")
        parser.add_lightning_class_args(PredictionWriter, "prediction")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(ModelCheckpoint, "best_checkpoint")
        parser.set_defaults({
            # checkpoint.*: last.ckpt after every epoch, as its only top-1 file. (save_last alone no longer
            # does it: since Lightning 2.6, last.ckpt is written only when a top-k file is, or at the end.)
            "checkpoint.save_top_k": 1,
            "checkpoint.filename": "last",
            "checkpoint.save_last": False,
            # best_checkpoint.*: the best epoch by a validation metric, off until save_top_k > 0.
            "best_checkpoint.monitor": "val/spearman",
            "best_checkpoint.mode": "max",
            "best_checkpoint.save_top_k": 0,
            "best_checkpoint.filename": "best-epoch={epoch}",
            "best_checkpoint.auto_insert_metric_name": False,
        })
        parser.link_arguments("data.input_dim", "model.input_dim", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        config = self.config.get(self.subcommand, self.config) if self.subcommand else self.config
        if config.checkpoint.get("monitor"):
            raise ConfigError(
                "checkpoint.* keeps last.ckpt, the last epoch; to keep the best epoch by a metric, set "
                "best_checkpoint.monitor and best_checkpoint.save_top_k (configs/checkpoint/best_val_spearman.yaml)"
            )
        if self.subcommand == "fit" and config.get("ckpt_path") == "last":
            _resume_in_latest_version(config)
        if self.subcommand in FROM_CHECKPOINT:
            # Lightning restores the checkpoint's callback states in every stage; outside fit the
            # checkpoint callbacks write nothing, so their note that the folder changed is noise.
            warnings.filterwarnings("ignore", "The dirpath has changed from")
            path = resolve_checkpoint(config.get("ckpt_path"), config.trainer.get("default_root_dir"), self.subcommand)
            config.ckpt_path = str(path)
            self._checkpoint_hparams = read_hyperparameters(path)
            for key, value in self._checkpoint_hparams.items():  # the checkpoint defines its network
                if key in config.model and key != "input_dim":
                    config.model[key] = value

    def _check_checkpoint(self) -> None:
        path = self.config[self.subcommand].ckpt_path
        check_input_width(path, self._checkpoint_hparams, self.datamodule.task.name, self.datamodule.input_dim)

    before_validate = before_predict = before_search = _check_checkpoint


def _resume_in_latest_version(config) -> None:
    """Make ``--ckpt_path last`` continue the newest run under the root dir, in its own log dir.

    Lightning looks for ``last.ckpt`` in the NEW run's checkpoint folder (a fresh
    ``version_N``), which is empty; here the newest ``version_*/checkpoints/last.ckpt`` is used,
    and the TensorBoard logger is pointed at that version so logs and results continue there.
    """
    trainer = config.trainer
    if trainer.get("logger") not in (None, True):
        return  # a user-configured logger decides its own version
    found = latest_checkpoint(trainer.get("default_root_dir"))
    if found is None:
        return  # Lightning warns that there is nothing to resume and starts fresh
    config.ckpt_path = str(found)
    from jsonargparse import Namespace

    trainer.logger = Namespace(
        class_path="lightning.pytorch.loggers.TensorBoardLogger",
        init_args=Namespace(save_dir=str(found.parents[3]), name="lightning_logs", version=found.parent.parent.name),
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
            trainer_class=MatchOptTrainer,
            seed_everything_default=0,
            save_config_kwargs={"overwrite": True},
            args=args,
        )
    except (MatchOptError, MisconfigurationException) as e:
        print(f"matchopt: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
