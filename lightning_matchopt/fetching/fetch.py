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
from lightning_matchopt.fetching.originals import default_reference, superconductor_problem
from lightning_matchopt.fetching.sources import HopperSource, HubSource, MissingFile, failure
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
from lightning_matchopt.tasks import ALIASES


@dataclass(frozen=True)
class FetchResult:
    """What ``fetch`` did for one file: ``present``, or ``downloaded`` (``size`` bytes)."""

    entry: FileEntry
    action: str
    size: int


def _download(sources: list, entry: FileEntry, staging: Path, progress: bool, root: Path, task: str):
    """Download one file from the first source that has it; every source tried is named if none has it."""
    tried = []
    for source in sources:
        try:
            return source, source.download(entry.path, staging, progress)
        except MissingFile as e:
            tried.append(f"{source} ({e.said})")
        except DataError:
            raise
        except Exception as e:  # the libraries raise many types (HTTP, connection, size)
            error = failure(entry.path, source, e)
            if not isinstance(error, MissingFile):
                raise error from None
            tried.append(f"{source} ({error.said})")
    pin = f" (sha256 {entry.sha256})" if entry.sha256 else ""
    raise DataError(
        f"{entry.path}: not found; tried {'; '.join(tried)} (check the task name, --repo, --revision or --base-url). "
        f"Place Design-Bench's file by hand at "
        f"{root / entry.path}{pin}, then run 'matchopt data check --data-root {root} {task}'"
    )


def _verify(source, entry: FileEntry, staged: Path, pinned: dict | None) -> tuple[str, bool]:
    """Check a staged file; returns its sha256 and whether it waits for the task-wide value check."""
    rejected = f"(from {source}; the download was deleted, nothing was put under {entry.path})"
    if entry.has_structure and (problem := structure_problem(entry, staged)):
        raise DataError(f"{entry.path} is not Design-Bench's file: {problem} {rejected}")
    digest = sha256_of(staged)
    if pinned is not None and digest != pinned["sha256"]:
        if entry.accept == "values" and pinned["sha256"] == entry.sha256:
            return digest, True  # maybe Design-Bench's original: judged with the task's other files
        why = "" if entry.sha256 else f", the sha256 locked on its first fetch in {LOCK_NAME}"
        raise DataError(
            f"{entry.path}: sha256 mismatch: expected {pinned['sha256']}{why}, got {digest} {rejected}"
        )
    return digest, False


def _sources(task: str, source) -> list:
    """Where the task's files are looked for, in order: Hopper also from its second hub dataset."""
    sources = [source]
    if task == "hopper" and isinstance(source, HubSource):
        sources.append(HopperSource(endpoint=source.endpoint))
    return sources


def fetch_task(
    task: str,
    data_root: str | os.PathLike | None,
    source=None,
    *,
    progress: bool = False,
    sources: list | None = None,
    reference: str | os.PathLike | None = None,
) -> list[FetchResult]:
    """Download the task's missing or bad files, verify each one, then put it under its final name.

    Files already present and good are left alone. Downloads go to a staging folder inside the
    data root (same disk: the rename is atomic, nothing is copied) that is removed afterwards, so
    a loader never sees a half-written or unverified file. Files without a published sha256 get
    theirs written to the lock file once verified by structure. Superconductor shards that are
    not the rebuild pinned in the manifest are judged together, by structure and values
    (:func:`lightning_matchopt.fetching.originals.superconductor_problem`), then locked.

    Args:
        task: a manifest task name or alias.
        data_root: folder holding Design-Bench's data folders, created if missing; None:
            ``$MATCHOPT_DATA_ROOT``.
        source: a :class:`HubSource` (default: ``beckhamc/design_bench_data`` on the hub) or a
            :class:`UrlSource`.
        progress: let the download library draw its progress bars on stderr.
        sources: the sources to try in order (default: ``source``, and for Hopper from the hub
            also :class:`HopperSource` on the same endpoint).
        reference: UCI's ``unique_m.csv`` or a folder with the rebuilt Superconductor shards to
            compare an original with (default: ``$MATCHOPT_SUPERCONDUCTOR_REFERENCE``, else the
            data root's ``sources/uci_superconductivity/unique_m.csv`` if there).

    Returns:
        One :class:`FetchResult` per manifest file, in manifest order.

    Raises:
        DataError: unknown task, a file no source has (the line names what was tried and where
            to put the file by hand), a failed download, or a file that does not match the
            manifest or the lock (it is deleted).
    """
    entries = task_entries(task)
    task = ALIASES.get(task, task)
    source = HubSource() if source is None else source
    sources = _sources(task, source) if sources is None else sources
    root = resolve_root(data_root, create=True)
    lock = read_lock(root)
    results: list[FetchResult | None] = []
    waiting: dict[int, tuple[Path, str, int, object]] = {}  # result slot -> staged file, sha256, size, source
    in_place: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(dir=root, prefix=".matchopt-fetch-") as folder:
        staging = Path(folder).resolve()
        for entry in entries:
            status = check_file(root, entry, fast=False, lock=lock)
            if status.ok:
                results.append(FetchResult(entry, PRESENT, 0))
                in_place[entry.path] = status.path
                if pinned_hash(entry, lock) is None:  # verified by structure just now: lock it
                    lock[entry.path] = {"size": status.size, "sha256": sha256_of(status.path)}
                    write_lock(root, lock)
                continue
            used, staged = _download(sources, entry, staging, progress, root, task)
            digest, wait = _verify(used, entry, staged, pinned_hash(entry, lock))
            if wait:
                waiting[len(results)] = (staged, digest, status, used)
                results.append(None)
                continue
            target = _put(root, staging, staged, status)
            in_place[entry.path] = target
            if entry.sha256 is None:
                lock[entry.path] = {"size": npy_size(target), "sha256": digest}
                write_lock(root, lock)
            results.append(FetchResult(entry, DOWNLOADED, target.stat().st_size))
        if waiting:
            files = {**in_place, **{entries[i].path: staged for i, (staged, *_) in waiting.items()}}
            problem, how = superconductor_problem(files, default_reference(root, reference))
            if problem is not None:
                used = {str(s) for *_, s in waiting.values()}
                raise DataError(
                    f"{task}: the shards from {', '.join(sorted(used))} are neither the rebuild the manifest pins nor "
                    f"Design-Bench's original: {problem} (the downloads were deleted)"
                )
            for i, (staged, digest, status, _) in waiting.items():
                target = _put(root, staging, staged, status)
                lock[entries[i].path] = {"size": npy_size(target), "sha256": digest, "accepted_by": how}
                results[i] = FetchResult(entries[i], DOWNLOADED, target.stat().st_size)
            write_lock(root, lock)
    return results


def _put(root: Path, staging: Path, staged: Path, status) -> Path:
    """Rename a verified staged file to its final name; the bad file it replaces goes."""
    target = root / staged.relative_to(staging)  # NAME, or NAME.npy.gz from a file:// copy
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, target)
    if status.path is not None and status.path != target:
        status.path.unlink()  # the bad NAME.npy.gz (or NAME.npy) that this one replaces
    return target
