"""The README's and docs' commands and links stay valid, without training anything.

- Every relative link in README.md and docs/*.md names a file (or folder) that exists, and a
  ``#fragment`` names a heading of the page it points to.
- Every ``matchopt ...`` command in a ```bash block (also behind ``python -m lightning_matchopt``,
  ``srun`` or ``torchrun``) names a subcommand that exists and parses: ``fit``, ``validate``,
  ``predict`` and ``search`` with the CLI's own parser (every ``--key``, every ``--config`` name
  and every value's type), ``data``, ``grid`` and ``configs`` with theirs; the arguments a
  ``matchopt grid`` passes on to its runs (after ``--``) parse as a ``fit``'s.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

import pytest

from conftest import REPO

PAGES = ["README.md", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
SHELL = {"bash", "sh", "shell"}
# Shell variables a page leaves to the reader's script: a value to parse (none since the grid
# submits SLURM jobs itself and the hand-written array recipe, with its $m and $s, went).
EXAMPLE_VALUES: dict[str, str] = {}


def page_text(page: str) -> str:
    return (REPO / page).read_text()


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    prose = FENCE.sub("", page.read_text())
    return {slug(m) for m in re.findall(r"^#{1,6} +(.+?) *#*$", prose, re.M)}


def relative_links(page: str) -> list[str]:
    prose = FENCE.sub("", page_text(page))
    prose = re.sub(r"`[^`\n]*`", "", prose)  # inline code is not a link
    found = re.findall(r"\]\(([^)\s]+)(?: \"[^\"]*\")?\)", prose)
    return [link for link in found if not re.match(r"[a-z][a-z0-9+.-]*:", link)]


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_exist(page):
    here = (REPO / page).parent
    broken = []
    for link in relative_links(page):
        path, _, fragment = link.partition("#")
        target = (here / path).resolve() if path else REPO / page
        if not target.exists():
            broken.append(f"{link} (no such file)")
        elif fragment and target.suffix == ".md" and fragment not in anchors(target):
            broken.append(f"{link} (no heading #{fragment} in {target.relative_to(REPO)})")
    assert not broken, f"{page}: broken links: {broken}"


# -- commands -------------------------------------------------------------------------------------


def shell_lines(block: str):
    """The logical lines of a shell block: continuations joined, here-document bodies skipped."""
    lines, heredoc, current = [], None, ""
    for raw in block.splitlines():
        if heredoc is not None:
            heredoc = None if raw.strip() == heredoc else heredoc
            continue
        current += raw
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if m := re.search(r"<<-?\s*['\"]?(\w+)['\"]?", current):
            heredoc = m.group(1)
        lines.append(current)
        current = ""
    return lines


def expand_braces(token: str) -> list[str]:
    """Bash's ``methods/{a,b}`` on an unquoted word (a token with spaces is a quoted value)."""
    m = re.fullmatch(r"([^{}\s]*)\{([^{}\s]*,[^{}\s]*)\}([^{}\s]*)", token)
    return [m.group(1) + part + m.group(3) for part in m.group(2).split(",")] if m else [token]


def substitute(line: str, values: dict[str, str]) -> str:
    """``"$T"`` stays one word whatever T holds (a placeholder, replaced after splitting); a bare
    ``$D`` splits into D's words, as bash does. Unknown variables are left as written."""
    quoted = re.sub(r'"\$\{?([A-Za-z_]\w*)\}?"',
                    lambda v: f"@@{v.group(1)}@@" if v.group(1) in values else v.group(0), line)
    return re.sub(r"\$\{?([A-Za-z_]\w*)\}?", lambda v: values.get(v.group(1), v.group(0)), quoted)


def commands(page: str):
    """(line, argv after ``matchopt``) of every matchopt command in the page's shell blocks."""
    for lang, block in FENCE.findall(page_text(page)):
        if lang not in SHELL:
            continue
        variables: dict[str, str] = {}
        for line in shell_lines(block):
            if m := re.match(r"\s*([A-Za-z_]\w*)=(['\"])(.*)\2\s*$", line):
                variables[m.group(1)] = m.group(3)
                continue
            expanded = re.sub(r"\$\([^()]*\)", "FILE", line)  # $(ls ...): a file the reader has
            values = {**EXAMPLE_VALUES, **variables}
            expanded = substitute(expanded, values)
            if "matchopt" not in expanded:
                continue
            tokens = shlex.split(expanded, comments=True)
            tokens = [values[t[2:-2]] if re.fullmatch(r"@@\w+@@", t) else t for t in tokens]
            for i, token in enumerate(tokens):
                module = token == "lightning_matchopt" and i and tokens[i - 1] == "-m"
                if token == "matchopt" or module:
                    rest = []
                    for t in tokens[i + 1:]:
                        if t in ("&&", "||", ";") or t.startswith((">", "|")):
                            break
                        rest += expand_braces(t.rstrip(";"))
                        if t.endswith(";"):
                            break
                    yield line.strip(), rest
                    break


COMMANDS = [(page, line, argv) for page in PAGES for line, argv in commands(page)]


