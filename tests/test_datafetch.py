"""datafetch: manifest, check, lock file, fetch from local hub-like and plain servers."""

import dataclasses
import hashlib
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hub_server import HOPPER_COMMIT, HOPPER_REPO, Files, serve
from lightning_matchopt import fetching as datafetch
from lightning_matchopt.commands import data as data_command
from lightning_matchopt.errors import DataError
from lightning_matchopt.fetching import manifest as manifest_module

pytest.importorskip("huggingface_hub")
pytest.importorskip("pooch")

TF8 = ["tf_bind_8-SIX6_REF_R1/tf_bind_8-x-0.npy", "tf_bind_8-SIX6_REF_R1/tf_bind_8-y-0.npy"]
ANT_X, ANT_Y, ANT_POLICY = (
    "ant_morphology/ant_morphology-x-0.npy",
    "ant_morphology/ant_morphology-y-0.npy",
    "ant_morphology/ant_oracle.pkl",
)
HOPPER = [
    "hopper_controller/hopper_controller-x-0.npy",
    "hopper_controller/hopper_controller-y-0.npy",
]


@pytest.fixture(scope="module")
def shared_root(data_root) -> Path:
    if not (data_root / "superconductor").is_dir():
        pytest.skip(f"Superconductor's files not found under {data_root}")
    return data_root


def _y(n: int, low: float, high: float, seed: int) -> np.ndarray:
    """Scores whose min and max are exactly the published normalizers (as float32)."""
    y = np.random.default_rng(seed).uniform(low, high, size=(n, 1)).astype(np.float32)
    y[0], y[-1] = low, high
    return y


@pytest.fixture(scope="module")
def standins(tmp_path_factory) -> Path:
    """Stand-in Ant, D'Kitty and Hopper files in the hub's layout, built to pass the checks."""
    root = tmp_path_factory.mktemp("standins")
    rng = np.random.default_rng(0)
    arrays = {
        ANT_X: rng.normal(size=(25009, 60)).astype(np.float32),
        ANT_Y: _y(25009, -386.90036, 590.24445, 1),
        "dkitty_morphology/dkitty_morphology-x-0.npy": rng.normal(size=(25009, 56)).astype(
            np.float32
        ),
        "dkitty_morphology/dkitty_morphology-y-0.npy": _y(25009, -880.4585, 340.90985, 2),
    }
    for rel, array in arrays.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        np.save(root / rel, array)
    sizes = [
        (32, 17 + 18 + 14 * 6 + 60),
        (32, 32),
        (24, 32),
    ]  # the Ant oracle's observation and 2 x 12 actions
    policy = {}
    for i, (out, inp) in zip((0, 2, 4), sizes, strict=True):
        policy[f"base_network.network.{i}.weight"] = rng.normal(
            0, 1 / np.sqrt(inp), (out, inp)
        ).astype(np.float32)
        policy[f"base_network.network.{i}.bias"] = np.zeros(out, np.float32)
    (root / ANT_POLICY).write_bytes(pickle.dumps(policy))
    (root / "dkitty_morphology/dkitty_oracle.pkl").write_bytes(pickle.dumps(policy))
    return root


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No proxy for 127.0.0.1, and the hub client's cache and token kept inside tmp_path."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HF_TOKEN", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf_home" / "token"))


@pytest.fixture
def hub(shared_root, standins):
    with serve(Files(standins, shared_root), hub=True) as server:
        server.source = datafetch.HubSource(endpoint=server.url)
        yield server


@pytest.fixture
def mirror(shared_root, standins):
    with serve(Files(standins, shared_root), hub=False) as server:
        server.source = datafetch.UrlSource(server.url, retries=0)
        yield server


