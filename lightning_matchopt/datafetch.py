"""Check and fetch the Design-Bench files a task needs, verified against a manifest.

Design-Bench's own download servers are gone, so the TF-Bind files must come from a copy the user
trusts: a mirror they host themselves (``http``, ``https`` or ``file`` URL) laid out like the data
root (``URL/tf_bind_8-SIX6_REF_R1/tf_bind_8-x-0.npy``). Because the mirror is not ours, every file
is checked against ``manifest.json`` (size and sha256 of the file as stored) before it is put under
its final name; the loaders in :mod:`lightning_matchopt.tasks` can then trust what they find.

Usage (``matchopt data`` is the same as ``python -m lightning_matchopt.datafetch``)::

    matchopt data list
    matchopt data check [--data-root DIR] [--fast] [-v] [TASK ...]
    matchopt data fetch --base-url URL [--data-root DIR] [--quiet] TASK ...

The data root defaults to ``$MATCHOPT_DATA_ROOT``. Exit codes: 0 success (``check``: every
requested task complete), 1 ``check`` found missing or bad files, 2 error (one line on stderr).

Only the standard library is needed (tqdm, when installed, draws the progress bar).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import importlib.resources
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lightning_matchopt.errors import DataError
from lightning_matchopt.tasks import ALIASES
from lightning_matchopt.tasks.base import DATA_ROOT_ENV

PROG = "matchopt data"
ERROR_PREFIX = "matchopt data: error:"

PRESENT = "present"
MISSING = "missing"
WRONG_SIZE = "wrong size"
WRONG_SHA256 = "wrong sha256"

# Design-Bench tasks whose original files this project has no checksums for: the loaders know their layout
# (``<folder>/<folder>-{x,y}-<i>.npy``) but there is nothing to check them against.
UNVERIFIED = {
    "superconductor": "superconductor",
    "hopper": "hopper_controller",
    "ant": "ant_morphology",
    "dkitty": "dkitty_morphology",
}

_CHUNK = 1 << 16
_SCHEMES = ("http", "https", "file")
_TRANSIENT_HTTP = {408, 425, 429, 500, 502, 503, 504}
_USER_AGENT = "lightning_matchopt-datafetch/1"


@dataclass(frozen=True)
class FileEntry:
    """One file of a task as the manifest lists it.

    Attributes:
        path: path relative to the data root, with ``/`` separators.
        size: size in bytes of the file as stored.
        sha256: hex sha256 of the file as stored (of the ``.npy.gz`` for TF-Bind-10 shards).
    """

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class FileStatus:
    """What ``check`` found for one file.

    Attributes:
        entry: the manifest entry.
        state: ``present``, ``missing``, ``wrong size`` or ``wrong sha256``.
        size: size found on disk, None if missing.
        sha256: hash found on disk, None if not computed (missing, wrong size or ``fast``).
    """

    entry: FileEntry
    state: str
    size: int | None = None
    sha256: str | None = None

    @property
    def ok(self) -> bool:
        """True when the file is present and matches (only its size, in fast mode)."""
        return self.state == PRESENT


@dataclass(frozen=True)
class FetchResult:
    """What ``fetch`` did for one file.

    Attributes:
        entry: the manifest entry.
        action: ``present`` (already good), ``downloaded`` or ``resumed`` (a ``.part`` continued).
        downloaded: bytes transferred in this run.
    """

    entry: FileEntry
    action: str
    downloaded: int


class _Transient(Exception):
    """A failure worth retrying (connection cut, timeout, 5xx); the ``.part`` file is kept."""


class _RangeRefused(_Transient):
    """HTTP 416: the server's file is not longer than our ``.part``, so the ``.part`` is bad."""


# --------------------------------------------------------------------------------------------------
# Manifest


