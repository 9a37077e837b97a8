"""``matchopt data list | check | fetch``: the command line of :mod:`lightning_matchopt.fetching`."""

from __future__ import annotations

import argparse
import sys

from lightning_matchopt.errors import DataError
from lightning_matchopt.fetching.fetch import fetch_task
from lightning_matchopt.fetching.manifest import (
    HF_REPO,
    HF_REVISION,
    HF_REVISION_ENV,
    FileEntry,
    load_manifest,
    task_entries,
)
from lightning_matchopt.fetching.originals import HOPPER_REPO, HOPPER_REVISION, HOPPER_REVISION_ENV, REFERENCE_ENV
from lightning_matchopt.fetching.sources import HopperSource, HubSource, UrlSource
from lightning_matchopt.fetching.verify import (
    BAD,
    MISSING,
    PRESENT,
    WRONG_SHA256,
    WRONG_SIZE,
    check_task,
    resolve_root,
)
from lightning_matchopt.tasks import ALIASES
from lightning_matchopt.tasks.base import DATA_ROOT_ENV

PROG = "matchopt data"
ERROR_PREFIX = "matchopt data: error:"



def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _requested(tasks: list[str], manifest: dict[str, list[FileEntry]]) -> list[str]:
    """Requested task names, deduplicated, all validated before any work starts."""
    names = list(dict.fromkeys(ALIASES.get(t, t) for t in tasks)) if tasks else list(manifest)
    for name in names:
        task_entries(name, manifest)
    return names


def _checked_by(entries: list[FileEntry]) -> str:
    if all(e.sha256 for e in entries):
        return "sha256 + structure" if any(e.has_structure for e in entries) else "sha256"
    return "structure, then sha256 locked on first fetch"


def _cmd_list(args: argparse.Namespace) -> int:
    manifest = load_manifest()
    print(f"{'task':<14} {'files':>5} {'bytes':>12} {'size':>10}  verified by")
    for task, entries in manifest.items():
        sizes = [e.size for e in entries]
        total = None if None in sizes else sum(sizes)
        shown = ("?", "?") if total is None else (total, _human(total))
        print(f"{task:<14} {len(entries):>5} {shown[0]:>12} {shown[1]:>10}  {_checked_by(entries)}")
    return 0


def _cmd_oracle(args: argparse.Namespace) -> int:
    """``check --oracle TASK``: how well this project's oracle reproduces the stored scores."""
    from lightning_matchopt.tasks import make_task
    from lightning_matchopt.tasks.fidelity import measure, report

    if args.tasks:
        raise DataError("--oracle TASK checks one task's oracle: give no other TASK (check the files first without --oracle)")
    root = resolve_root(args.data_root, create=False)
    task_entries(args.oracle)  # an unknown name: the known ones, in one line
    task = make_task(args.oracle, str(root))
    seed = 0 if args.seed is None else args.seed
    print(report(measure(task, args.n, seed), seed))
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    if args.oracle is not None:
        return _cmd_oracle(args)
    if args.n is not None or args.seed is not None:
        raise DataError("--n and --seed size the sample of --oracle TASK: use them with --oracle")
    manifest = load_manifest()
    tasks = _requested(args.tasks, manifest)
    root = resolve_root(args.data_root, create=False)
    results = {task: check_task(task, root, fast=args.fast) for task in tasks}
    states = (PRESENT, MISSING, WRONG_SIZE, WRONG_SHA256, BAD)
    print(f"{'task':<14} {'files':>5} " + " ".join(f"{s:>12}" for s in states) + "  status")
    for task, statuses in results.items():
        counts = [sum(s.state == state for s in statuses) for state in states]
        complete = all(s.ok for s in statuses)
        print(
            f"{task:<14} {len(statuses):>5} "
            + " ".join(f"{c:>12}" for c in counts)
            + f"  {'complete' if complete else 'INCOMPLETE'}"
        )
    limit = None if args.verbose else 10
    for task, statuses in results.items():
        shown = statuses if args.verbose else [s for s in statuses if not s.ok]
        for status in shown[:limit]:
            found = "" if status.size is None or status.ok else f" (found {status.size} bytes)"
            detail = f": {status.detail}" if status.detail else ""
            print(f"  {status.state:<12} {status.entry.path}{found}{detail}")
        if limit is not None and len(shown) > limit:
            print(f"  ... and {len(shown) - limit} more in {task} (-v lists every file)")
    bad_tasks = [t for t, statuses in results.items() if not all(s.ok for s in statuses)]
    how = "sizes only" if args.fast else "sha256 or structure"
    if not bad_tasks:
        print(f"all {len(tasks)} task(s) complete in {root} ({how})")
        return 0
    bad_files = sum(not s.ok for t in bad_tasks for s in results[t])
    print(
        f"{len(bad_tasks)} of {len(tasks)} task(s) incomplete in {root} "
        f"({bad_files} file(s) missing or bad, "
        f"{how}); get them with: {PROG} fetch --data-root {root} {' '.join(bad_tasks)}"
    )
    return 1


