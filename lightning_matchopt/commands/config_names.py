"""The shipped configs by name: ``--config tfbind8``, ``--config methods/regression``.

The repository's ``configs/`` folder is installed as the package ``lightning_matchopt.configs``
(in a wheel and in an editable install alike), so a name works from any folder. A path that
exists always wins over a name; ``configs/NAME.yaml`` is read as the name ``NAME`` when no such
path exists, so the commands written for a checkout work anywhere.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

import lightning_matchopt.configs

SHIPPED = Path(lightning_matchopt.configs.__file__).parent


def names() -> list[str]:
    """Every shipped config as the name ``--config`` accepts (``tfbind8``, ``methods/coms``, ...)."""
    found = (p.relative_to(SHIPPED).with_suffix("").as_posix() for p in SHIPPED.rglob("*.yaml"))
    return sorted(found, key=lambda name: (name.count("/"), name))


def shipped(name: str) -> Path | None:
    """The shipped config called ``name`` (``configs/`` and ``.yaml`` optional), or None."""
    name = name.removeprefix("configs/").removesuffix(".yaml").removesuffix(".yml")
    return SHIPPED / f"{name}.yaml" if name in names() else None


def resolve(value: str) -> str:
    """An existing path as given, else the shipped config it names, else ``value`` unchanged."""
    path = None if Path(value).exists() else shipped(value)
    return str(path) if path else value


def unknown_config_message(value: str) -> str:
    """One line for a ``--config`` that is neither a file nor a shipped name."""
    close = difflib.get_close_matches(value.removeprefix("configs/").removesuffix(".yaml"), names(), n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"config {value!r} is neither a file nor a shipped config{hint} (matchopt configs lists them)"


def _summary(path: Path) -> str:
    """The first comment line of a config, which says what it is."""
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def main(argv: list[str] | None = None) -> int:
    """``matchopt configs``: list the shipped configs, or print one to copy and edit."""
    parser = argparse.ArgumentParser(
        prog="matchopt configs",
        allow_abbrev=False,
        description="List the shipped configs (usable from any folder as `matchopt fit --config NAME`), "
        "or print one to copy and edit: `matchopt configs files > my.yaml`.",
    )
    parser.add_argument("name", nargs="?", help="the config to print, e.g. tfbind8 or methods/regression")
    args = parser.parse_args(argv)
    if args.name is None:
        width = max(map(len, names()))
        for name in names():
            print(f"{name:<{width}}  {_summary(SHIPPED / f'{name}.yaml')}")
        return 0
    path = shipped(args.name)
    if path is None:
        print(f"matchopt configs: error: {unknown_config_message(args.name)}", file=sys.stderr)
        return 2
    print(path.read_text(), end="")
    return 0
