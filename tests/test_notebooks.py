"""The notebooks run from top to bottom (on tiny settings), so they cannot rot, and are stored run."""

from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow  # executes the notebooks

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def outputs(notebook) -> list[dict]:
    return [o for cell in notebook.cells for o in cell.get("outputs", [])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path: Path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(path, as_version=4)
    monkeypatch.setenv("MATCHOPT_NOTEBOOK_TINY", "1")
    resources = {"metadata": {"path": str(path.parent)}}  # run from notebooks/, as Jupyter would
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3", resources=resources).execute()
    assert not [o for o in outputs(notebook) if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs(notebook))
    assert "matchopt" in text and "regression" in text  # the gradient-error table was printed
    assert "LeafSpec" not in text  # Lightning's noise is filtered
    assert any("image/png" in o.get("data", {}) for o in outputs(notebook))  # the figure shows inline


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_run_with_small_outputs(path: Path):
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))  # top to bottom, once
    assert any("image/png" in o.get("data", {}) for o in outputs(notebook))  # a code host shows the figure
    assert not [o for o in outputs(notebook) if o.get("output_type") == "error"]
    assert path.stat().st_size < 1 << 20
