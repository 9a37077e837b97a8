"""Check and fetch the Design-Bench files a task needs, verified against a manifest.

Design-Bench's own servers are gone; its complete ``design_bench_data`` folder is on the Hugging
Face hub as the dataset ``beckhamc/design_bench_data``, in Design-Bench's layout. ``fetch`` reads it
from there by default (``huggingface_hub``: resume, retries, ``HF_ENDPOINT``, tokens), or from a
plain ``http(s)://`` or ``file://`` mirror laid out the same way (``pooch``). The mirror is not
ours, so nothing is trusted: a download lands in a staging folder under the data root and is
renamed to its final name only after it matches ``manifest.json``:

- files with a published sha256 (TF-Bind-8, TF-Bind-10, Superconductor, Hopper) must match it;
- the others (Ant, D'Kitty and their policies) must be what Design-Bench wrote: dtype, shape, y
  ranging exactly over the published normalizers, a policy readable as arrays only. Their sha256
  is then written to ``matchopt-data.lock.json`` in the data root, so that ``check`` and later
  fetches detect any change.

Usage (``matchopt data`` is the same as ``python -m lightning_matchopt.fetching.fetch``)::

    matchopt data list
    matchopt data check [--data-root DIR] [--fast] [-v] [TASK ...]
    matchopt data fetch [--source hf [--repo ID] [--revision REV] | --base-url URL]
                        [--data-root DIR] [-q] TASK ...

The data root defaults to ``$MATCHOPT_DATA_ROOT``. Exit codes: 0 success (``check``: every
requested task complete), 1 ``check`` found missing or bad files, 2 error (one line on stderr).
``list`` and ``check`` need only numpy; ``fetch`` needs the ``fetch`` extra.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib
import importlib.resources
import json
import os
import shutil
import sys
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from lightning_matchopt.atomic import write_atomic
from lightning_matchopt.errors import DataError, MatchOptError
from lightning_matchopt.tasks import ALIASES
from lightning_matchopt.tasks.base import DATA_ROOT_ENV, load_array

PROG = "matchopt data"
ERROR_PREFIX = "matchopt data: error:"
HF_REPO = "beckhamc/design_bench_data"
HF_REVISION = "main"
LOCK_NAME = "matchopt-data.lock.json"

PRESENT = "present"
MISSING = "missing"
WRONG_SIZE = "wrong size"
WRONG_SHA256 = "wrong sha256"
BAD = "bad content"
DOWNLOADED = "downloaded"


@dataclass(frozen=True)
class FileEntry:
    """One file of a task as the manifest lists it.

    Attributes:
        path: path relative to the data root, with ``/`` separators.
        size: size in bytes (of the ``.npy``, also when stored as ``.npy.gz``); None if unknown.
        sha256: hex sha256 (of the ``.npy``); None where none is published.
        dtype, shape: what the ``.npy`` must hold (Design-Bench's own writing), or None.
        value_range: the exact min and max the array must have (the published normalizers).
        policy: ``ant`` (read as the Ant oracle reads it) or ``arrays`` (a dict of arrays), or None.
    """

    path: str
    size: int | None = None
    sha256: str | None = None
    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    value_range: tuple[float, float] | None = None
    policy: str | None = None

    @property
    def has_structure(self) -> bool:
        """Whether there is more to check than bytes (dtype, shape, range or policy)."""
        return self.dtype is not None or self.policy is not None


@dataclass(frozen=True)
class FileStatus:
    """What ``check`` found for one file.

    Attributes:
        entry: the manifest entry.
        state: ``present``, ``missing``, ``wrong size``, ``wrong sha256`` or ``bad content``.
        path: the file found (``NAME`` or ``NAME.gz``), None if missing.
        size: its size as a ``.npy``, None if missing.
        sha256: its hash as a ``.npy``, None if not computed (missing, wrong size, ``fast``, or
            checked by structure).
        detail: why it is bad, for ``bad content`` and a changed locked file.
    """

    entry: FileEntry
    state: str
    path: Path | None = None
    size: int | None = None
    sha256: str | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        """True when the file is present and matches (only its size, in fast mode)."""
        return self.state == PRESENT


@dataclass(frozen=True)
class FetchResult:
    """What ``fetch`` did for one file: ``present``, or ``downloaded`` (``size`` bytes)."""

    entry: FileEntry
    action: str
    size: int


# --------------------------------------------------------------------------------------------------
# Manifest


def _entry(task: str, row: dict) -> FileEntry:
    """One manifest row, validated: a hand-edited manifest cannot point outside the data root."""
    bad = DataError(
        f"manifest.json: bad entry for task {task!r}: {row!r}; reinstall lightning_matchopt"
    )
    try:
        entry = FileEntry(
            path=str(row["path"]),
            size=None if row.get("size") is None else int(row["size"]),
            sha256=None if row.get("sha256") is None else str(row["sha256"]).lower(),
            dtype=row.get("dtype"),
            shape=None if row.get("shape") is None else tuple(int(n) for n in row["shape"]),
            value_range=None
            if row.get("range") is None
            else (float(row["range"][0]), float(row["range"][1])),
            policy=row.get("policy"),
        )
    except (KeyError, TypeError, ValueError, IndexError):
        raise bad from None
    parts = PurePosixPath(entry.path).parts
    if (
        not parts
        or entry.path.startswith("/")
        or ".." in parts
        or (
            entry.sha256 is not None
            and (len(entry.sha256) != 64 or any(c not in "0123456789abcdef" for c in entry.sha256))
        )
        or (entry.size is not None and entry.size < 0)
        or (entry.dtype is None) != (entry.shape is None)
        or entry.policy not in (None, "ant", "arrays")
        or (entry.sha256 is None and not entry.has_structure)  # nothing to verify it against
    ):
        raise bad
    return entry


def load_manifest() -> dict[str, list[FileEntry]]:
    """The manifest shipped in the package: task name -> its files, sorted by path.

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
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise DataError(f"manifest.json: task {task!r} must list its files; reinstall")
        manifest[task] = sorted((_entry(task, row) for row in rows), key=lambda e: e.path)
    return manifest


def _task_entries(task: str, manifest: dict[str, list[FileEntry]] | None = None) -> list[FileEntry]:
    """The task's files; an unknown name is an error that lists the known ones."""
    manifest = load_manifest() if manifest is None else manifest
    task = ALIASES.get(task, task)
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


def _found(root: Path, entry: FileEntry) -> Path | None:
    """The file as stored: ``NAME``, or ``NAME.gz`` (a gzipped ``.npy``, as in ../shared)."""
    path = _local_path(root, entry)
    gz = path.with_name(path.name + ".gz")
    return path if path.is_file() else gz if entry.path.endswith(".npy") and gz.is_file() else None


def _size(path: Path) -> int:
    """Size of the file as a ``.npy``: a ``.gz`` stores it (mod 2**32) in its last four bytes."""
    if path.suffix != ".gz":
        return path.stat().st_size
    with open(path, "rb") as f:
        f.seek(-4, os.SEEK_END)
        return int.from_bytes(f.read(4), "little")


def _sha256(path: Path) -> str:
    """Hex sha256 of the file's content (of the ``.npy`` for a ``.npy.gz``)."""
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"cannot read {str(path)!r}: {getattr(e, 'strerror', None) or e}") from None
    return digest.hexdigest()


