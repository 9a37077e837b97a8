"""Design-Bench data files: the manifest, their verification, download sources and the fetch.

Light on purpose (numpy only): ``matchopt data`` imports neither torch nor Lightning.
"""

from lightning_matchopt.fetching.fetch import FetchResult, fetch_task
from lightning_matchopt.fetching.manifest import LOCK_NAME, FileEntry, load_manifest
from lightning_matchopt.fetching.sources import HopperSource, HubSource, UrlSource
from lightning_matchopt.fetching.verify import FileStatus, check_task

__all__ = [
    "LOCK_NAME",
    "FetchResult",
    "FileEntry",
    "FileStatus",
    "HopperSource",
    "HubSource",
    "UrlSource",
    "check_task",
    "fetch_task",
    "load_manifest",
]
