import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "design_bench_data"
TINY_CONFIG = Path(__file__).parent / "configs" / "tiny.yaml"


@pytest.fixture(scope="session")
def data_root() -> Path:
    """Real Design-Bench files (../shared/design_bench_data or $MATCHOPT_DATA_ROOT)."""
    root = Path(os.environ.get("MATCHOPT_DATA_ROOT", SHARED_DATA))
    if not (root / "tf_bind_8-SIX6_REF_R1").is_dir():
        pytest.skip(f"Design-Bench data not found under {root}")
    return root


@pytest.fixture(scope="session")
def tfbind8(data_root):
    from lightning_matchopt.tasks import TFBind8

    task = TFBind8(data_root)
    task.data  # noqa: B018
    return task
