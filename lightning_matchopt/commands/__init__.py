"""The command line: ``matchopt SUBCOMMAND ...`` and ``python -m lightning_matchopt``."""
