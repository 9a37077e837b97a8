"""Shared fixtures, and the real-data switch: ``--data-root DIR`` or ``$MATCHOPT_DATA_ROOT``.

Tests that need Design-Bench's real files are skipped without them, and the run says so once, after
collection. Whatever the data root's permissions, no test may write into it: the forest cache gets a
temporary folder of its own, and the session fails if a file under the data root changed.
"""

import os
import shutil
import tempfile
from pathlib import Path

import lightning.pytorch  # noqa: F401  (see below)
import pytest

# Lightning adds its console handlers (StreamHandler on the sys.stderr of the moment) when it is first
# imported, and the package imports it lazily. Imported first inside a test that captures output
# (capsys), they would write to that test's capture stream, closed after it: every later Lightning log
# line would then print "--- Logging error ---" and a traceback (tests/test_faults.py failed 5 of 11
# when run alone). Imported here, they write to the session's stream, whatever the order of the tests.

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "design_bench_data"
TINY_CONFIG = Path(__file__).parent / "configs" / "tiny.yaml"
REAL_DATA_FIXTURES = {"data_root", "tfbind8", "shared_root"}  # every test asking for one needs the files


def real_data_root() -> Path:
    """The data root the tests read: ``$MATCHOPT_DATA_ROOT`` (set from ``--data-root``) or ../shared's copy."""
    return Path(os.environ.get("MATCHOPT_DATA_ROOT") or SHARED_DATA)


def has_real_data(root: Path) -> bool:
    return (root / "tf_bind_8-SIX6_REF_R1").is_dir()


def pytest_addoption(parser):
    parser.addoption("--data-root", metavar="DIR", help="Design-Bench data for the real-data tests "
                     "(default: $MATCHOPT_DATA_ROOT, else ../shared/design_bench_data)")


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def pytest_configure(config):
    if config.getoption("--data-root"):
        os.environ["MATCHOPT_DATA_ROOT"] = str(Path(config.getoption("--data-root")).resolve())
    # The fitted Superconductor forest (and any other cache) goes to a folder of this run, never the data root.
    config._matchopt_cache = tempfile.mkdtemp(prefix="matchopt-test-cache-")
    os.environ["MATCHOPT_CACHE_DIR"] = config._matchopt_cache
    root = real_data_root()
    config._matchopt_data_files = _files(root) if has_real_data(root) else None


def pytest_collection_modifyitems(config, items):
    config._matchopt_needs_data = sum(1 for item in items if REAL_DATA_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_report_collectionfinish(config):
    root, needing = real_data_root(), getattr(config, "_matchopt_needs_data", 0)
    if has_real_data(root):
        return f"real Design-Bench data: {root} ({needing} tests read it)"
    return (f"real Design-Bench data: not found under {root}: {needing} tests will be skipped; point them at "
            "a data root with --data-root DIR or MATCHOPT_DATA_ROOT=DIR")


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    shutil.rmtree(getattr(config, "_matchopt_cache", ""), ignore_errors=True)
    before = getattr(config, "_matchopt_data_files", None)
    if before is not None and _files(real_data_root()) != before:
        changed = sorted(set(_files(real_data_root()).items()) ^ set(before.items()))
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        reporter.write_line(f"FAILED: tests wrote into the data root {real_data_root()}: "
                            f"{sorted({name for name, _ in changed})[:5]}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def data_root() -> Path:
    """Real Design-Bench files (``--data-root``, ``$MATCHOPT_DATA_ROOT`` or ../shared/design_bench_data)."""
    root = real_data_root()
    if not has_real_data(root):
        pytest.skip(f"Design-Bench data not found under {root}: pass --data-root DIR or set MATCHOPT_DATA_ROOT")
    return root


@pytest.fixture(scope="session")
def tfbind8(data_root):
    from lightning_matchopt.tasks import TFBind8

    task = TFBind8(data_root)
    task.data  # noqa: B018
    return task