def _structure_problem(entry: FileEntry, path: Path) -> str | None:
    """Why the file is not what Design-Bench wrote (dtype, shape, values, policy), or None."""
    if entry.policy is not None:
        from lightning_matchopt.tasks.oracles.morphology import load_policy, read_policy_arrays

        try:
            load_policy(path) if entry.policy == "ant" else read_policy_arrays(
                path, entry.path.split("_")[0]
            )
        except MatchOptError as e:
            return str(e).split(": ", 1)[-1]
        return None
    try:
        array = (
            load_array(path)
            if path.suffix == ".gz"
            else np.load(path, mmap_mode="r", allow_pickle=False)
        )
    except (DataError, ValueError, OSError, EOFError) as e:
        return f"not a readable .npy file ({e})"
    if str(array.dtype) != entry.dtype or array.shape != entry.shape:
        return (
            f"holds {array.dtype} of shape {array.shape}, "
            f"Design-Bench's is {entry.dtype} of shape {entry.shape}"
        )
    if not np.isfinite(array).all():
        return "holds NaN or infinite values"
    if entry.value_range is not None:
        low, high = float(array.min()), float(array.max())
        if not np.allclose([low, high], entry.value_range, rtol=1e-6, atol=0):
            return (
                f"ranges over [{low:.8g}, {high:.8g}], not over the published normalizers "
                f"[{entry.value_range[0]}, {entry.value_range[1]}]"
            )
    return None


