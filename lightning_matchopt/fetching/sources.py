"""Where ``fetch`` downloads from: the Hugging Face hub, or a plain http(s):// or file:// mirror."""

from __future__ import annotations

import importlib
import os
import shutil
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath

from lightning_matchopt.errors import DataError
from lightning_matchopt.extras import missing
from lightning_matchopt.fetching.manifest import HF_REPO, HF_REVISION, HF_REVISION_ENV
from lightning_matchopt.fetching.originals import (
    HOPPER_FILE,
    HOPPER_REPO,
    HOPPER_REVISION,
    HOPPER_REVISION_ENV,
    HOPPER_X,
    HOPPER_Y,
    hopper_from_parquet,
)


class MissingFile(DataError):
    """The source answered that it has no such file (404): a wrong name, or a file it lacks."""

    def __init__(self, message: str, said: str = "404") -> None:
        super().__init__(message)
        self.said = said  # what the source answered, short


def _library(name: str):
    """Import a download library of the ``fetch`` extra, or say in one line how to install it."""
    if why := missing(name, extra="fetch"):
        raise DataError(f"fetch {why}")
    return importlib.import_module(name)


class HubSource:
    """A hub dataset in Design-Bench's layout; ``HF_ENDPOINT`` (or ``endpoint``) picks the hub.

    The revision defaults to ``$MATCHOPT_HUB_REVISION``, else ``main`` (no commit of the mirror is
    published).
    """

    def __init__(self, repo: str = HF_REPO, revision: str | None = None, endpoint: str | None = None) -> None:
        self.hub = _library("huggingface_hub")
        revision = revision or os.environ.get(HF_REVISION_ENV) or HF_REVISION
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
                raise MissingFile(f"{path}: {url} does not exist", said="no such file")
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


class HopperSource:
    """Hopper's 3,200 policies from the hub dataset ``sci-modeling-bench/design-bench``, in Design-Bench's layout.

    Downloads ``data/hopper_controller/policies.parquet`` once and writes ``hopper_controller-{x,y}-0.npy``
    from it (:func:`lightning_matchopt.fetching.originals.hopper_from_parquet`; the fetch then checks
    them against the original sha256 pins). The revision is the commit sci-modeling-bench 0.10.0 pins
    (``DEFAULT_HOPPER_CONTROLLER_REVISION``); ``--hopper-revision`` or ``$MATCHOPT_HOPPER_REVISION``
    overrides it.
    """

    def __init__(self, revision: str | None = None, endpoint: str | None = None, repo: str = HOPPER_REPO) -> None:
        revision = revision or os.environ.get(HOPPER_REVISION_ENV) or HOPPER_REVISION
        self.dataset = HubSource(repo, revision, endpoint)  # downloads the Parquet file

    def __str__(self) -> str:
        dataset = self.dataset
        return f"hf://datasets/{dataset.repo}@{dataset.revision[:12]}/{HOPPER_FILE}" + (
            f" on {dataset.endpoint}" if dataset.endpoint else ""
        )

    def download(self, path: str, staging: Path, progress: bool) -> Path:
        """The staged ``path`` (x or y), both written from the Parquet file on the first call."""
        if path not in (HOPPER_X, HOPPER_Y):
            raise MissingFile(f"{path}: {self} holds Hopper's policies only", said="holds Hopper's policies only")
        target = staging.joinpath(*PurePosixPath(path).parts)
        if not target.is_file():
            parquet = self.dataset.download(HOPPER_FILE, staging / ".hopper-source", progress)
            hopper_from_parquet(parquet, staging)
            parquet.unlink()
        return target


def failure(path: str, source, error: Exception) -> DataError:
    """One line for whatever the download library raised, with the fix: a wrong name or a retry."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()][:2]
    said = f"{type(error).__name__}: {' '.join(lines) or 'no message'}"
    missing = "404" in said or "Not Found" in said or "EntryNotFound" in said
    fix = "check the task name, --repo, --revision or --base-url" if missing else "run fetch again"
    message = f"{path}: download from {source} failed: {said} ({fix})"
    return MissingFile(message, said=said[:120]) if missing else DataError(message)