@pytest.fixture(scope="module")
def trainer_parser():
    """The parser of ``matchopt fit|validate|predict|search``, built as the CLI does; no run."""
    from lightning_matchopt.commands import cli
    from lightning_matchopt.data import MatchOptDataModule
    from lightning_matchopt.models import MatchOptModule
    from lightning_matchopt.trainer import MatchOptTrainer

    class Built(Exception):
        pass

    class ParserOnly(cli.MatchOptCLI):
        def parse_arguments(self, parser, args):
            raise Built(parser)

    try:
        ParserOnly(MatchOptModule, MatchOptDataModule, trainer_class=MatchOptTrainer, args=[],
                   parser_kwargs={"exit_on_error": False})
    except Built as built:
        return built.args[0]
    raise AssertionError("MatchOptCLI parsed no arguments")


def own_parser(name: str, monkeypatch) -> argparse.ArgumentParser:
    """The argparse parser ``matchopt data|grid|configs`` builds, caught as its main() parses."""
    from lightning_matchopt.commands import OWN_SUBCOMMANDS

    module = __import__(OWN_SUBCOMMANDS[name][0], fromlist=["main"])
    caught = []

    def catch(self, args=None, namespace=None):
        caught.append(self)
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", catch)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", catch)
    try:
        module.main(["--help"])
    except SystemExit:
        pass
    monkeypatch.undo()
    assert caught, f"matchopt {name} built no parser"
    return caught[0]


def test_the_docs_show_commands():
    shown = {argv[0] for _, _, argv in COMMANDS if argv}
    assert {"fit", "validate", "predict", "search", "data", "grid"} <= shown, shown


@pytest.mark.parametrize(
    "page,line,argv", COMMANDS, ids=[f"{p}:{' '.join(a[:3])}" for p, _, a in COMMANDS]
)
def test_command_parses(page, line, argv, trainer_parser, monkeypatch):
    from lightning_matchopt.commands import OWN_SUBCOMMANDS, TRAINER_SUBCOMMANDS

    assert argv, f"{page}: `{line}`: no subcommand"
    unset = [a for a in argv if "$" in a]
    assert not unset, f"{page}: `{line}`: {unset} set nowhere in its block (or in EXAMPLE_VALUES)"
    subcommand = argv[0]
    if subcommand in ("-h", "--help"):
        return
    known = {*TRAINER_SUBCOMMANDS, *OWN_SUBCOMMANDS}
    assert subcommand in known, f"{page}: `{line}`: no subcommand {subcommand!r}"
    if subcommand in TRAINER_SUBCOMMANDS:
        parse_trainer(trainer_parser, argv, page, line)
        return
    parser = own_parser(subcommand, monkeypatch)
    own, _, passed_on = _split(argv[1:])
    try:
        args, unknown = parser.parse_known_args(own)
    except SystemExit as e:
        pytest.fail(f"{page}: `{line}`: matchopt {subcommand} refuses it (exit {e.code})")
    assert not unknown, f"{page}: `{line}`: unknown options {unknown}"
    if subcommand == "grid":
        for path in [*args.tasks, *args.methods]:
            assert Path(path).is_file(), f"{page}: `{line}`: no config {path}"
        for path in [*([args.published] if args.published else []), *args.earlier_runs]:
            assert (REPO / path).is_file(), f"{page}: `{line}`: no file {path}"
        if passed_on:
            config = ["--config", str(args.tasks[0]), "--config", str(args.methods[0])]
            parse_trainer(trainer_parser, ["fit", *config, *passed_on], page, line)


def _split(argv: list[str]) -> tuple[list[str], str, list[str]]:
    if "--" not in argv:
        return argv, "", []
    return argv[: argv.index("--")], "--", argv[argv.index("--") + 1:]


def parse_trainer(parser, argv: list[str], page: str, line: str) -> None:
    """Parse as ``matchopt fit ...`` does; an unknown key, config name or bad value fails."""
    try:
        parser.parse_args(argv)
    except BaseException as e:  # jsonargparse's ArgumentError, or an unknown --config
        pytest.fail(f"{page}: `{line}`: {' '.join(str(e).split())}")


def test_the_checks_catch_what_they_are_for(trainer_parser, monkeypatch, tmp_path):
    """A mistyped key, an unknown config name, a bad value and a grid's unknown option each fail."""
    for argv in (
        ["fit", "--config", "shekel", "--model.learning_rate", "0.1"],
        ["fit", "--config", "shekl"],
        ["search", "--config", "shekel", "--search.start", "best"],
    ):
        with pytest.raises(pytest.fail.Exception):
            parse_trainer(trainer_parser, argv, "page", " ".join(argv))
    grid = ["grid", "--tasks", "shekel", "--methods", "methods/matchopt", "--wrkers", "2"]
    with pytest.raises(AssertionError, match="unknown options"):
        test_command_parses("page", " ".join(grid), grid, trainer_parser, monkeypatch)
    with pytest.raises(AssertionError, match="no subcommand"):
        test_command_parses("page", "matchopt fitt", ["fitt"], trainer_parser, monkeypatch)
    page = "docs/_probe.md"
    probe = "[a](missing.md) [b](results.md#no-such-heading) `[c](x.md)`"
    monkeypatch.setattr(sys.modules[__name__], "page_text", lambda _: probe)
    with pytest.raises(AssertionError, match=r"missing\.md.*no-such-heading"):
        test_relative_links_exist(page)