def _read_lock(root: Path) -> dict[str, dict]:
    """sha256 and size of the files without published checksums, as verified on first fetch."""
    path = root / LOCK_NAME
    if not path.is_file():
        return {}
    try:
        files = json.loads(path.read_text())["files"]
        return {
            str(k): {"size": int(v["size"]), "sha256": str(v["sha256"])} for k, v in files.items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise DataError(
            f"{str(path)!r} is unreadable: delete it and run fetch again to verify the files anew"
        ) from None


def _write_lock(root: Path, lock: dict[str, dict]) -> None:
    text = json.dumps({"format": 1, "files": dict(sorted(lock.items()))}, indent=1) + "\n"
    write_atomic(root / LOCK_NAME, lambda f: f.write(text.encode()))


def _pinned(entry: FileEntry, lock: dict[str, dict]) -> dict | None:
    """The size and sha256 the file must have: the manifest's, else the lock's, else None."""
    if entry.sha256 is not None:
        return {"size": entry.size, "sha256": entry.sha256}
    return lock.get(entry.path)


def _check_file(root: Path, entry: FileEntry, fast: bool, lock: dict[str, dict]) -> FileStatus:
    path = _found(root, entry)
    if path is None:
        return FileStatus(entry, MISSING)
    size, pinned = _size(path), _pinned(entry, lock)
    if pinned is not None and pinned["size"] is not None and size != pinned["size"]:
        return FileStatus(entry, WRONG_SIZE, path, size)
    if fast:
        return FileStatus(entry, PRESENT, path, size)
    if pinned is None:  # no checksum yet: it must be what Design-Bench wrote
        problem = _structure_problem(entry, path)
        return FileStatus(entry, BAD if problem else PRESENT, path, size, detail=problem)
    digest = _sha256(path)
    if digest == pinned["sha256"]:
        return FileStatus(entry, PRESENT, path, size, digest)
    detail = None if entry.sha256 else f"changed since its first fetch (sha256 in {LOCK_NAME})"
    return FileStatus(entry, WRONG_SHA256, path, size, digest, detail)


def check_task(
    task: str, data_root: str | os.PathLike | None = None, fast: bool = False
) -> list[FileStatus]:
    """Compare the task's files under the data root with the manifest (and the lock file).

    Args:
        task: a manifest task name or alias (``tfbind8``, ``ant``, ``HopperController-Exact-v0``).
        data_root: folder holding Design-Bench's data folders; None: ``$MATCHOPT_DATA_ROOT``.
        fast: compare sizes only (no hashing, no loading): catches missing and truncated files.

    Returns:
        One :class:`FileStatus` per manifest file, in manifest order.

    Raises:
        DataError: unknown task, or the data root does not exist.
    """
    entries = _task_entries(task)
    root = _resolve_root(data_root, create=False)
    lock = _read_lock(root)
    return [_check_file(root, entry, fast, lock) for entry in entries]


# --------------------------------------------------------------------------------------------------
# Fetch


def _library(name: str):
    """Import a download library of the ``fetch`` extra, or say in one line how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise DataError(f"fetch needs {name}: pip install 'lightning_matchopt[fetch]'") from None


class HubSource:
    """A hub dataset in Design-Bench's layout; ``HF_ENDPOINT`` (or ``endpoint``) picks the hub."""

    def __init__(
        self, repo: str = HF_REPO, revision: str = HF_REVISION, endpoint: str | None = None
    ) -> None:
        self.hub = _library("huggingface_hub")
        self.repo, self.revision, self.endpoint = repo, revision, endpoint

    def __str__(self) -> str:
        return f"hf://datasets/{self.repo}@{self.revision}" + (
            f" on {self.endpoint}" if self.endpoint else ""
        )

    def download(self, path: str, staging: Path, progress: bool) -> Path:
        """Download ``path`` into ``staging`` (``local_dir``: written once, on the data disk)."""
        bars = importlib.import_module("huggingface_hub.utils")
        quiet = not progress and not bars.are_progress_bars_disabled()
        if quiet:
            bars.disable_progress_bars()
        try:
            return Path(
                self.hub.hf_hub_download(
                    self.repo,
                    path,
                    repo_type="dataset",
                    revision=self.revision,
                    endpoint=self.endpoint,
                    local_dir=staging,
                )
            )
        finally:
            if quiet:
                bars.enable_progress_bars()


class UrlSource:
    """A plain ``http(s)://`` or ``file://`` mirror laid out like the data root."""

    def __init__(self, base_url: str, retries: int = 2, timeout: float = 60.0) -> None:
        self.scheme = urllib.parse.urlsplit(base_url).scheme.lower()
        if self.scheme not in ("http", "https", "file"):
            raise DataError(
                f"base URL {base_url!r} must start with http://, https:// or file:// "
                "(for a local folder: file:///absolute/path)"
            )
        self.base_url, self.retries, self.timeout = base_url.rstrip("/"), retries, timeout
        self.pooch = None if self.scheme == "file" else _library("pooch")

    def __str__(self) -> str:
        return self.base_url

    def download(self, path: str, staging: Path, progress: bool) -> Path:
        """Download ``path`` into ``staging`` with pooch (retries, temporary file), or copy it for ``file://``."""
        url = f"{self.base_url}/{urllib.parse.quote(path)}"
        if self.scheme == "file":
            source = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
            gz = source.with_name(source.name + ".gz")
            if not source.is_file() and path.endswith(".npy") and gz.is_file():
                source, path = gz, path + ".gz"  # a folder stored like the shared one
            if not source.is_file():
                raise DataError(f"{path}: {url} does not exist")
            target = staging.joinpath(*PurePosixPath(path).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            return target
        self.pooch.get_logger().setLevel(
            "WARNING"
        )  # no "Downloading ..." and "SHA256 hash ..." lines per file
        mirror = self.pooch.create(
            path=staging,
            base_url=self.base_url + "/",
            registry={path: None},
            retry_if_failed=self.retries,
        )
        downloader = self.pooch.HTTPDownloader(progressbar=progress, timeout=self.timeout)
        return Path(mirror.fetch(path, downloader=downloader))


def _failure(path: str, source, error: Exception) -> DataError:
    """One line for whatever the download library raised, with the fix: a wrong name or a retry."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()][:2]
    said = f"{type(error).__name__}: {' '.join(lines) or 'no message'}"
    missing = "404" in said or "Not Found" in said
    fix = "check the task name, --repo, --revision or --base-url" if missing else "run fetch again"
    return DataError(f"{path}: download from {source} failed: {said} ({fix})")


def _fetch_file(
    source, entry: FileEntry, staging: Path, pinned: dict | None, progress: bool
) -> tuple[Path, str]:
    """Download one file into ``staging`` and verify it; returns the staged path and its sha256."""
    try:
        staged = source.download(entry.path, staging, progress)
    except DataError:
        raise
    except Exception as e:  # the libraries raise many types (HTTP, connection, size)
        raise _failure(entry.path, source, e) from None
    rejected = f"(from {source}; the download was deleted, nothing was put under {entry.path})"
    if entry.has_structure and (problem := _structure_problem(entry, staged)):
        raise DataError(f"{entry.path} is not Design-Bench's file: {problem} {rejected}")
    digest = _sha256(staged)
    if pinned is not None and digest != pinned["sha256"]:
        why = "" if entry.sha256 else f", the sha256 locked on its first fetch in {LOCK_NAME}"
        raise DataError(
            f"{entry.path}: sha256 mismatch: expected {pinned['sha256']}{why}, "
            f"got {digest} {rejected}"
        )
    return staged, digest


def fetch_task(
    task: str, data_root: str | os.PathLike | None, source=None, *, progress: bool = False
) -> list[FetchResult]:
    """Download the task's missing or bad files, verify each one, then put it under its final name.

    Files already present and good are left alone. Downloads go to a staging folder inside the
    data root (same disk: the rename is atomic, nothing is copied) that is removed afterwards, so
    a loader never sees a half-written or unverified file. Files without a published sha256 get
    theirs written to the lock file once verified by structure.

    Args:
        task: a manifest task name or alias.
        data_root: folder holding Design-Bench's data folders, created if missing; None:
            ``$MATCHOPT_DATA_ROOT``.
        source: a :class:`HubSource` (default: ``beckhamc/design_bench_data`` on the hub) or a
            :class:`UrlSource`.
        progress: let the download library draw its progress bars on stderr.

    Returns:
        One :class:`FetchResult` per manifest file, in manifest order.

    Raises:
        DataError: unknown task, a file the source lacks, a failed download, or a file that does
            not match the manifest or the lock (it is deleted).
    """
    entries = _task_entries(task)
    source = HubSource() if source is None else source
    root = _resolve_root(data_root, create=True)
    lock = _read_lock(root)
    results = []
    with tempfile.TemporaryDirectory(dir=root, prefix=".matchopt-fetch-") as folder:
        staging = Path(folder).resolve()
        for entry in entries:
            status = _check_file(root, entry, fast=False, lock=lock)
            if status.ok:
                results.append(FetchResult(entry, PRESENT, 0))
                if _pinned(entry, lock) is None:  # verified by structure just now: lock it
                    lock[entry.path] = {"size": status.size, "sha256": _sha256(status.path)}
                    _write_lock(root, lock)
                continue
            staged, digest = _fetch_file(source, entry, staging, _pinned(entry, lock), progress)
            target = root / staged.relative_to(staging)  # NAME, or NAME.npy.gz from a file:// copy
            target.parent.mkdir(parents=True, exist_ok=True)
            transferred, size = staged.stat().st_size, _size(staged)
            os.replace(staged, target)
            if status.path is not None and status.path != target:
                status.path.unlink()  # the bad NAME.npy.gz (or NAME.npy) that this one replaces
            if entry.sha256 is None:
                lock[entry.path] = {"size": size, "sha256": digest}
                _write_lock(root, lock)
            results.append(FetchResult(entry, DOWNLOADED, transferred))
    return results


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
    names = list(dict.fromkeys(ALIASES.get(t, t) for t in tasks)) if tasks else list(manifest)
    for name in names:
        _task_entries(name, manifest)
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


def _cmd_check(args: argparse.Namespace) -> int:
    manifest = load_manifest()
    tasks = _requested(args.tasks, manifest)
    root = _resolve_root(args.data_root, create=False)
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
        source = UrlSource(args.base_url)
    else:
        source = HubSource(args.repo or HF_REPO, args.revision or HF_REVISION)
    root = _resolve_root(args.data_root, create=True)
    for task in tasks:
        results = fetch_task(task, root, source, progress=not args.quiet)
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
        description="Check or fetch the Design-Bench data files of the tasks, verified against "
        "the package's "
        "manifest (sha256 where published, else dtype, shape and the published normalizers).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{list,check,fetch}")

    sub.add_parser(
        "list", help="tasks, their number of files, total size and how they are verified"
    )

    root_help = f"folder holding Design-Bench's data folders (default: ${DATA_ROOT_ENV})"
    check = sub.add_parser("check", help="report missing or bad files (exit 1 if any)")
    check.add_argument("tasks", nargs="*", metavar="TASK", help="tasks to check (default: all)")
    check.add_argument("--data-root", metavar="DIR", help=root_help)
    check.add_argument("--fast", action="store_true", help="compare sizes only, no hashing")
    check.add_argument("-v", "--verbose", action="store_true", help="list every file")

    fetch = sub.add_parser(
        "fetch", help="download missing or bad files (default: from the Hugging Face hub)"
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
        "--revision", metavar="REV", help=f"its branch, tag or commit (default: {HF_REVISION})"
    )
    fetch.add_argument("--data-root", metavar="DIR", help=root_help + "; created if missing")
    fetch.add_argument("--quiet", "-q", action="store_true", help="no progress bars or summary")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``matchopt data`` (``python -m lightning_matchopt.fetching.fetch``); the exit code.

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
