"""Design-Bench's originals that cannot be checked by a published sha256 alone.

- **Superconductor.** The manifest pins the sha256 of the shards rebuilt here from UCI's
  ``unique_m.csv`` (see the shared data folder's PROVENANCE.md); Design-Bench's own shards, as the
  hub mirror ``beckhamc/design_bench_data`` holds them, may differ in bytes. A shard set whose
  sha256 differs is accepted when its structure is Design-Bench's (shapes, float32, y ranging over
  0.00021 .. 185.0, the published normalizers) and, where a reference is at hand (UCI's CSV or this
  project's rebuild), its rows equal the reference's to float32 precision. Its sha256 then goes to
  the lock file.
- **Hopper.** No source shows ``hopper_controller-x-0.npy`` on the hub mirror. The Hugging Face
  dataset ``sci-modeling-bench/design-bench`` (config ``hopper_controller``, split ``policies``)
  holds all 3,200 policy vectors with their original returns, one row each, in one Parquet file.
  Source: xukp20/sci-modeling-bench at commit 4a4f33544cf79a446ee2ba0f806df7f994699f2f,
  ``src/sci_modeling_bench/suites/design_bench/hopper_controller/dataset.py``
  (``DEFAULT_HOPPER_CONTROLLER_REPO_ID``, ``DEFAULT_HOPPER_CONTROLLER_REVISION``, the config and
  split names) and ``.../hopper_controller/build.py`` (``build_hopper_controller_release``: the file
  ``data/hopper_controller/policies.parquet``; ``source_index`` int32 = the row in Design-Bench's
  array, ``policy_weights`` float32[5126] = the row of ``hopper_controller-x-0.npy``,
  ``source_return`` float32 = its ``hopper_controller-y-0.npy`` value). :func:`hopper_from_parquet`
  writes them back in Design-Bench's layout; the fetch then checks them against the original
  sha256 pins (``np.save`` of numpy 2 writes the same bytes as Design-Bench's files: checked on
  TF-Bind-8's original).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lightning_matchopt.errors import DataError

SUPERCONDUCTOR_Y_RANGE = (0.00021, 185.0)
SUPERCONDUCTOR_DIM = 86
REFERENCE_ENV = "MATCHOPT_SUPERCONDUCTOR_REFERENCE"
UCI_CSV = "sources/uci_superconductivity/unique_m.csv"  # where the shared data folder keeps it
FLOAT32_RTOL = 2.5e-7  # two units in the last place of a float32

HOPPER_REPO = "sci-modeling-bench/design-bench"
HOPPER_REVISION = "d8b9ea3c78ed33edf0869a427940a0651eb49f52"
HOPPER_REVISION_ENV = "MATCHOPT_HOPPER_REVISION"
HOPPER_FILE = "data/hopper_controller/policies.parquet"
HOPPER_X = "hopper_controller/hopper_controller-x-0.npy"
HOPPER_Y = "hopper_controller/hopper_controller-y-0.npy"
HOPPER_POLICY_SIZE = 5126


def _shards(paths: dict[str, Path], kind: str) -> np.ndarray:
    """The task's ``superconductor-{kind}-{i}.npy`` shards (manifest path -> file), concatenated."""
    names = sorted((p for p in paths if f"-{kind}-" in p), key=lambda p: int(p.rsplit("-", 1)[1].split(".")[0]))
    from lightning_matchopt.tasks.base import load_array

    return np.concatenate([np.asarray(load_array(paths[name])) for name in names])


def reference_rows(reference: Path) -> tuple[np.ndarray, np.ndarray]:
    """X (N, 86) and y (N,) of a reference: UCI's ``unique_m.csv``, or a folder with the rebuilt shards."""
    reference = Path(reference)
    try:
        if reference.is_dir():
            folder = reference / "superconductor" if (reference / "superconductor").is_dir() else reference
            found = {f"superconductor/{p.name.removesuffix('.gz')}": p for p in folder.glob("superconductor-[xy]-*.npy*")}
            if not found:
                raise DataError(f"superconductor reference {str(reference)!r} holds no superconductor-{{x,y}}-N.npy shards")
            return _shards(found, "x"), _shards(found, "y").reshape(-1)
        table = np.loadtxt(reference, delimiter=",", skiprows=1, usecols=range(SUPERCONDUCTOR_DIM + 1), dtype=np.float64)
    except (OSError, ValueError) as e:
        raise DataError(
            f"cannot read the superconductor reference {str(reference)!r} ({e}); give UCI's unique_m.csv or a folder "
            f"with the rebuilt shards (--reference or ${REFERENCE_ENV})"
        ) from None
    # Design-Bench's process_raw_superconductor.py: x = the 86 element columns, y = critical_temp, as float32.
    return table[:, :SUPERCONDUCTOR_DIM].astype(np.float32), table[:, SUPERCONDUCTOR_DIM].astype(np.float32)


