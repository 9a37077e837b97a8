"""datafetch: manifest, check, and fetch from a real local HTTP server (127.0.0.1 only)."""

import hashlib
import http.server
import os
import shutil
import socket
import threading
from pathlib import Path

import pytest

from lightning_matchopt import datafetch
from lightning_matchopt.errors import DataError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "design_bench_data"
TF8 = ["tf_bind_8-SIX6_REF_R1/tf_bind_8-x-0.npy", "tf_bind_8-SIX6_REF_R1/tf_bind_8-y-0.npy"]


def _shared_root() -> Path:
    for root in (os.environ.get("MATCHOPT_DATA_ROOT"), SHARED):
        if root and (Path(root) / "tf_bind_8-SIX6_REF_R1").is_dir():
            return Path(root)
    pytest.skip(f"Design-Bench data not found under {SHARED} or $MATCHOPT_DATA_ROOT")


@pytest.fixture(scope="module")
def shared_root() -> Path:
    return _shared_root()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """Requests to 127.0.0.1 must never be routed through a proxy from the environment."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


class MirrorHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.root`` with ``Range: bytes=N-`` support and injectable faults."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        server = self.server
        rel = self.path.lstrip("/")
        server.requests.append((rel, self.headers.get("Range")))
        path = server.root / rel
        if ".." in Path(rel).parts or not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        if rel in server.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        start = 0
        range_header = self.headers.get("Range")
        if range_header and not server.ignore_range:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = server.cut_after.pop(rel, None)  # once
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002
        pass


@pytest.fixture
def mirror(tmp_path, shared_root):
    """A served copy of the two TF-Bind-8 files; yields (server, base_url)."""
    root = tmp_path / "mirror"
    for rel in TF8:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared_root / rel, root / rel)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MirrorHandler)
    server.daemon_threads = True
    server.root = root
    server.requests = []
    server.corrupt = set()
    server.cut_after = {}
    server.ignore_range = False
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _fetch(task, root, url, **kw):
    kw.setdefault("retry_wait", 0.0)
    kw.setdefault("timeout", 5.0)
    return datafetch.fetch_task(task, root, url, **kw)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------------


def test_manifest_matches_sha256sums(shared_root):
    sums_file = shared_root / "SHA256SUMS"
    if not sums_file.is_file():
        pytest.skip(f"no SHA256SUMS in {shared_root}")
    sums = {}
    for line in sums_file.read_text().splitlines():
        digest, rel = line.split(None, 1)
        sums[rel.lstrip("*")] = digest
    manifest = datafetch.load_manifest()
    assert sorted(manifest) == ["tfbind10", "tfbind8"]
    assert [e.path for e in manifest["tfbind8"]] == TF8
    assert len(manifest["tfbind10"]) == 168
    listed = [e for entries in manifest.values() for e in entries]
    assert {e.path for e in listed} == set(sums)
    for entries in manifest.values():
        assert [e.path for e in entries] == sorted(e.path for e in entries)
    for e in listed:
        assert e.sha256 == sums[e.path], e.path
        assert e.size == (shared_root / e.path).stat().st_size, e.path


def test_check_shared_folder_complete(shared_root):
    tf8 = datafetch.check_task("tfbind8", shared_root)
    assert [s.state for s in tf8] == ["present", "present"]
    assert all(s.sha256 == s.entry.sha256 for s in tf8)
    if not (shared_root / "tf_bind_10-pho4").is_dir():
        pytest.skip("no TF-Bind-10 files in the shared data root")
    tf10 = datafetch.check_task("tfbind10", shared_root, fast=True)
    assert len(tf10) == 168 and all(s.ok for s in tf10)


def test_check_reports_missing_and_bad(tmp_path, shared_root):
    root = tmp_path / "data"
    target = root / TF8[0]
    target.parent.mkdir(parents=True)
    data = bytearray((shared_root / TF8[0]).read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    states = [s.state for s in datafetch.check_task("tfbind8", root)]
    assert states == ["wrong sha256", "missing"]
    fast = datafetch.check_task("tfbind8", root, fast=True)
    assert [s.state for s in fast] == ["present", "missing"]
    target.write_bytes(b"short")
    assert datafetch.check_task("tfbind8", root, fast=True)[0].state == "wrong size"
    with pytest.raises(DataError, match="does not exist"):
        datafetch.check_task("tfbind8", tmp_path / "nowhere")
    with pytest.raises(DataError, match="known tasks: tfbind10, tfbind8"):
        datafetch.check_task("tfbind9", root)


def test_fetch_into_empty_root(tmp_path, mirror, shared_root):
    server, url = mirror
    root = tmp_path / "new" / "data"  # missing: fetch creates it
    results = _fetch("tfbind8", root, url)
    assert [r.action for r in results] == ["downloaded", "downloaded"]
    for rel in TF8:
        assert (root / rel).read_bytes() == (shared_root / rel).read_bytes()
    assert all(s.ok for s in datafetch.check_task("tfbind8", root))
    assert not list(root.rglob("*.part"))
    assert all(r is None for _, r in server.requests)
    # Everything present: nothing is downloaded again.
    server.requests.clear()
    assert [r.action for r in _fetch("tfbind8", root, url)] == ["present", "present"]
    assert server.requests == []


def test_interrupted_download_resumes(tmp_path, mirror, shared_root):
    server, url = mirror
    server.cut_after[TF8[0]] = 100_000
    root = tmp_path / "data"
    results = _fetch("tfbind8", root, url)
    assert results[0].action == "resumed"
    assert results[0].downloaded == (shared_root / TF8[0]).stat().st_size
    assert (TF8[0], "bytes=100000-") in server.requests
    assert _sha(root / TF8[0]) == results[0].entry.sha256
    assert all(s.ok for s in datafetch.check_task("tfbind8", root))


def test_partial_file_from_earlier_run(tmp_path, mirror, shared_root):
    server, url = mirror
    root = tmp_path / "data"
    target = root / TF8[1]
    target.parent.mkdir(parents=True)
    original = (shared_root / TF8[1]).read_bytes()
    Path(str(target) + ".part").write_bytes(original[:12_345])
    assert _fetch("tfbind8", root, url)[1].action == "resumed"
    assert (TF8[1], "bytes=12345-") in server.requests
    assert target.read_bytes() == original
    # A server that ignores Range (200): the download starts over and is still right.
    target.unlink()
    Path(str(target) + ".part").write_bytes(original[:12_345])
    server.ignore_range = True
    assert _fetch("tfbind8", root, url)[1].action == "downloaded"
    assert target.read_bytes() == original


def test_bad_partial_file_is_redownloaded(tmp_path, mirror, shared_root):
    server, url = mirror
    root = tmp_path / "data"
    target = root / TF8[1]
    target.parent.mkdir(parents=True)
    Path(str(target) + ".part").write_bytes(b"\0" * 5000)  # wrong bytes from an earlier run
    assert _fetch("tfbind8", root, url)[1].action == "downloaded"
    assert target.read_bytes() == (shared_root / TF8[1]).read_bytes()
    assert [r for p, r in server.requests if p == TF8[1]] == ["bytes=5000-", None]
    # A full-size but wrong .part (an earlier run stopped before verifying): fetched again.
    target.unlink()
    Path(str(target) + ".part").write_bytes(b"\0" * datafetch.load_manifest()["tfbind8"][1].size)
    assert _fetch("tfbind8", root, url)[1].action == "downloaded"
    assert target.read_bytes() == (shared_root / TF8[1]).read_bytes()


def test_corrupted_file_rejected(tmp_path, mirror, capsys):
    server, url = mirror
    server.corrupt.add(TF8[1])
    root = tmp_path / "data"
    expected = datafetch.load_manifest()["tfbind8"][1].sha256
    with pytest.raises(DataError) as info:
        _fetch("tfbind8", root, url)
    message = str(info.value)
    assert TF8[1] in message and expected in message and "sha256 mismatch" in message
    assert "\n" not in message
    assert not (root / TF8[1]).exists()
    assert not Path(str(root / TF8[1]) + ".part").exists()
    assert (root / TF8[0]).is_file()  # the good file before it was kept
    code = datafetch.main(["fetch", "-q", "--base-url", url, "--data-root", str(root), "tfbind8"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("matchopt data: error: ") and TF8[1] in err[0]


def test_connection_refused_gives_up(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match="failed after 3 tries"):
        _fetch("tfbind8", tmp_path / "data", f"http://127.0.0.1:{port}", retries=2)


def test_missing_file_on_mirror(tmp_path, mirror):
    server, url = mirror
    (server.root / TF8[1]).unlink()
    with pytest.raises(DataError, match="HTTP 404"):
        _fetch("tfbind8", tmp_path / "data", url)


def test_file_url(tmp_path, shared_root):
    root = tmp_path / "data"
    results = datafetch.fetch_task("tfbind8", root, shared_root.resolve().as_uri())
    assert [r.action for r in results] == ["downloaded", "downloaded"]
    assert all(s.ok for s in datafetch.check_task("tfbind8", root))
    with pytest.raises(DataError, match="must start with http"):
        datafetch.fetch_task("tfbind8", root, "ftp://example.org/data")


def test_cli(tmp_path, mirror, shared_root, capsys, monkeypatch):
    server, url = mirror
    assert datafetch.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "tfbind8" in out and "tfbind10" in out and " 168 " in out

    assert datafetch.main(["check", "--data-root", str(shared_root), "tfbind8"]) == 0
    assert "all 1 task(s) complete" in capsys.readouterr().out

    empty = tmp_path / "empty"
    empty.mkdir()
    assert datafetch.main(["check", "--fast", "--data-root", str(empty)]) == 1
    out = capsys.readouterr().out
    assert "INCOMPLETE" in out and "fetch --base-url URL" in out

    assert datafetch.main(["check", "--data-root", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "does not exist" in err[0]

    for argv in (
        ["check", "--data-root", str(empty), "tfbind9"],
        ["fetch", "--base-url", url, "--data-root", str(empty), "tfbind8", "nope"],
    ):
        assert datafetch.main(argv) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1
        assert err[0].startswith("matchopt data: error: unknown task")
        assert "known tasks: tfbind10, tfbind8" in err[0]
    assert server.requests == []  # names are checked before anything is downloaded

    root = tmp_path / "fetched"
    assert datafetch.main(["fetch", "--base-url", url, "--data-root", str(root), "tfbind8"]) == 0
    captured = capsys.readouterr()
    assert "tfbind8: 2 file(s) ok" in captured.out
    assert datafetch.main(["check", "--data-root", str(root), "tfbind8"]) == 0
    capsys.readouterr()

    monkeypatch.setenv("MATCHOPT_DATA_ROOT", str(root))  # the default data root
    assert datafetch.main(["check", "tfbind8"]) == 0
    capsys.readouterr()

    assert datafetch.main(["fetch", "tfbind8"]) == 2  # argparse: --base-url is required
    assert "--base-url" in capsys.readouterr().err


def test_tasks_without_checksums_are_listed_and_refused_in_one_line(capsys):
    from lightning_matchopt.datafetch import main as data_main

    assert data_main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "hopper_controller/ (no published checksums" in listing and "tfbind8" in listing
    assert data_main(["check", "--data-root", ".", "Superconductor-RandomForest-v0"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("matchopt data: error: superconductor: this project knows no checksums") and "\n" not in error