def _final_files(root: Path) -> list[str]:
    """Everything under the data root (the staging folder must be gone)."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("matchopt data: error: "), err
    return err[0]


# --------------------------------------------------------------------------------------------------
# Manifest and check


def test_manifest_matches_the_shared_checksums(shared_root):
    manifest = datafetch.load_manifest()
    assert list(manifest) == ["tfbind8", "tfbind10", "superconductor", "hopper", "ant", "dkitty"]
    assert [e.path for e in manifest["tfbind8"]] == TF8
    assert len(manifest["tfbind10"]) == 168 and all(
        e.path.endswith(".npy") for e in manifest["tfbind10"]
    )
    sums = {}
    for sums_file, folder in (
        (shared_root / "SHA256SUMS", ""),
        (shared_root / "superconductor/SHA256SUMS", "superconductor/"),
    ):
        for line in sums_file.read_text().splitlines():
            digest, rel = line.split(None, 1)
            sums[folder + rel.lstrip("*")] = digest
    for e in manifest["tfbind8"] + manifest["superconductor"]:
        assert (e.sha256, e.size) == (sums[e.path], (shared_root / e.path).stat().st_size), e.path
    assert len(manifest["superconductor"]) == 10
    # TF-Bind-10: the manifest holds the .npy's hash, which the shared folder's PROVENANCE.md lists.
    provenance = (shared_root / "PROVENANCE.md").read_text()
    assert all(f"`{e.sha256}`" in provenance for e in manifest["tfbind10"])
    # Files without a published sha256 carry what Design-Bench wrote instead.
    ant = {e.path: e for e in manifest["ant"]}
    assert ant[ANT_X].shape == (25009, 60) and ant[ANT_Y].value_range == (-386.90036, 590.24445)
    assert ant[ANT_POLICY].policy == "ant" and ant[ANT_X].sha256 is None
    hopper = manifest["hopper"]
    assert [e.sha256[:8] for e in hopper] == ["da93f203", "8f04be4b"] and hopper[0].shape == (
        3200,
        5126,
    )


def test_check_the_shared_folder(shared_root, capsys):
    for task in ("tfbind8", "superconductor"):
        assert all(
            s.ok and s.sha256 == s.entry.sha256 for s in datafetch.check_task(task, shared_root)
        )
    tf10 = datafetch.check_task(
        "tfbind10", shared_root, fast=True
    )  # .npy.gz: the size from its trailer
    assert len(tf10) == 168 and all(s.ok and s.path.name.endswith(".npy.gz") for s in tf10)
    root = str(shared_root)
    assert (
        data_command.main(
            ["check", "--fast", "--data-root", root, "tfbind8", "tfbind10", "superconductor"]
        )
        == 0
    )
    assert "all 3 task(s) complete" in capsys.readouterr().out
    assert data_command.main(["check", "--fast", "--data-root", root]) == 1
    out = capsys.readouterr().out
    assert "matchopt data fetch --data-root" in out and out.rstrip().endswith("hopper ant dkitty")


def test_check_reports_missing_and_bad(tmp_path, shared_root):
    root = tmp_path / "data"
    target = root / TF8[0]
    target.parent.mkdir(parents=True)
    data = bytearray((shared_root / TF8[0]).read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    assert [s.state for s in datafetch.check_task("tfbind8", root)] == ["wrong sha256", "missing"]
    assert [s.state for s in datafetch.check_task("tfbind8", root, fast=True)] == [
        "present",
        "missing",
    ]
    target.write_bytes(b"short")
    assert datafetch.check_task("tfbind8", root, fast=True)[0].state == "wrong size"
    # A file without checksums is checked by structure until fetch locks it.
    (root / "ant_morphology").mkdir()
    np.save(root / ANT_Y, np.zeros((25009, 1), np.float32))
    status = datafetch.check_task("AntMorphology-Exact-v0", root)[1]
    assert status.state == "bad content" and "published normalizers" in status.detail
    with pytest.raises(DataError, match="does not exist"):
        datafetch.check_task("tfbind8", tmp_path / "nowhere")
    with pytest.raises(
        DataError, match="known tasks: ant, dkitty, hopper, superconductor, tfbind10, tfbind8"
    ):
        datafetch.check_task("tfbind9", root)


# --------------------------------------------------------------------------------------------------
# Fetch from the hub (huggingface_hub against the local hub-like server)


def test_hub_fetch_into_empty_root(tmp_path, hub, shared_root):
    root = tmp_path / "new" / "data"  # missing: fetch creates it
    for task in ("tfbind8", "superconductor"):
        results = datafetch.fetch_task(task, root, hub.source)
        assert {r.action for r in results} == {"downloaded"}
        assert all(s.ok for s in datafetch.check_task(task, root))
    for rel in TF8:
        assert (root / rel).read_bytes() == (shared_root / rel).read_bytes()
    assert {m for m, *_ in hub.requests} == {
        "HEAD",
        "GET",
    }  # hf_hub_download's metadata call, then the file
    assert _final_files(root) == sorted(
        e.path for t in ("tfbind8", "superconductor") for e in datafetch.load_manifest()[t]
    )
    assert not (
        tmp_path / "hf_home" / "hub"
    ).exists()  # local_dir: nothing went to the hub client's cache
    hub.requests.clear()
    assert {r.action for r in datafetch.fetch_task("tfbind8", root, hub.source)} == {"present"}
    assert hub.requests == []


@pytest.mark.slow
def test_unpublished_files_are_checked_by_structure_then_locked(tmp_path, hub, capsys):
    pytest.importorskip("mujoco")
    root = tmp_path / "data"
    for task in ("ant", "dkitty"):
        assert {r.action for r in datafetch.fetch_task(task, root, hub.source)} == {"downloaded"}
    lock = json.loads((root / datafetch.LOCK_NAME).read_text())["files"]
    assert (
        len(lock) == 6
        and lock[ANT_X]["sha256"] == hashlib.sha256((root / ANT_X).read_bytes()).hexdigest()
    )
    assert data_command.main(["check", "--data-root", str(root), "ant", "dkitty"]) == 0
    capsys.readouterr()
    # The Ant oracle runs on what was fetched, with no further step.
    from lightning_matchopt.tasks import make_task

    task = make_task("ant", str(root))
    assert task.oracle_unavailable() is None
    assert np.isfinite(task.oracle(np.load(root / ANT_X)[:1])).all()
    # A locked file that changes is caught by check, and fetch restores the locked bytes.
    data = bytearray((root / ANT_X).read_bytes())
    data[-1] ^= 0xFF
    (root / ANT_X).write_bytes(bytes(data))
    status = datafetch.check_task("ant", root)[0]
    assert status.state == "wrong sha256" and datafetch.LOCK_NAME in status.detail
    assert data_command.main(["check", "--data-root", str(root), "ant"]) == 1
    assert "changed since its first fetch" in capsys.readouterr().out
    assert [r.action for r in datafetch.fetch_task("ant", root, hub.source)] == [
        "downloaded",
        "present",
        "present",
    ]
    assert all(s.ok for s in datafetch.check_task("ant", root))


def test_wrong_shape_and_wrong_range_are_rejected(tmp_path, hub, standins):
    root = tmp_path / "data"
    hub.files = Files(tmp_path / "bad", standins)
    (tmp_path / "bad" / "ant_morphology").mkdir(parents=True)
    np.save(tmp_path / "bad" / ANT_X, np.zeros((25009, 59), np.float32))
    with pytest.raises(DataError) as info:
        datafetch.fetch_task("ant", root, hub.source)
    message = str(info.value)
    assert "\n" not in message and message.startswith(
        f"{ANT_X} is not Design-Bench's file: holds float32 of shape (25009, 59)"
    )
    np.save(tmp_path / "bad" / ANT_X, np.zeros((25009, 60), np.float32))
    np.save(
        tmp_path / "bad" / ANT_Y, np.linspace(-386.9, 590.2, 25009, dtype=np.float32).reshape(-1, 1)
    )
    hub.files = Files(tmp_path / "bad", standins)
    with pytest.raises(
        DataError, match=r"ant_morphology-y-0.npy is not .* not over the published normalizers"
    ):
        datafetch.fetch_task("ant", root, hub.source)
    assert _final_files(root) == [
        ANT_X,
        datafetch.LOCK_NAME,
    ]  # x passed (zeros are a valid shape); y was deleted


def _hopper_parquet(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """A stand-in for sci-modeling-bench's data/hopper_controller/policies.parquet, rows shuffled.

    The columns, types and meaning as build_hopper_controller_release writes them (xukp20/sci-modeling-bench
    4a4f335, suites/design_bench/hopper_controller/build.py); returns the x and y it stands for.
    """
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    x = np.zeros((3200, 5126), np.float32)
    x[:, 0] = np.arange(3200) / 3200  # the row order is visible
    y = _y(3200, 87.93491, 1361.6106, 3)
    order = np.random.default_rng(4).permutation(3200)
    weights = pa.FixedSizeListArray.from_arrays(pa.array(x[order].reshape(-1)), 5126)
    table = pa.table(
        {
            "source_index": pa.array(order.astype(np.int32)),
            "policy_identity": pa.array([f"id{i}" for i in order]),
            "policy_weights": weights,
            "source_return": pa.array(y[order, 0]),
            "mean_return": pa.array(y[order, 0].astype(np.float64) + 1),
        }
    )
    (folder / "data" / "hopper_controller").mkdir(parents=True)
    pq.write_table(table, folder / "data" / "hopper_controller" / "policies.parquet")
    return x, y


@pytest.mark.slow
def test_hopper_from_its_second_source(tmp_path, hub, monkeypatch):
    x, y = _hopper_parquet(tmp_path / "smb")
    hub.repos[HOPPER_REPO] = (Files(tmp_path / "smb"), {r"data/hopper_controller/policies\.parquet": ""}, {HOPPER_COMMIT})
    root = tmp_path / "data"
    # Written in Design-Bench's layout, then checked against the original pins: a stand-in is rejected, in one line.
    with pytest.raises(DataError) as info:
        datafetch.fetch_task("hopper", root, hub.source)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{HOPPER[0]}: sha256 mismatch: expected da93f203")
    assert f"from hf://datasets/{HOPPER_REPO}@d8b9ea3c78ed/data/hopper_controller/policies.parquet" in message
    assert _final_files(root) == []
    assert ("GET", HOPPER[0], None) not in hub.requests  # the mirror 404s Hopper (HEAD), then the dataset
    assert ("HEAD", HOPPER[0], None) in hub.requests
    # Against pins computed from what the stand-in stands for, the same bytes are accepted.
    pinned = []
    for array in (x, y):
        np.save(tmp_path / "expected.npy", array)
        pinned.append(hashlib.sha256((tmp_path / "expected.npy").read_bytes()).hexdigest())
    manifest = datafetch.load_manifest()
    manifest["hopper"] = [dataclasses.replace(e, sha256=h) for e, h in zip(manifest["hopper"], pinned, strict=True)]
    monkeypatch.setattr(manifest_module, "load_manifest", lambda: manifest)
    assert [r.action for r in datafetch.fetch_task("hopper", root, hub.source)] == ["downloaded", "downloaded"]
    assert _final_files(root) == HOPPER  # pinned by the manifest: no lock entry, no parquet left
    np.testing.assert_array_equal(np.load(root / HOPPER[0]), x)
    np.testing.assert_array_equal(np.load(root / HOPPER[1]), y)
    # A revision the dataset does not have: the line names both sources tried and where to put the files by hand.
    (root / HOPPER[0]).unlink()
    with pytest.raises(DataError) as info:
        datafetch.fetch_task(
            "hopper", root, sources=[hub.source, datafetch.HopperSource("0" * 40, endpoint=hub.url)]
        )
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{HOPPER[0]}: not found; tried hf://datasets/beckhamc/")
    assert f"Place Design-Bench's file by hand at {root / HOPPER[0]} (sha256 " in message
    assert _final_files(root) == [HOPPER[1]]


@pytest.mark.slow
def test_a_file_the_mirror_lacks_is_a_404_with_advice(tmp_path, hub, capsys):
    """The test hub serves only the names known to be on the mirror: Hopper is not among them."""
    root = tmp_path / "data"
    with pytest.raises(DataError) as info:
        datafetch.fetch_task("hopper", root, sources=[hub.source])
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{HOPPER[0]}: not found; tried hf://datasets/beckhamc/")
    assert "EntryNotFound" in message and f"by hand at {root / HOPPER[0]}" in message
    assert f"'matchopt data check --data-root {root} hopper'" in message
    assert _final_files(root) == []
    # From the command line: one line, exit 2 (the second source is not served here either).
    env_root = str(tmp_path / "cli")
    assert data_command.main(["fetch", "-q", "--base-url", hub.url + "/nowhere", "--data-root", env_root, "tfbind8"]) == 2
    assert "not found; tried" in _error_line(capsys)


# --------------------------------------------------------------------------------------------------
# Superconductor: Design-Bench's original shards, accepted by structure and values


def _original_superconductor(folder: Path, shared_root: Path, change=None) -> None:
    """Shards with the rebuild's values but other bytes (a version 2.0 .npy header), as Design-Bench's could be."""
    for e in datafetch.load_manifest()["superconductor"]:
        array = np.load(shared_root / e.path)
        if change is not None:
            array = change(e.path, array)
        (folder / e.path).parent.mkdir(parents=True, exist_ok=True)
        with open(folder / e.path, "wb") as f:
            np.lib.format.write_array(f, array, version=(2, 0))


@pytest.mark.parametrize("reference", ["csv", "rebuild"])
def test_superconductor_original_accepted_by_structure_and_values(tmp_path, hub, shared_root, reference):
    _original_superconductor(tmp_path / "orig", shared_root)
    hub.files = Files(tmp_path / "orig")
    root = tmp_path / "data"
    given = shared_root / "sources/uci_superconductivity/unique_m.csv" if reference == "csv" else shared_root
    results = datafetch.fetch_task("superconductor", root, hub.source, reference=given)
    assert [r.action for r in results] == ["downloaded"] * 10
    lock = json.loads((root / datafetch.LOCK_NAME).read_text())["files"]
    for e in datafetch.load_manifest()["superconductor"]:
        digest = hashlib.sha256((root / e.path).read_bytes()).hexdigest()
        assert digest != e.sha256 and lock[e.path]["sha256"] == digest
        assert "values" in lock[e.path]["accepted_by"]
    assert all(s.ok for s in datafetch.check_task("superconductor", root))
    assert data_command.main(["check", "--data-root", str(root), "superconductor"]) == 0
    assert {r.action for r in datafetch.fetch_task("superconductor", root, hub.source)} == {"present"}
    # The rebuild stays valid: put back, it matches the manifest's pins.
    for e in datafetch.load_manifest()["superconductor"][:1]:
        (root / e.path).write_bytes((shared_root / e.path).read_bytes())
    assert all(s.ok for s in datafetch.check_task("superconductor", root))


def test_superconductor_changed_original_rejected_in_one_line(tmp_path, hub, shared_root):
    def bump(path, array):
        if path.endswith("-y-2.npy"):
            array = array.copy()
            array[10, 0] += 0.5
        return array

    _original_superconductor(tmp_path / "changed", shared_root, bump)
    hub.files = Files(tmp_path / "changed")
    root = tmp_path / "data"
    with pytest.raises(DataError) as info:
        datafetch.fetch_task("superconductor", root, hub.source, reference=shared_root)
    message = str(info.value)
    assert "\n" not in message and message.startswith("superconductor: the shards from hf://datasets/beckhamc/")
    assert "1 row(s) differ from design_bench_data beyond float32 precision" in message
    assert "first: row 10010, y" in message
    assert _final_files(root) == []
    # A wrong shape is caught file by file, before any value is compared.
    def narrow(path, array):
        return array[:, :85] if path.endswith("-x-0.npy") else array

    _original_superconductor(tmp_path / "narrow", shared_root, narrow)
    hub.files = Files(tmp_path / "narrow")
    shape = r"superconductor-x-0.npy is not Design-Bench's file: holds float32 of shape \(5000, 85\)"
    with pytest.raises(DataError, match=shape):
        datafetch.fetch_task("superconductor", root, hub.source, reference=shared_root)
    assert _final_files(root) == []
    # No reference at hand: accepted by structure alone, and the lock says so.
    _original_superconductor(tmp_path / "orig", shared_root)
    hub.files = Files(tmp_path / "orig")
    datafetch.fetch_task("superconductor", root, hub.source)
    lock = json.loads((root / datafetch.LOCK_NAME).read_text())["files"]
    assert all("no UCI file or rebuild at hand" in v["accepted_by"] for v in lock.values())


# --------------------------------------------------------------------------------------------------
# Oracle fidelity


@pytest.mark.slow
def test_oracle_fidelity_on_the_real_superconductor_files(shared_root, tmp_path, monkeypatch, capsys):
    pytest.importorskip("sklearn")
    monkeypatch.setenv("MATCHOPT_CACHE_DIR", str(tmp_path / "cache"))
    argv = ["check", "--data-root", str(shared_root), "--oracle", "superconductor", "--n", "300", "--seed", "1"]
    assert data_command.main(argv) == 0
    out = capsys.readouterr().out
    assert "oracle vs stored scores on 300 of 17014 offline designs (seed 1" in out
    spearman = float(re.search(r"^ +Spearman +(\S+)$", out, re.M).group(1))
    assert 0.7 < spearman < 1.0 and "mean absolute error" in out and "worst 5 rows:" in out
    assert data_command.main(["check", "--data-root", str(shared_root), "--oracle", "tfbind8"]) == 2
    assert "a lookup of them" in _error_line(capsys)
    assert data_command.main(["check", "--data-root", str(shared_root), "--n", "5"]) == 2
    assert "use them with --oracle" in _error_line(capsys)


def test_oracle_fidelity_without_its_simulator_is_one_line(tmp_path, standins, monkeypatch, capsys):
    from lightning_matchopt.tasks import fidelity, make_task

    task = make_task("ant", str(standins))
    monkeypatch.setattr(type(task), "oracle_unavailable", lambda self: "ant: the oracle needs mujoco: pip install 'x'")
    with pytest.raises(DataError, match=r"^ant: the oracle needs mujoco: .*\(the fidelity check runs the oracle\)$"):
        fidelity.measure(task, 8)
    assert fidelity.spearman([1, 2, 3, 4], [10, 20, 30, 25]) == pytest.approx(0.8)
    f = fidelity.Fidelity("t", 4, np.arange(4), np.array([1.0, 2, 3, 4]), np.array([1.0, 2, 3, 9]), 10.0, 0.0)
    assert f.mae == 1.25 and f.worst(1) == [(3, 4.0, 9.0)]


def test_corrupted_file_rejected(tmp_path, hub, capsys):
    hub.corrupt.add(TF8[1])
    root = tmp_path / "data"
    expected = datafetch.load_manifest()["tfbind8"][1].sha256
    with pytest.raises(DataError) as info:
        datafetch.fetch_task("tfbind8", root, hub.source)
    message = str(info.value)
    assert (
        TF8[1] in message
        and expected in message
        and "sha256 mismatch" in message
        and "\n" not in message
    )
    assert _final_files(root) == [TF8[0]]  # the good file before it was kept


@pytest.mark.slow
def test_interrupted_download_resumes_or_ends_in_one_line(tmp_path, hub, shared_root):
    root = tmp_path / "data"
    hub.cut[TF8[0]] = 100_000  # the connection drops once: the hub client tries again
    assert [r.action for r in datafetch.fetch_task("tfbind8", root, hub.source)] == [
        "downloaded"
    ] * 2
    assert hub.requests.count(("GET", TF8[0], None)) == 2  # under its 10 MB chunk: it starts over
    assert (root / TF8[0]).read_bytes() == (shared_root / TF8[0]).read_bytes()
    hub.cut[datafetch.load_manifest()["superconductor"][0].path] = 1000
    hub.down_after_cut = True  # ... and then the server is gone
    with pytest.raises(DataError) as info:
        datafetch.fetch_task("superconductor", root, hub.source)
    message = str(info.value)
    assert "\n" not in message and "superconductor-x-0.npy: download from hf://datasets/" in message
    assert message.endswith("(run fetch again)")
    assert _final_files(root) == TF8


def test_hub_errors_name_the_fix(tmp_path, hub):
    with pytest.raises(
        DataError, match=r"RevisionNotFoundError: .*\(check the task name, --repo, --revision"
    ):
        datafetch.fetch_task(
            "tfbind8", tmp_path, datafetch.HubSource(revision="v9", endpoint=hub.url)
        )
    with pytest.raises(DataError, match="RepositoryNotFoundError"):
        datafetch.fetch_task(
            "tfbind8", tmp_path, datafetch.HubSource("someone/else", endpoint=hub.url)
        )


@pytest.mark.slow
def test_cli_fetch_through_hf_endpoint(tmp_path, hub):
    """The command a user runs, in a fresh process: the hub client reads HF_ENDPOINT on import."""
    root = tmp_path / "data"
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_TELEMETRY": "1"}
    command = [
        sys.executable,
        "-m",
        "lightning_matchopt.commands.data",
        "fetch",
        "--data-root",
        str(root),
        "tfbind8",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (
        "tfbind8: 2 file(s) ok" in done.stdout and "beckhamc/design_bench_data@main" in done.stdout
    )
    assert all(s.ok for s in datafetch.check_task("tfbind8", root))


# --------------------------------------------------------------------------------------------------
# Fetch from a plain mirror (pooch), or a folder (file://)


def test_mirror_fetch(tmp_path, mirror, shared_root):
    root = tmp_path / "data"
    for task in ("tfbind8", "superconductor", "ant"):
        assert {r.action for r in datafetch.fetch_task(task, root, mirror.source)} == {"downloaded"}
        assert all(s.ok for s in datafetch.check_task(task, root))
    assert all(method == "GET" and rng is None for method, _, rng in mirror.requests)
    assert (root / TF8[1]).read_bytes() == (shared_root / TF8[1]).read_bytes()


def test_mirror_failures_end_in_one_line(tmp_path, mirror):
    root = tmp_path / "data"
    mirror.corrupt.add(TF8[1])
    with pytest.raises(DataError, match=r"sha256 mismatch"):
        datafetch.fetch_task("tfbind8", root, mirror.source)
    mirror.cut[TF8[1]] = 1000
    with pytest.raises(DataError) as info:
        datafetch.fetch_task("tfbind8", root, mirror.source)
    assert "\n" not in str(info.value) and "IncompleteRead" in str(info.value)
    with pytest.raises(DataError, match=r"404 .*\(check the task name"):
        datafetch.fetch_task(
            "tfbind8", root, datafetch.UrlSource(mirror.url + "/nowhere", retries=0)
        )
    assert _final_files(root) == [TF8[0]]


def test_file_url(tmp_path, shared_root):
    root = tmp_path / "data"
    source = datafetch.UrlSource(shared_root.resolve().as_uri())
    assert {r.action for r in datafetch.fetch_task("tfbind8", root, source)} == {"downloaded"}
    assert all(s.ok for s in datafetch.check_task("tfbind8", root))
    with pytest.raises(DataError, match="must start with http"):
        datafetch.UrlSource("ftp://example.org/data")


# --------------------------------------------------------------------------------------------------
# Command line


def test_cli(tmp_path, mirror, shared_root, capsys, monkeypatch):
    assert data_command.main(["list"]) == 0
    out = capsys.readouterr().out
    assert " 168 " in out and "structure, then sha256 locked on first fetch" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    for argv in (
        ["check", "--data-root", str(empty), "tfbind9"],
        ["fetch", "--base-url", mirror.url, "--data-root", str(empty), "tfbind8", "nope"],
    ):
        assert data_command.main(argv) == 2
        line = _error_line(capsys)
        assert "unknown task" in line and "known tasks: ant, dkitty, hopper" in line
    assert mirror.requests == []  # names are checked before anything is downloaded
    assert data_command.main(["fetch", "--base-url", mirror.url, "--revision", "v1", "tfbind8"]) == 2
    assert "use them with --source hf" in _error_line(capsys)
    assert data_command.main(["fetch", "--source", "hf", "--base-url", mirror.url, "tfbind8"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err

    root = tmp_path / "fetched"
    assert (
        data_command.main(["fetch", "--base-url", mirror.url, "--data-root", str(root), "tfbind8"])
        == 0
    )
    assert "tfbind8: 2 file(s) ok" in capsys.readouterr().out
    monkeypatch.setenv("MATCHOPT_DATA_ROOT", str(root))  # the default data root
    assert data_command.main(["check", "tfbind8"]) == 0
    capsys.readouterr()
    mirror.corrupt.add(TF8[1])
    (root / TF8[1]).unlink()
    assert data_command.main(["fetch", "-q", "--base-url", mirror.url, "tfbind8"]) == 2
    assert TF8[1] in _error_line(capsys)


def test_missing_library_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails as if not installed
    assert data_command.main(["fetch", "--data-root", str(tmp_path), "tfbind8"]) == 2
    assert _error_line(capsys).endswith(
        "fetch needs huggingface_hub: pip install 'lightning_matchopt[fetch]'"
    )