def _cmd_fetch(args: argparse.Namespace) -> int:
    manifest = load_manifest()
    tasks = _requested(args.tasks, manifest)
    if args.base_url is not None:
        if args.repo is not None or args.revision is not None:
            raise DataError(
                "--repo and --revision name a hub dataset: "
                "use them with --source hf, not --base-url"
            )
        if args.hopper_revision is not None:
            raise DataError("--hopper-revision names a commit of Hopper's hub dataset: use it with --source hf, not --base-url")
        source = UrlSource(args.base_url)
    else:
        source = HubSource(args.repo or HF_REPO, args.revision)
    root = resolve_root(args.data_root, create=True)
    for task in tasks:
        sources = None
        if task == "hopper" and isinstance(source, HubSource):
            sources = [source, HopperSource(args.hopper_revision, endpoint=source.endpoint)]
        results = fetch_task(task, root, source, progress=not args.quiet, sources=sources, reference=args.reference)
        if not args.quiet:
            got = [r for r in results if r.action != PRESENT]
            print(
                f"{task}: {len(results)} file(s) ok in {root} ({len(got)} fetched from {source}, "
                f"{_human(sum(r.size for r in got))}; {len(results) - len(got)} already there)"
            )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        allow_abbrev=False,
        description="Check or fetch the Design-Bench data files of the tasks, verified against "
        "the package's "
        "manifest (sha256 where published, else dtype, shape and the published normalizers).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{list,check,fetch}")

    sub.add_parser(
        "list", help="tasks, their number of files, total size and how they are verified",
        allow_abbrev=False,
    )

    root_help = f"folder holding Design-Bench's data folders (default: ${DATA_ROOT_ENV})"
    check = sub.add_parser(
        "check", help="report missing or bad files (exit 1 if any)", allow_abbrev=False
    )
    check.add_argument("tasks", nargs="*", metavar="TASK", help="tasks to check (default: all)")
    check.add_argument("--data-root", metavar="DIR", help=root_help)
    check.add_argument("--fast", action="store_true", help="compare sizes only, no hashing")
    check.add_argument("-v", "--verbose", action="store_true", help="list every file")
    check.add_argument(
        "--oracle",
        metavar="TASK",
        help="instead: score a sample of TASK's offline designs with this project's oracle and print how well it "
        "reproduces the stored scores (Spearman, mean absolute error, worst rows); superconductor, hopper, ant, dkitty",
    )
    check.add_argument("--n", type=int, metavar="N", help="with --oracle: designs to sample (default: 2000 for "
                       "superconductor, 32 for the simulated tasks)")
    check.add_argument("--seed", type=int, metavar="S", help="with --oracle: seed of the sample (default: 0)")

    fetch = sub.add_parser(
        "fetch", help="download missing or bad files (default: from the Hugging Face hub)",
        allow_abbrev=False,
    )
    fetch.add_argument("tasks", nargs="+", metavar="TASK", help="tasks to fetch")
    where = fetch.add_mutually_exclusive_group()
    where.add_argument(
        "--source",
        choices=["hf"],
        help=f"hf: the hub dataset {HF_REPO} (the default; HF_ENDPOINT and HF_TOKEN are honoured)",
    )
    where.add_argument(
        "--base-url",
        metavar="URL",
        help="instead: an http(s):// or file:// mirror laid out like the data root",
    )
    fetch.add_argument("--repo", metavar="ID", help=f"hub dataset to read (default: {HF_REPO})")
    fetch.add_argument(
        "--revision",
        metavar="REV",
        help=f"its branch, tag or commit (default: ${HF_REVISION_ENV}, else {HF_REVISION}: no commit of it is published)",
    )
    fetch.add_argument(
        "--hopper-revision",
        metavar="REV",
        help=f"commit of {HOPPER_REPO}, where Hopper's policies are looked for when the first dataset lacks them "
        f"(default: ${HOPPER_REVISION_ENV}, else {HOPPER_REVISION[:12]}, the one sci-modeling-bench 0.10.0 pins)",
    )
    fetch.add_argument(
        "--reference",
        metavar="PATH",
        help="UCI's unique_m.csv, or a folder with the rebuilt superconductor shards, to compare Design-Bench's "
        f"original shards with (default: ${REFERENCE_ENV}, else DATA/sources/uci_superconductivity/unique_m.csv if there)",
    )
    fetch.add_argument("--data-root", metavar="DIR", help=root_help + "; created if missing")
    fetch.add_argument("--quiet", "-q", action="store_true", help="no progress bars or summary")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``matchopt data`` (``python -m lightning_matchopt.commands.data``); the exit code.

    User errors (unknown task, missing data root, bad download) print one line on stderr and
    return 2; argparse's own usage errors also exit with 2.
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # --help or a usage error: argparse already printed why
        return e.code if isinstance(e.code, int) else 2
    commands = {"list": _cmd_list, "check": _cmd_check, "fetch": _cmd_fetch}
    try:
        return commands[args.command](args)
    except DataError as e:
        print(f"{ERROR_PREFIX} {e}", file=sys.stderr)
    except OSError as e:  # disk full, permission denied: name the file, no traceback
        where = f": {str(e.filename)!r}" if e.filename else ""
        print(f"{ERROR_PREFIX} {e.strerror or e}{where}", file=sys.stderr)
    except KeyboardInterrupt:
        print(
            f"{ERROR_PREFIX} interrupted (run fetch again: verified files are kept)",
            file=sys.stderr,
        )
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
