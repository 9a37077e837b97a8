"""The command line: ``matchopt SUBCOMMAND ...`` and ``python -m lightning_matchopt``.

The dispatcher is light: Lightning and torch are imported only for the Trainer subcommands (fit,
validate, predict, search; ``commands/cli.py``), not for ``matchopt data``, ``grid`` or ``configs``.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from typing import Any

from lightning_matchopt.quiet import silence_third_party_noise

# The Trainer methods offered as subcommands, with their help line (test stays hidden: the
# module has no test step; search is MatchOptTrainer's).
TRAINER_SUBCOMMANDS = {
    "fit": "train a surrogate on a task, then search designs with it",
    "validate": "a checkpoint's held-out metrics (val/*), on the rows its training held out",
    "predict": "a checkpoint's predicted scores of the offline rows or of a file of designs",
    "search": "search designs again with a checkpoint's surrogate, scored by the oracle",
}
FROM_CHECKPOINT = ("validate", "predict", "search")  # subcommands that use a trained surrogate
# The project's own subcommands: module whose main(argv) runs it, and its help line.
OWN_SUBCOMMANDS = {
    "data": ("lightning_matchopt.commands.data", "list, check or fetch Design-Bench data files"),
    "grid": ("lightning_matchopt.commands.grid", "run tasks x methods x seeds, each its own run, and tabulate them"),
    "configs": ("lightning_matchopt.commands.config_names", "list the shipped configs, or print one to copy and edit"),
}


def top_level_help() -> str:
    """``matchopt --help``: every subcommand the tool has, and nothing that does not work."""
    commands = {**TRAINER_SUBCOMMANDS, **{name: line for name, (_, line) in OWN_SUBCOMMANDS.items()}}
    width = max(map(len, commands))
    lines = "\n".join(f"  {name:<{width}}  {line}" for name, line in commands.items())
    return (
        f"usage: matchopt {{{','.join(commands)}}} ...\n\n"
        "MATCH-OPT offline black-box optimization (gradient-matching surrogates) on PyTorch Lightning.\n\n"
        f"subcommands (matchopt SUBCOMMAND --help for each):\n{lines}\n\n"
        "example: matchopt fit --config shekel    (a shipped config; matchopt configs lists them)\n"
    )



def main(args: list[str] | None = None) -> None:
    """Entry point of ``matchopt`` and ``python -m lightning_matchopt``; user errors print one line.

    ``matchopt data|grid|configs ...`` run the project's own commands (``OWN_SUBCOMMANDS``); the
    Trainer subcommands (``fit``, ``validate``, ``predict``, ``search``) are LightningCLI's.
    """
    argv = sys.argv[1:] if args is None else list(args)
    silence_third_party_noise()
    command = argv[0] if argv else None
    if command in OWN_SUBCOMMANDS:
        raise SystemExit(importlib.import_module(OWN_SUBCOMMANDS[command][0]).main(argv[1:]))
    if command in (None, "-h", "--help"):
        print(top_level_help(), end="", file=sys.stdout if argv else sys.stderr)
        raise SystemExit(0 if argv else 2)
    if not command.startswith("-") and command not in TRAINER_SUBCOMMANDS:
        known = [*TRAINER_SUBCOMMANDS, *OWN_SUBCOMMANDS]
        close = difflib.get_close_matches(command, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        print(f"matchopt: error: unknown subcommand {command!r}{hint} (one of {', '.join(known)})", file=sys.stderr)
        raise SystemExit(2)
    from lightning_matchopt.commands import (
        cli,  # Lightning and torch: only for the Trainer subcommands
    )

    cli.main(args)


def __getattr__(name: str) -> Any:
    # ``lightning_matchopt.cli.MatchOptCLI`` (the module's old path) still resolves.
    if name != "MatchOptCLI":
        raise AttributeError(f"module 'lightning_matchopt.commands' has no attribute {name!r}")
    return importlib.import_module("lightning_matchopt.commands.cli").MatchOptCLI
