"""``python -m lightning_matchopt`` runs the CLI."""

from lightning_matchopt.commands import main

if __name__ == "__main__":
    main()