def load_manifest() -> dict[str, list[FileEntry]]:
    """The manifest shipped in the package: task name -> its files, sorted by path.

    Validated on load so that a hand-edited manifest cannot point outside the data root.

    Raises:
        DataError: the manifest is missing or malformed (a broken install).
    """
    try:
        text = importlib.resources.files("lightning_matchopt").joinpath("manifest.json").read_text()
        raw = json.loads(text)
    except (OSError, ValueError) as e:
        raise DataError(
            f"cannot read lightning_matchopt/manifest.json ({e}); reinstall lightning_matchopt"
        ) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("tasks"), dict):
        raise DataError("lightning_matchopt/manifest.json has no 'tasks' object; reinstall")
    manifest: dict[str, list[FileEntry]] = {}
    for task, rows in raw["tasks"].items():
        if not isinstance(rows, list):
            raise DataError(f"manifest.json: task {task!r} must list its files; reinstall")
        entries = []
        for row in rows:
            try:
                entry = FileEntry(str(row["path"]), int(row["size"]), str(row["sha256"]).lower())
            except (KeyError, TypeError, ValueError):
                raise DataError(f"manifest.json: bad entry for task {task!r}: {row!r}") from None
            parts = PurePosixPath(entry.path).parts
            if (
                not parts
                or entry.path.startswith("/")
                or ".." in parts
                or len(entry.sha256) != 64
                or any(c not in "0123456789abcdef" for c in entry.sha256)
                or entry.size < 0
            ):
                raise DataError(f"manifest.json: bad entry for task {task!r}: {row!r}")
            entries.append(entry)
        manifest[task] = sorted(entries, key=lambda e: e.path)
    return manifest


def _task_entries(task: str, manifest: dict[str, list[FileEntry]] | None = None) -> list[FileEntry]:
    """The task's files; an unknown name is an error that lists the known ones."""
    manifest = load_manifest() if manifest is None else manifest
    task = ALIASES.get(task, task)
    if task in UNVERIFIED:
        raise DataError(
            f"{task}: this project knows no checksums of Design-Bench's original '{UNVERIFIED[task]}/' files, so "
            "they cannot be checked or fetched verified; copy the folder under the data root by hand (the "
            "loader checks shapes and values, and warns if the score range is not the original's)"
        )
    if task not in manifest:
        raise DataError(f"unknown task {task!r}; known tasks: {', '.join(sorted(manifest))}")
    return manifest[task]


# --------------------------------------------------------------------------------------------------
# Check


