"""Check a task's files under the data root: size, sha256, or what Design-Bench wrote.

Files with a published sha256 must match it; the others (Ant, D'Kitty and their policies) must
hold Design-Bench's dtype, shape and normalizer range, and have their sha256 kept in the lock file
(``matchopt-data.lock.json``) once verified.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from lightning_matchopt.atomic import write_atomic
from lightning_matchopt.errors import DataError, MatchOptError
from lightning_matchopt.fetching.manifest import LOCK_NAME, FileEntry, task_entries
from lightning_matchopt.tasks.base import DATA_ROOT_ENV, load_array

PRESENT = "present"
MISSING = "missing"
WRONG_SIZE = "wrong size"
WRONG_SHA256 = "wrong sha256"
BAD = "bad content"
DOWNLOADED = "downloaded"


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



def resolve_root(data_root: str | os.PathLike | None, create: bool) -> Path:
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


def found_file(root: Path, entry: FileEntry) -> Path | None:
    """The file as stored: ``NAME``, or ``NAME.gz`` (a gzipped ``.npy``, as in ../shared)."""
    path = _local_path(root, entry)
    gz = path.with_name(path.name + ".gz")
    return path if path.is_file() else gz if entry.path.endswith(".npy") and gz.is_file() else None


def npy_size(path: Path) -> int:
    """Size of the file as a ``.npy``: a ``.gz`` stores it (mod 2**32) in its last four bytes."""
    if path.suffix != ".gz":
        return path.stat().st_size
    with open(path, "rb") as f:
        f.seek(-4, os.SEEK_END)
        return int.from_bytes(f.read(4), "little")


def sha256_of(path: Path) -> str:
    """Hex sha256 of the file's content (of the ``.npy`` for a ``.npy.gz``)."""
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"cannot read {str(path)!r}: {getattr(e, 'strerror', None) or e}") from None
    return digest.hexdigest()


def structure_problem(entry: FileEntry, path: Path) -> str | None:
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


def read_lock(root: Path) -> dict[str, dict]:
    """sha256 and size of the files without published checksums, as verified on first fetch."""
    path = root / LOCK_NAME
    if not path.is_file():
        return {}
    try:
        files = json.loads(path.read_text())["files"]
        return {
            str(k): {"size": int(v["size"]), "sha256": str(v["sha256"])}
            | ({"accepted_by": str(v["accepted_by"])} if "accepted_by" in v else {})
            for k, v in files.items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise DataError(
            f"{str(path)!r} is unreadable: delete it and run fetch again to verify the files anew"
        ) from None


def write_lock(root: Path, lock: dict[str, dict]) -> None:
    """Write the lock file atomically (a reader sees the old or the new one, never half of it)."""
    text = json.dumps({"format": 1, "files": dict(sorted(lock.items()))}, indent=1) + "\n"
    write_atomic(root / LOCK_NAME, lambda f: f.write(text.encode()))


def pinned_hash(entry: FileEntry, lock: dict[str, dict]) -> dict | None:
    """The size and sha256 the file must have: the manifest's, else the lock's, else None."""
    if entry.sha256 is not None:
        return {"size": entry.size, "sha256": entry.sha256}
    return lock.get(entry.path)


def check_file(root: Path, entry: FileEntry, fast: bool, lock: dict[str, dict]) -> FileStatus:
    """What is under the data root for one manifest entry (see :func:`check_task`)."""
    path = found_file(root, entry)
    if path is None:
        return FileStatus(entry, MISSING)
    size, pinned = npy_size(path), pinned_hash(entry, lock)
    original = lock.get(entry.path) if entry.accept == "values" else None  # an original accepted by values
    if original is not None and size == original["size"]:
        pinned = original
    if pinned is not None and pinned["size"] is not None and size != pinned["size"]:
        return FileStatus(entry, WRONG_SIZE, path, size)
    if fast:
        return FileStatus(entry, PRESENT, path, size)
    if pinned is None:  # no checksum yet: it must be what Design-Bench wrote
        problem = structure_problem(entry, path)
        return FileStatus(entry, BAD if problem else PRESENT, path, size, detail=problem)
    digest = sha256_of(path)
    if digest == pinned["sha256"] or (original is not None and digest in (original["sha256"], entry.sha256)):
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
    entries = task_entries(task)
    root = resolve_root(data_root, create=False)
    lock = read_lock(root)
    return [check_file(root, entry, fast, lock) for entry in entries]
