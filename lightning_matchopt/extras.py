"""The optional dependencies (``pip install 'lightning_matchopt[EXTRA]'``): what is missing, in one line."""

from __future__ import annotations

import importlib.util

PIP_NAMES = {"sklearn": "scikit-learn"}  # import name -> the name pip installs it by, where they differ


def missing(*modules: str, extra: str) -> str | None:
    """``needs A and B: pip install 'lightning_matchopt[EXTRA]'`` naming the modules not installed; None if all are.

    Looked up, not imported: asking costs nothing, and the caller imports what it uses.
    """
    absent = [PIP_NAMES.get(name, name) for name in modules if importlib.util.find_spec(name) is None]
    return f"needs {' and '.join(absent)}: pip install 'lightning_matchopt[{extra}]'" if absent else None
