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

Usage (``matchopt data`` is the same as ``python -m lightning_matchopt.commands.data``)::

    matchopt data list
    matchopt data check [--data-root DIR] [--fast] [-v] [TASK ...]
    matchopt data fetch [--source hf [--repo ID] [--revision REV] | --base-url URL]
                        [--data-root DIR] [-q] TASK ...

The data root defaults to ``$MATCHOPT_DATA_ROOT``. Exit codes: 0 success (``check``: every
requested task complete), 1 ``check`` found missing or bad files, 2 error (one line on stderr).
``list`` and ``check`` need only numpy; ``fetch`` needs the ``fetch`` extra.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lightning_matchopt.errors import DataError
from lightning_matchopt.fetching.manifest import LOCK_NAME, FileEntry, task_entries
from lightning_matchopt.fetching.sources import HubSource, failure
from lightning_matchopt.fetching.verify import (
    DOWNLOADED,
    PRESENT,
    check_file,
    npy_size,
    pinned_hash,
    read_lock,
    resolve_root,
    sha256_of,
    structure_problem,
    write_lock,
)


@dataclass(frozen=True)
class FetchResult:
    """What ``fetch`` did for one file: ``present``, or ``downloaded`` (``size`` bytes)."""

    entry: FileEntry
    action: str
    size: int


def _fetch_file(
    source, entry: FileEntry, staging: Path, pinned: dict | None, progress: bool
) -> tuple[Path, str]:
    """Download one file into ``staging`` and verify it; returns the staged path and its sha256."""
    try:
        staged = source.download(entry.path, staging, progress)
    except DataError:
        raise
    except Exception as e:  # the libraries raise many types (HTTP, connection, size)
        raise failure(entry.path, source, e) from None
    rejected = f"(from {source}; the download was deleted, nothing was put under {entry.path})"
    if entry.has_structure and (problem := structure_problem(entry, staged)):
        raise DataError(f"{entry.path} is not Design-Bench's file: {problem} {rejected}")
    digest = sha256_of(staged)
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
    entries = task_entries(task)
    source = HubSource() if source is None else source
    root = resolve_root(data_root, create=True)
    lock = read_lock(root)
    results = []
    with tempfile.TemporaryDirectory(dir=root, prefix=".matchopt-fetch-") as folder:
        staging = Path(folder).resolve()
        for entry in entries:
            status = check_file(root, entry, fast=False, lock=lock)
            if status.ok:
                results.append(FetchResult(entry, PRESENT, 0))
                if pinned_hash(entry, lock) is None:  # verified by structure just now: lock it
                    lock[entry.path] = {"size": status.size, "sha256": sha256_of(status.path)}
                    write_lock(root, lock)
                continue
            staged, digest = _fetch_file(source, entry, staging, pinned_hash(entry, lock), progress)
            target = root / staged.relative_to(staging)  # NAME, or NAME.npy.gz from a file:// copy
            target.parent.mkdir(parents=True, exist_ok=True)
            transferred, size = staged.stat().st_size, npy_size(staged)
            os.replace(staged, target)
            if status.path is not None and status.path != target:
                status.path.unlink()  # the bad NAME.npy.gz (or NAME.npy) that this one replaces
            if entry.sha256 is None:
                lock[entry.path] = {"size": size, "sha256": digest}
                write_lock(root, lock)
            results.append(FetchResult(entry, DOWNLOADED, transferred))
    return results
