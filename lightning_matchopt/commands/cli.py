"""The command line: LightningCLI with MATCH-OPT's pieces wired together.

``matchopt fit --config tfbind8`` (or ``python -m lightning_matchopt``): ``--config`` takes a path
or the name of a shipped config. The search callback is configured under ``search.*``,
checkpointing under ``checkpoint.*`` (and ``best_checkpoint.*``), the prediction writer under
``prediction.*``; the surrogate's input width is linked from the task, never set by hand. After
``fit``, a checkpoint is validated (``validate``), scores designs (``predict``) or is searched
again (``search``); the checkpoint's own hyperparameters define its network. User errors print
one or two lines, never the 90-line usage.
"""

from __future__ import annotations

import difflib
import re
import sys
import textwrap
import warnings
from pathlib import Path

import lightning
from jsonargparse import ActionConfigFile
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_only

from lightning_matchopt import compat
from lightning_matchopt.callbacks.checkpoints import (
    EpochCheckpoint,
    check_checkpoint_fits,
    latest_checkpoint,
    read_hyperparameters,
    readable_checkpoint,
    resolve_checkpoint,
)
from lightning_matchopt.callbacks.failed_start import DiscardFailedStart
from lightning_matchopt.callbacks.prediction import PredictionWriter
from lightning_matchopt.callbacks.signals import StopOnSignal, release_process_group
from lightning_matchopt.commands import FROM_CHECKPOINT, TRAINER_SUBCOMMANDS, config_names
from lightning_matchopt.data import MatchOptDataModule
from lightning_matchopt.errors import ConfigError, MatchOptError
from lightning_matchopt.models import MatchOptModule
from lightning_matchopt.quiet import silence_third_party_noise
from lightning_matchopt.search import DesignSearch
from lightning_matchopt.tasks import TASKS
from lightning_matchopt.trainer import MatchOptTrainer

PROJECT_GROUPS = ("data", "model", "search")


class UnknownConfig(TypeError):
    """A ``--config`` that is neither a file nor a shipped config (its message is for the user)."""


class ConfigFileOrName(ActionConfigFile):
    """``--config``: a path, or the name of a shipped config (a path that exists wins).

    Text that is a config itself (``--config '{trainer: {max_epochs: 1}}'``) passes through.
    """

    def __call__(self, parser, cfg, values, option_string=None):  # noqa: D102
        path = config_names.resolve(values)
        if not Path(path).exists() and not any(s in values for s in ("{", "\n", ": ")):
            raise UnknownConfig(config_names.unknown_config_message(values))
        super().__call__(parser, cfg, path, option_string)