def _resolve_root(data_root: str | os.PathLike | None, create: bool) -> Path:
    """The data root from the argument or ``$MATCHOPT_DATA_ROOT``; created only if ``create``."""
    root = data_root if data_root is not None else os.environ.get(DATA_ROOT_ENV)
    if root is None or str(root) == "":
        raise DataError(f"no data root given: pass --data-root DIR or set {DATA_ROOT_ENV}")
    path = Path(root).expanduser()
    if create:
        if path.exists() and not path.is_dir():
            raise DataError(f"data root {str(path)!r} exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
    elif not path.is_dir():
        raise DataError(
            f"data root {str(path)!r} does not exist or is not a directory: check --data-root / "
            f"{DATA_ROOT_ENV} (fetch creates it)"
        )
    return path


def _local_path(root: Path, entry: FileEntry) -> Path:
    return root.joinpath(*PurePosixPath(entry.path).parts)


def _part_path(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_file(root: Path, entry: FileEntry, fast: bool) -> FileStatus:
    path = _local_path(root, entry)
    if not path.is_file():
        return FileStatus(entry, MISSING)
    size = path.stat().st_size
    if size != entry.size:
        return FileStatus(entry, WRONG_SIZE, size)
    if fast:
        return FileStatus(entry, PRESENT, size)
    try:
        digest = _sha256_file(path)
    except OSError as e:
        raise DataError(f"cannot read {str(path)!r}: {e.strerror or e}") from None
    return FileStatus(entry, PRESENT if digest == entry.sha256 else WRONG_SHA256, size, digest)


def check_task(
    task: str, data_root: str | os.PathLike | None = None, fast: bool = False
) -> list[FileStatus]:
    """Compare the task's files under the data root with the manifest.

    Args:
        task: a manifest task name (``tfbind8``, ``tfbind10``).
        data_root: folder holding Design-Bench's data folders; None: ``$MATCHOPT_DATA_ROOT``.
        fast: compare sizes only (no hashing): catches missing and truncated files in a blink.

    Returns:
        One :class:`FileStatus` per manifest file, in manifest order.

    Raises:
        DataError: unknown task, or the data root does not exist.
    """
    entries = _task_entries(task)
    root = _resolve_root(data_root, create=False)
    return [_check_file(root, entry, fast) for entry in entries]


# --------------------------------------------------------------------------------------------------
# Fetch


class _NullBar:
    """Stands in for tqdm when progress is off or tqdm is not installed."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


class _Meter:
    """Counts the bytes that arrive (for :class:`FetchResult`) and moves the progress bar."""

    def __init__(self, bar) -> None:
        self.bar = bar
        self.received = 0

    def update(self, n: int) -> None:
        if n > 0:
            self.received += n
        self.bar.update(n)


def _progress_bar(enabled: bool, total: int, initial: int, desc: str):
    if not enabled:
        return _NullBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NullBar()
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        leave=True,
        dynamic_ncols=True,
    )


def _check_base_url(base_url: str) -> str:
    """The base URL without trailing slash; only the user's own http(s)/file mirror is allowed."""
    scheme = urllib.parse.urlsplit(base_url).scheme.lower()
    if scheme not in _SCHEMES:
        raise DataError(
            f"base URL {base_url!r} must start with http://, https:// or file:// "
            f"(for a local folder: file:///absolute/path)"
        )
    return base_url.rstrip("/")


def _file_url(base_url: str, entry: FileEntry) -> str:
    return f"{base_url}/{urllib.parse.quote(entry.path)}"


def _open(opener: urllib.request.OpenerDirector, url: str, offset: int, timeout: float):
    """Open ``url`` asking for bytes from ``offset`` on; sorts failures into retry or give up."""
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416:
            raise _RangeRefused(f"HTTP 416 {e.reason} for bytes={offset}-") from None
        if e.code in _TRANSIENT_HTTP:
            raise _Transient(f"HTTP {e.code} {e.reason}") from None
        raise DataError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        if url.lower().startswith("file:"):
            raise DataError(f"cannot read {url}: {e.reason}") from None
        raise _Transient(f"cannot connect: {e.reason}") from None
    except (OSError, http.client.HTTPException) as e:
        raise _Transient(f"cannot connect: {e}") from None


def _download_once(
    opener: urllib.request.OpenerDirector,
    url: str,
    entry: FileEntry,
    part: Path,
    timeout: float,
    bar: _Meter,
) -> bool:
    """One request: continue ``part`` (or start it) until it holds ``entry.size`` bytes.

    Returns:
        Whether the ``.part`` holds bytes from before this request (a resume).

    Raises:
        _Transient: the connection failed or closed early; what arrived is kept in ``part``.
        DataError: the mirror's file cannot be the right one (wrong length) or is not there.
    """
    offset = part.stat().st_size if part.is_file() else 0
    if offset > entry.size:  # not a prefix of the right file
        part.unlink()
        bar.update(-offset)
        offset = 0
    if offset == entry.size:  # complete from an earlier run; the hash check decides
        return True
    try:
        response = _open(opener, url, offset, timeout)
    except _RangeRefused:
        part.unlink()
        bar.update(-offset)
        raise
    with response:
        status = getattr(response, "status", None)
        length = response.headers.get("Content-Length")
        resumed = False
        if offset and status == 206:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {offset}-"):
                part.unlink()
                bar.update(-offset)
                raise _Transient(f"server answered range {content_range!r}, asked from {offset}")
            resumed = True
        elif offset:
            # The server ignored the Range header (200, or a file URL): its body is the whole file.
            bar.update(-offset)
            offset = 0
        expected = entry.size - offset
        if length is not None and length.isdigit() and int(length) != expected:
            raise DataError(
                f"{entry.path}: the mirror sends {int(length) + offset} bytes, the manifest "
                f"expects {entry.size} ({url})"
            )
        received = 0
        with open(part, "ab" if resumed else "wb") as out:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as e:
                    raise _Transient(
                        f"connection lost after {offset + received} of {entry.size} bytes ({e})"
                    ) from None
                if not chunk:
                    break
                received += len(chunk)
                if received > expected:
                    out.close()
                    part.unlink()
                    raise DataError(
                        f"{entry.path}: the mirror sends more than the {entry.size} bytes the "
                        f"manifest expects ({url})"
                    )
                out.write(chunk)
                bar.update(len(chunk))
    if received < expected:
        raise _Transient(f"connection closed after {offset + received} of {entry.size} bytes")
    return resumed


def _fetch_file(
    opener: urllib.request.OpenerDirector,
    base_url: str,
    root: Path,
    entry: FileEntry,
    retries: int,
    timeout: float,
    retry_wait: float,
    bar: _Meter,
) -> FetchResult:
    """Download one file into ``<name>.part``, verify it, then move it to its final name.

    A failed connection is retried ``retries`` times, each retry continuing the ``.part``. If a
    file assembled from a resumed ``.part`` has the wrong hash, the old bytes may be the culprit,
    so it is downloaded once more from scratch before giving up.
    """
    url = _file_url(base_url, entry)
    target = _local_path(root, entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(target)
    received_before = bar.received
    any_resumed = False
    for fresh_start in (False, True):
        failures = 0
        while True:
            try:
                resumed = _download_once(opener, url, entry, part, timeout, bar)
            except _Transient as e:
                failures += 1
                if failures > retries:
                    hint = " (run fetch again to resume)" if part.is_file() else ""
                    raise DataError(
                        f"{entry.path}: download from {url} failed after {failures} tries: {e}"
                        + hint
                    ) from None
                time.sleep(retry_wait * failures)
                continue
            any_resumed = any_resumed or resumed
            break
        actual = _sha256_file(part)
        if actual == entry.sha256:
            os.replace(part, target)
            action = "resumed" if any_resumed else "downloaded"
            return FetchResult(entry, action, bar.received - received_before)
        size = part.stat().st_size
        part.unlink()
        bar.update(-size)
        if not any_resumed or fresh_start:
            break
        any_resumed = False
    raise DataError(
        f"{entry.path}: sha256 mismatch: expected {entry.sha256}, got {actual} (from {url}; the "
        f"download was deleted: the mirror's copy is not the Design-Bench file)"
    )


def fetch_task(
    task: str,
    data_root: str | os.PathLike | None,
    base_url: str,
    *,
    progress: bool = False,
    retries: int = 2,
    timeout: float = 60.0,
    retry_wait: float = 1.0,
) -> list[FetchResult]:
    """Download the task's missing or bad files from the user's mirror, verifying each one.

    Files already present with the right size and sha256 are left alone. Each download goes to
    ``<name>.part`` beside its target and is renamed only after its size and sha256 match, so a
    loader never sees a half-written or wrong file; an interrupted ``.part`` is continued with an
    HTTP ``Range`` request next time (or from scratch if the server ignores ranges).

    Args:
        task: a manifest task name (``tfbind8``, ``tfbind10``).
        data_root: folder holding Design-Bench's data folders, created if missing; None:
            ``$MATCHOPT_DATA_ROOT``.
        base_url: ``http(s)://`` or ``file://`` URL laid out like the data root: the file
            ``<data_root>/P`` is fetched from ``<base_url>/P``.
        progress: draw a progress bar on stderr (tqdm).
        retries: how many times a failed connection is retried per file.
        timeout: socket timeout in seconds.
        retry_wait: seconds before the first retry (doubling, tripling, ... after that).

    Returns:
        One :class:`FetchResult` per manifest file, in manifest order.

    Raises:
        DataError: unknown task, bad URL, a file the mirror lacks, a size or sha256 mismatch, or
            a connection that kept failing (the ``.part`` is kept for the next run).
    """
    entries = _task_entries(task)
    base = _check_base_url(base_url)
    root = _resolve_root(data_root, create=True)
    statuses = [_check_file(root, entry, fast=False) for entry in entries]
    todo = [s.entry for s in statuses if not s.ok]
    partial = 0
    for entry in todo:
        part = _part_path(_local_path(root, entry))
        if part.is_file():
            partial += min(part.stat().st_size, entry.size)
    bar = _Meter(_progress_bar(progress and bool(todo), sum(e.size for e in todo), partial, task))
    # A fresh opener per call: proxies from the environment, no state shared between calls.
    opener = urllib.request.build_opener()
    done: dict[str, FetchResult] = {}
    try:
        for entry in todo:
            bar.bar.set_postfix_str(PurePosixPath(entry.path).name, refresh=False)
            done[entry.path] = _fetch_file(
                opener, base, root, entry, retries, timeout, retry_wait, bar
            )
    finally:
        bar.bar.close()
    return [done.get(s.entry.path, FetchResult(s.entry, PRESENT, 0)) for s in statuses]


# --------------------------------------------------------------------------------------------------
# Command line


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _requested(tasks: list[str], manifest: dict[str, list[FileEntry]]) -> list[str]:
    """Requested task names, deduplicated, all validated before any work starts."""
    names = list(dict.fromkeys(ALIASES.get(t, t) for t in tasks)) if tasks else sorted(manifest)
    for name in names:
        _task_entries(name, manifest)
    return names


def _cmd_list(args: argparse.Namespace) -> int:
    manifest = load_manifest()
    print(f"{'task':<14} {'files':>5} {'bytes':>12} {'size':>10}")
    for task in sorted(manifest):
        total = sum(e.size for e in manifest[task])
        print(f"{task:<14} {len(manifest[task]):>5} {total:>12} {_human(total):>10}")
    for task, folder in UNVERIFIED.items():
        print(f"{task:<14} {'?':>5} {'?':>12} {'?':>10}  {folder}/ (no published checksums: copy it by hand)")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    manifest = load_manifest()
    tasks = _requested(args.tasks, manifest)
    root = _resolve_root(args.data_root, create=False)
    results = {task: check_task(task, root, fast=args.fast) for task in tasks}
    states = (PRESENT, MISSING, WRONG_SIZE, WRONG_SHA256)
    print(f"{'task':<10} {'files':>5} " + " ".join(f"{s:>12}" for s in states) + "  status")
    for task, statuses in results.items():
        counts = [sum(s.state == state for s in statuses) for state in states]
        complete = all(s.ok for s in statuses)
        print(
            f"{task:<10} {len(statuses):>5} "
            + " ".join(f"{c:>12}" for c in counts)
            + f"  {'complete' if complete else 'INCOMPLETE'}"
        )
    limit = None if args.verbose else 10
    for task, statuses in results.items():
        shown = statuses if args.verbose else [s for s in statuses if not s.ok]
        for status in shown[:limit]:
            found = "" if status.size is None or status.ok else f" (found {status.size} bytes)"
            print(f"  {status.state:<12} {status.entry.path}{found}")
        if limit is not None and len(shown) > limit:
            print(f"  ... and {len(shown) - limit} more in {task} (-v lists every file)")
    bad_tasks = [t for t, statuses in results.items() if not all(s.ok for s in statuses)]
    how = "sizes only" if args.fast else "size and sha256"
    if not bad_tasks:
        print(f"all {len(tasks)} task(s) complete in {root} ({how})")
        return 0
    bad_files = sum(not s.ok for t in bad_tasks for s in results[t])
    print(
        f"{len(bad_tasks)} of {len(tasks)} task(s) incomplete in {root} ({bad_files} file(s) "
        f"missing or bad, {how}); get them with: {PROG} fetch --base-url URL "
        f"--data-root {root} {' '.join(bad_tasks)}"
    )
    return 1


def _cmd_fetch(args: argparse.Namespace) -> int:
    manifest = load_manifest()
    tasks = _requested(args.tasks, manifest)
    _check_base_url(args.base_url)
    root = _resolve_root(args.data_root, create=True)
    for task in tasks:
        results = fetch_task(
            task,
            root,
            args.base_url,
            progress=not args.quiet,
            retries=max(0, args.retries),
            timeout=args.timeout,
        )
        if not args.quiet:
            got = [r for r in results if r.action != PRESENT]
            size = _human(sum(r.downloaded for r in got))
            print(
                f"{task}: {len(results)} file(s) ok in {root} ({len(got)} fetched, {size}; "
                f"{len(results) - len(got)} already there)"
            )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Check or fetch the Design-Bench data files of the TF-Bind tasks, verified "
        "against the package's manifest (size and sha256 of every file).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{list,check,fetch}")

    sub.add_parser("list", help="tasks, their number of files and total size")

    root_help = f"folder holding Design-Bench's data folders (default: ${DATA_ROOT_ENV})"
    check = sub.add_parser("check", help="report missing or bad files (exit 1 if any)")
    check.add_argument("tasks", nargs="*", metavar="TASK", help="tasks to check (default: all)")
    check.add_argument("--data-root", metavar="DIR", help=root_help)
    check.add_argument("--fast", action="store_true", help="compare sizes only, no hashing")
    check.add_argument("-v", "--verbose", action="store_true", help="list every file")

    fetch = sub.add_parser("fetch", help="download missing or bad files from your mirror")
    fetch.add_argument("tasks", nargs="+", metavar="TASK", help="tasks to fetch")
    fetch.add_argument(
        "--base-url",
        required=True,
        metavar="URL",
        help="http(s):// or file:// URL laid out like the data root",
    )
    fetch.add_argument("--data-root", metavar="DIR", help=root_help + "; created if missing")
    fetch.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    fetch.add_argument("--retries", type=int, default=2, help="retries per file (default: 2)")
    fetch.add_argument(
        "--timeout", type=float, default=60.0, help="socket timeout in seconds (default: 60)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``matchopt data`` / ``python -m lightning_matchopt.datafetch``; returns the exit code.

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
        print(f"{ERROR_PREFIX} interrupted (fetch resumes where it stopped)", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
