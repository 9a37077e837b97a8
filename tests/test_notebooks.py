"""The notebooks run from top to bottom (on tiny settings), so they cannot rot."""

from pathlib import Path

import pytest
from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path: Path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(path, as_version=4)
    monkeypatch.setenv("MATCHOPT_NOTEBOOK_TINY", "1")
    resources = {"metadata": {"path": str(path.parent)}}  # run from notebooks/, as Jupyter would
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3", resources=resources).execute()
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "matchopt" in text and "regression" in text  # the gradient-error table was printed
    (path.parent / "gradient_field.png").unlink(missing_ok=True)  # the notebook's own figure
