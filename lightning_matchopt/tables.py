"""CSV tables of designs for people: one row a design, its features as columns, then what is known of it."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from lightning_matchopt.atomic import write_atomic


def design_columns(designs: np.ndarray, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """One column per design entry: ``names`` when given (a CSV's own header), else ``x0, x1, ...``."""
    flat = np.asarray(designs).reshape(len(designs), -1)
    if names is None or len(names) != flat.shape[1]:
        names = [f"x{i}" for i in range(flat.shape[1])]
    return {name: flat[:, i] for i, name in enumerate(names)}


def _cell(value) -> object:
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else repr(float(value))  # shortest text that reads back exactly
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_csv(path: Path, columns: dict[str, np.ndarray]) -> None:
    """Write equal-length columns as a CSV with a header, atomically; NaN becomes an empty cell."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for row in zip(*columns.values(), strict=True):
        writer.writerow([_cell(v) for v in row])
    write_atomic(path, lambda f: f.write(text.getvalue().encode()), ".csv")
