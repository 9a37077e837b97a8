"""The manifest shipped in the package: the files each task needs, and what each must hold."""

from __future__ import annotations

import importlib.resources
import json
from dataclasses import dataclass
from pathlib import PurePosixPath

from lightning_matchopt.errors import DataError
from lightning_matchopt.tasks import ALIASES

# The community mirror of Design-Bench's design_bench_data/ folder. No commit of it is published in any
# source found (design-bench's issues and pull requests, code that downloads from it): "main" is the
# default, so what a user gets can change; --revision or $MATCHOPT_HUB_REVISION pins a commit.
HF_REPO = "beckhamc/design_bench_data"
HF_REVISION = "main"
HF_REVISION_ENV = "MATCHOPT_HUB_REVISION"
LOCK_NAME = "matchopt-data.lock.json"


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
        accept: ``values``: a file whose sha256 differs from the pin is still accepted when the task's
            whole file set is Design-Bench's by structure and values (Superconductor; see
            :mod:`lightning_matchopt.fetching.originals`), its sha256 then locked. None otherwise.
    """

    path: str
    size: int | None = None
    sha256: str | None = None
    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    value_range: tuple[float, float] | None = None
    policy: str | None = None
    accept: str | None = None

    @property
    def has_structure(self) -> bool:
        """Whether there is more to check than bytes (dtype, shape, range or policy)."""
        return self.dtype is not None or self.policy is not None


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
            accept=row.get("accept"),
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
        or entry.accept not in (None, "values")
        or (entry.accept is not None and (entry.sha256 is None or entry.dtype is None))
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


def task_entries(task: str, manifest: dict[str, list[FileEntry]] | None = None) -> list[FileEntry]:
    """The task's files; an unknown name is an error that lists the known ones."""
    manifest = load_manifest() if manifest is None else manifest
    task = ALIASES.get(task, task)
    if task not in manifest:
        raise DataError(f"unknown task {task!r}; known tasks: {', '.join(sorted(manifest))}")
    return manifest[task]