class MatchOptArgumentParser(LightningArgumentParser):
    """LightningArgumentParser whose errors are one or two lines with a hint, not the usage."""

    def error(self, message: str, ex: Exception | None = None):  # noqa: D102
        if not self.exit_on_error:
            super().error(message, ex)  # raises, for callers that catch parse errors
        if not isinstance(ex, UnknownConfig):
            message = explain(message, getattr(ex, "subcommand_parser", None) or self)
        print(f"matchopt: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def known_keys(parser: LightningArgumentParser) -> list[str]:
    """Every ``--key`` the parser and its subcommands accept, without the dashes."""
    parsers = [parser, *compat.subcommand_parsers(parser)]
    return [s[2:] for p in parsers for a in compat.parser_actions(p) for s in a.option_strings if s.startswith("--")]


def closest_key(key: str, known: list[str]) -> str | None:
    """The valid key a mistyped one most likely meant: same group first, ``learning_rate`` -> ``lr``."""
    group, _, leaf = key.rpartition(".")

    def initials(name: str) -> str:
        return "".join(word[:1] for word in name.split("_"))

    for candidates in ([k for k in known if k.rpartition(".")[0] == group], known):
        leaves = {k.rpartition(".")[2]: k for k in candidates}
        for name, full in leaves.items():
            if "_" in leaf + name and (initials(leaf) == name or initials(name) == leaf):
                return full
        close = difflib.get_close_matches(leaf, leaves, n=1, cutoff=0.7)
        if close:
            return leaves[close[0]]
    close = difflib.get_close_matches(key, known, n=1)
    return close[0] if close else None


def explain(message: str, parser: LightningArgumentParser) -> str:
    """Jsonargparse's message in one or two lines; an unknown key gets the closest valid one."""
    if m := re.match(r"unrecognized arguments: (\S+)", message):
        if not m.group(1).startswith("-"):
            return f"unexpected argument {m.group(1)!r}; options are written --KEY VALUE"
        key = m.group(1).split("=")[0].lstrip("-")
        problem = f"unknown option --{key}"
    elif m := re.search(r"does not accept option '([^']+)'", message):
        key, problem = m.group(1), f"unknown key '{m.group(1)}' in a config file"
    elif (m := re.match(r'Parser key "([^"]+)":', message)) and (got := re.search(r"(?:Got|Given) value: (.*)", message)):
        expected = re.findall(r"Expected a <class '([^']+)'>|Expected a typing\.Literal\[(.+?)\]\.", message)
        kinds = [f"one of {literal}" if literal else kind.replace("NoneType", "null") for kind, literal in expected]
        wanted = f"expected {' or '.join(kinds)}, " if kinds else ""
        return f"bad value for --{m.group(1)}: {wanted}got {got.group(1).strip()!r}"
    else:
        return " ".join(message.split()) + "\n(matchopt fit --help lists the options)"
    close = closest_key(key, known_keys(parser))
    return problem + (f"; did you mean --{close}?" if close else "; matchopt fit --help lists the options")


class MatchOptCLI(LightningCLI):
    """LightningCLI with the search callback, last-checkpoint saving, ``--ckpt_path last`` resume and ``search``."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Only the Trainer methods that work with this module (``TRAINER_SUBCOMMANDS``), ``search`` included."""
        skip = {"model", "datamodule"}
        commands = {**LightningCLI.subcommands(), "search": skip}
        return {k: v for k, v in commands.items() if k in TRAINER_SUBCOMMANDS}

    def init_parser(self, **kwargs) -> LightningArgumentParser:
        """LightningCLI's parser, with short errors and ``--config`` that also takes shipped names."""
        kwargs.setdefault("dump_header", [f"lightning.pytorch=={lightning.__version__}"])
        # argparse takes any unique prefix of an option: --trainer.max_epoch would silently mean
        # --trainer.max_epochs. A key is spelled in full, or it is an error with a hint.
        kwargs.setdefault("allow_abbrev", False)
        parser = MatchOptArgumentParser(**kwargs)
        parser.add_argument(
            "-c", "--config", action=ConfigFileOrName,
            help="a config file, or the name of a shipped one (`matchopt configs` lists them); repeatable, last wins",
        )
        return parser

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Add the callbacks' settings groups (``search.*``, ``checkpoint.*``, ...) and their defaults."""
        parser.add_lightning_class_args(DesignSearch, "search")
        parser.add_lightning_class_args(PredictionWriter, "prediction")
        parser.add_lightning_class_args(EpochCheckpoint, "checkpoint")
        parser.add_lightning_class_args(ModelCheckpoint, "best_checkpoint")
        parser.set_defaults({
            # checkpoint.*: last.ckpt after every epoch (EpochCheckpoint), previous.ckpt beside it.
            "checkpoint.save_last": True,
            # Always last.ckpt: Lightning would write last-v1.ckpt beside the old one when a resumed
            # run's folder moved (it then reloads no last_model_path), and --ckpt_path last would go back.
            "checkpoint.enable_version_counter": False,
            "checkpoint.save_top_k": 0,
            # best_checkpoint.*: the best epoch by a validation metric, off until save_top_k > 0.
            "best_checkpoint.monitor": "val/spearman",
            "best_checkpoint.mode": "max",
            "best_checkpoint.save_top_k": 0,
            "best_checkpoint.filename": "best-epoch={epoch}",
            "best_checkpoint.auto_insert_metric_name": False,
        })
        parser.link_arguments("data.input_dim", "model.input_dim", apply_on="instantiate")
        parser.link_arguments("model.surrogate", "data.ensemble_size", compute_fn=ensemble_size_of)  # each member its own draws
        task = next(a for a in compat.parser_actions(parser) if a.dest == "data.task")
        task.help = f"one of {', '.join(TASKS)}, or a Design-Bench id such as TFBind8-Exact-v0"
        parser.usage = project_summary(parser)

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        """Check a ``--ckpt_path`` file before LightningCLI reads its hyperparameters (one line, not a traceback).

        ``validate / predict / search`` need one: ``last`` is the newest ``last.ckpt`` under
        ``--trainer.default_root_dir``, and Lightning then takes the checkpoint's model
        hyperparameters from the (readable) file.
        """
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand") or ""
        config = self.config.get(subcommand, {})
        if subcommand in FROM_CHECKPOINT:
            root = (config.get("trainer") or {}).get("default_root_dir")
            config.ckpt_path = resolve_checkpoint(config.get("ckpt_path"), root, subcommand)
        if config.get("ckpt_path"):
            config.ckpt_path = readable_checkpoint(config.ckpt_path, subcommand)

    def _parse_ckpt_path(self) -> None:
        """Lightning's (private) hook that puts a checkpoint's model hyperparameters into the config.

        Given them in today's form: a checkpoint of the flat ``model.*`` keys still loads.
        """
        subcommand = self.config.get("subcommand")
        ckpt_path = subcommand and self.config[subcommand].get("ckpt_path")
        if not ckpt_path or not Path(ckpt_path).is_file():
            return
        hparams = {k: v for k, v in read_hyperparameters(ckpt_path).items() if k != "_instantiator"}
        self.config = self.parser.parse_object({subcommand: {"model": hparams}}, self.config)

    def before_instantiate_classes(self) -> None:
        """Before anything is built: refuse ``checkpoint.monitor``, resolve ``--ckpt_path last``, keep out of fits' log dirs."""
        config = self.config.get(self.subcommand, self.config) if self.subcommand else self.config
        if config.checkpoint.get("monitor"):
            raise ConfigError(
                "checkpoint.* keeps last.ckpt, the last epoch; to keep the best epoch by a metric, set "
                "best_checkpoint.monitor and best_checkpoint.save_top_k (configs/checkpoint/best_val_spearman.yaml)"
            )
        self._resume_log_dir = None
        if self.subcommand == "fit" and config.get("ckpt_path") == "last":
            self._resume_log_dir = _resume_in_latest_version(config)
            config.ckpt_path = readable_checkpoint(config.ckpt_path)
        if self.subcommand in FROM_CHECKPOINT:
            _keep_out_of_training_log_dirs(config, self.subcommand)
            # Lightning restores the checkpoint's callback states in every stage; outside fit the
            # checkpoint callbacks write nothing, so their note that the folder changed is noise.
            warnings.filterwarnings("ignore", "The dirpath has changed from")
            # The checkpoint defines its network: _parse_ckpt_path put its hyperparameters into config.model.
            config.data.ensemble_size = ensemble_size_of(config.model.surrogate)  # the link, after the checkpoint's value

    def _check_checkpoint(self) -> None:
        """Refuse a checkpoint of another task or surrogate shape before Lightning loads it."""
        ckpt_path = self.config_init[self.subcommand].get("ckpt_path")
        check_checkpoint_fits(ckpt_path, self.model, self.datamodule, self.subcommand)

    def before_fit(self) -> None:
        """Check that the checkpoint fits; a resumed run logs into its own version dir."""
        self._check_checkpoint()
        if self._resume_log_dir is not None:
            # The resumed run logs into its own version dir. Set on the Trainer, not in the config,
            # so the config.yaml written there stays the run's own: a later ``matchopt search
            # --config`` of it then writes into a new log dir, not over this run's results.
            from lightning.pytorch.loggers import TensorBoardLogger

            log_dir = self._resume_log_dir
            self.trainer.logger = TensorBoardLogger(str(log_dir.parent.parent), name=log_dir.parent.name, version=log_dir.name)

    before_validate = before_predict = before_search = _check_checkpoint

    def after_validate(self) -> None:
        """Say where the metrics went: Lightning's table prints them, not the folder TensorBoard reads."""
        if self.trainer.is_global_zero:
            print(f"validate: val/* metrics and the predicted-vs-true plot logged to {self.trainer.log_dir} (TensorBoard)")


def ensemble_size_of(surrogate) -> int:
    """The members of a ``model.surrogate`` spec (its ``init_args.ensemble_size``; 1 if it has none)."""
    init_args = getattr(surrogate, "init_args", None) or {}
    return int(init_args.get("ensemble_size", 1) or 1) if hasattr(init_args, "get") else 1


def project_summary(parser: LightningArgumentParser) -> str:
    """The top of ``matchopt fit --help``: the project's own options, before Lightning's 700 lines."""
    lines = ["%(prog)s [--config FILE_OR_NAME ...] [--print_config] [--KEY VALUE ...]", ""]
    lines.append("MATCH-OPT's options (in full below, after Lightning's --trainer.* options):")
    for group in PROJECT_GROUPS:
        keys = [
            s.split(".", 1)[1] for a in compat.parser_actions(parser) for s in a.option_strings
            if s.startswith(f"--{group}.") and not s.endswith("+")
        ]
        lines += textwrap.wrap(" ".join(keys), 96, initial_indent=f"  --{group + '.*':<11}", subsequent_indent=" " * 15)
        if group == "data":
            lines += textwrap.wrap(f"(tasks: {', '.join(TASKS)})", 96, initial_indent=" " * 15, subsequent_indent=" " * 16)
    lines += textwrap.wrap(
        "Lightning's: --trainer.* (Trainer), --checkpoint.* (ModelCheckpoint: last.ckpt every epoch), "
        "--best_checkpoint.* (the best epoch by val/spearman, off by default), --prediction.* (predict's writer)",
        96, subsequent_indent="  ",
    )
    lines.append("--ckpt_path: a checkpoint of fit, or 'last' (the newest); validate, predict and search need one")
    lines.append("--config takes a path or a shipped config's name, e.g. --config tfbind8 --config methods/regression")
    return "\n".join(lines)


def _resume_in_latest_version(config) -> Path | None:
    """Make ``--ckpt_path last`` continue the newest run under the root dir; returns its log dir.

    Lightning looks for ``last.ckpt`` in the NEW run's checkpoint folder (a fresh
    ``version_N``), which is empty; here the newest ``version_*/checkpoints/last.ckpt`` is used,
    and ``MatchOptCLI.before_fit`` points the TensorBoard logger at that version so logs and
    results continue there.
    """
    trainer = config.trainer
    if trainer.get("logger") not in (None, True):
        return None  # a user-configured logger decides its own version
    found = latest_checkpoint(trainer.get("default_root_dir"))
    if found is None:
        return None  # Lightning warns that there is nothing to resume and starts fresh
    config.ckpt_path = str(found)
    return found.parent.parent


def _keep_out_of_training_log_dirs(config, subcommand: str) -> None:
    """Validate / predict / search never write into a training run's log dir.

    A fit resumed by an earlier version of this CLI saved a ``config.yaml`` whose logger is pinned
    to its own ``version_N``; searching with that config would overwrite the fit's
    ``results.json`` and ``config.yaml``. Such a logger is replaced by the default one: a new
    ``version_N`` under ``--trainer.default_root_dir``.
    """
    logger = config.trainer.get("logger")
    init = logger.get("init_args") if hasattr(logger, "get") else None
    if not init or not str(logger.get("class_path", "")).endswith("TensorBoardLogger") or init.get("version") is None:
        return
    log_dir = Path(init.get("save_dir") or ".") / (init.get("name") or "") / str(init.get("version"))
    if (log_dir / "checkpoints").is_dir():
        print(f"matchopt {subcommand}: the config's logger writes into {log_dir}, a training run's log dir; "
              f"writing to a new log dir under --trainer.default_root_dir instead", file=sys.stderr)
        config.trainer.logger = None


def main(args: list[str] | None = None) -> None:
    """The Trainer subcommands (``fit``, ``validate``, ``predict``, ``search``): LightningCLI's; user errors print one line.

    ``matchopt``'s dispatcher (:func:`lightning_matchopt.commands.main`) runs them here.
    """
    silence_third_party_noise()
    failed_start = DiscardFailedStart()
    try:
        MatchOptCLI(
            MatchOptModule,
            MatchOptDataModule,
            trainer_class=MatchOptTrainer,
            seed_everything_default=0,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={"callbacks": [StopOnSignal(), failed_start]},
            args=args,
        )
    except (MatchOptError, MisconfigurationException) as e:
        failed_start.discard()
        if rank_zero_only.rank == 0:  # under DDP every rank raises it: say it once
            print(f"matchopt: error: {e}", file=sys.stderr)
        raise SystemExit(getattr(e, "exit_code", 2)) from None
    except BaseException:
        failed_start.discard()
        raise
    finally:
        release_process_group()  # every DDP rank exits with its own status, never an abort