def default_reference(root: Path, given: str | os.PathLike | None = None) -> Path | None:
    """The reference to compare an original with: ``given``, ``$MATCHOPT_SUPERCONDUCTOR_REFERENCE``, or the CSV in the root."""
    chosen = given if given is not None else os.environ.get(REFERENCE_ENV) or None
    if chosen is not None:
        path = Path(chosen).expanduser()
        if not path.exists():
            raise DataError(f"superconductor reference {str(path)!r} does not exist: fix --reference or ${REFERENCE_ENV}")
        return path
    csv = root / UCI_CSV
    return csv if csv.is_file() else None


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=FLOAT32_RTOL, atol=0.0))


def superconductor_problem(paths: dict[str, Path], reference: Path | None) -> tuple[str | None, str]:
    """Why the shard set is not Design-Bench's Superconductor data (None if it is), and how it was accepted.

    Args:
        paths: every manifest path of the task -> the file to read (staged or already in place);
            each shard's shape and dtype were checked before.
        reference: UCI's ``unique_m.csv`` or a folder with the rebuilt shards; None: structure only.

    Returns:
        ``(problem, how)``: ``problem`` is one line or None; ``how`` says what the acceptance rested on.
    """
    x, y = _shards(paths, "x"), _shards(paths, "y").reshape(-1)
    if len(x) != len(y):
        return f"{len(x)} rows of x but {len(y)} of y", ""
    low, high = float(y.min()), float(y.max())
    if not np.allclose([low, high], SUPERCONDUCTOR_Y_RANGE, rtol=1e-6, atol=0):
        return (
            f"y ranges over [{low:.8g}, {high:.8g}], not over the published normalizers "
            f"[{SUPERCONDUCTOR_Y_RANGE[0]}, {SUPERCONDUCTOR_Y_RANGE[1]}]"
        ), ""
    if reference is None:
        return None, "structure (shapes, float32, y range); no UCI file or rebuild at hand to compare values"
    x_ref, y_ref = reference_rows(reference)
    if len(x_ref) != len(x):
        return f"{len(x)} rows, the reference {reference.name} has {len(x_ref)}", ""
    if _same(x, x_ref) and _same(y, y_ref):
        return None, f"structure and values (every row equals {reference.name}'s to float32 precision)"
    rows, rows_ref = np.column_stack([x, y]), np.column_stack([x_ref, y_ref])
    if _same(rows[np.lexsort(rows.T[::-1])], rows_ref[np.lexsort(rows_ref.T[::-1])]):
        return None, f"structure and values (the rows of {reference.name}, in another order)"
    bad = np.flatnonzero(~np.isclose(rows, rows_ref, rtol=FLOAT32_RTOL, atol=0.0).all(axis=1))
    first = int(bad[0])
    column = int(np.flatnonzero(~np.isclose(rows[first], rows_ref[first], rtol=FLOAT32_RTOL, atol=0.0))[0])
    what = "y" if column == SUPERCONDUCTOR_DIM else f"x[{column}]"
    return (
        f"{len(bad)} row(s) differ from {reference.name} beyond float32 precision "
        f"(first: row {first}, {what} = {rows[first, column]:.8g}, the reference has {rows_ref[first, column]:.8g})"
    ), ""


def hopper_from_parquet(parquet: Path, staging: Path, rows: int = 3200) -> None:
    """Write the dataset's Hopper policies as Design-Bench's ``hopper_controller-{x,y}-0.npy`` under ``staging``.

    Raises:
        DataError: pyarrow is missing, or the file is not the layout described in the module docstring.
    """
    from lightning_matchopt.extras import missing

    if why := missing("pyarrow", extra="fetch"):
        raise DataError(f"reading {HOPPER_FILE} {why}")
    import pyarrow.parquet as pq

    where = f"{HOPPER_FILE} ({HOPPER_REPO})"
    try:
        table = pq.read_table(parquet, columns=["source_index", "policy_weights", "source_return"])
        index = table.column("source_index").to_numpy().astype(np.int64)
        weights = table.column("policy_weights").combine_chunks()
        flat = weights.flatten().to_numpy(zero_copy_only=False)
        lengths = weights.value_lengths().to_numpy(zero_copy_only=False) if hasattr(weights, "value_lengths") else None
        returns = table.column("source_return").to_numpy()
    except Exception as e:  # pyarrow raises many types (ArrowInvalid, KeyError, ...)
        raise DataError(f"{where} is not the layout this fetch knows ({type(e).__name__}: {e})") from None
    if table.num_rows != rows or sorted(index.tolist()) != list(range(rows)):
        raise DataError(f"{where}: expected {rows} rows with source_index 0..{rows - 1}, got {table.num_rows}")
    if flat.size != rows * HOPPER_POLICY_SIZE or (lengths is not None and (lengths != HOPPER_POLICY_SIZE).any()):
        raise DataError(f"{where}: policy_weights must hold {HOPPER_POLICY_SIZE} values a row")
    order = np.argsort(index, kind="stable")
    x = flat.reshape(rows, HOPPER_POLICY_SIZE)[order].astype(np.float32, copy=False)
    y = returns[order].astype(np.float32, copy=False).reshape(rows, 1)
    for rel, array in ((HOPPER_X, x), (HOPPER_Y, y)):
        target = staging.joinpath(*rel.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, np.ascontiguousarray(array))
