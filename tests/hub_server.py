"""Local servers for the fetch tests: the Hugging Face hub's file endpoint, and a plain HTTP mirror.

Both serve folders in Design-Bench's layout on 127.0.0.1 only; a stored ``NAME.npy.gz`` is served
as ``NAME.npy``, gunzipped (the hub holds plain ``.npy``). The hub server answers what
``hf_hub_download`` asks through ``HF_ENDPOINT``: ``HEAD`` and ``GET`` on
``/datasets/{repo}/resolve/{revision}/{path}`` with ``X-Repo-Commit``, ``ETag`` / ``X-Linked-Etag``
(the sha256, as the hub gives for LFS files), ``X-Linked-Size``, ``Content-Length`` and ``Range``.
Faults can be injected: a corrupted byte, a connection cut mid-body, a server that then goes down.
The hub server serves only the paths the mirror is known to hold (``MIRROR_LAYOUT``, each with its
source) and 404s the rest, as the real hub does for a file it lacks; a second repository (Hopper's
``sci-modeling-bench/design-bench``) can be added to ``server.repos``.

As a script it serves folders like the hub until interrupted (for trying ``matchopt data fetch``)::

    python tests/hub_server.py ../shared/design_bench_data [MORE_FOLDERS ...] [--port 8000]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import http.server
import re
import socket
import threading
import urllib.parse
from pathlib import Path

REPO = "beckhamc/design_bench_data"
COMMIT = "0123456789abcdef0123456789abcdef01234567"  # stands for a pinned commit (none is published)

# What the hub mirror is known to hold, and the source that shows it (docs/tasks-and-data.md, "Where each
# file comes from", lists the same). Anything else gets the hub's 404, so a test catches a wrong name.
# The mirror's root is Design-Bench's design_bench_data/ with the same relative paths (code that
# downloads from it: hf_hub_download(repo_id, filename=<Design-Bench's relative path>)), so a folder
# shown to be there holds Design-Bench's file names.
MIRROR_LAYOUT = {
    r"tf_bind_8-SIX6_REF_R1/tf_bind_8-[xy]-0\.npy": "TF-Bind-8: names confirmed (issue #21; a README links "
    "beckhamc/design_bench_data/tree/main/tf_bind_8-SIX6_REF_R1; a downloader script fetches both shards)",
    r"tf_bind_10-pho4/tf_bind_10-[xy]-([0-9]|[1-7][0-9]|8[0-3])\.npy": "TF-Bind-10: the folder, in setup scripts' "
    "`hf download beckhamc/design_bench_data --include 'tf_bind_10-pho4/*'`; shard names Design-Bench's",
    r"superconductor/superconductor-[xy]-[0-4]\.npy": "Superconductor: the folder (issue #21; `--include "
    "'superconductor/*'`); shard names Design-Bench's",
    r"ant_morphology/(ant_morphology-[xy]-0\.npy|ant_oracle\.pkl)": "Ant: downloaded from .../resolve/main/ant_morphology/ "
    "and scored by a third party (issue #21)",
    r"dkitty_morphology/(dkitty_morphology-[xy]-0\.npy|dkitty_oracle\.pkl)": "D'Kitty: listed by the same third "
    "party (issue #21)",
}
# Hopper's second source: xukp20/sci-modeling-bench 4a4f335, suites/design_bench/hopper_controller/dataset.py and build.py.
HOPPER_REPO = "sci-modeling-bench/design-bench"
HOPPER_COMMIT = "d8b9ea3c78ed33edf0869a427940a0651eb49f52"
HOPPER_LAYOUT = {r"data/hopper_controller/policies\.parquet": "build_hopper_controller_release (build.py)"}


def known(layout: dict[str, str], rel: str) -> bool:
    """Whether ``rel`` is a path the layout says the repository holds."""
    return any(re.fullmatch(pattern, rel) for pattern in layout)


class Files:
    """The files served: ``path -> bytes`` read from the first folder that has them (cached)."""

    def __init__(self, *roots: Path) -> None:
        self.roots = [Path(r) for r in roots]
        self._cache: dict[str, tuple[bytes, str] | None] = {}
        self._lock = threading.Lock()

    def get(self, rel: str) -> tuple[bytes, str] | None:
        """The file's bytes and sha256, or None if no folder has it."""
        with self._lock:
            if rel not in self._cache:
                self._cache[rel] = self._read(rel)
            return self._cache[rel]

    def _read(self, rel: str) -> tuple[bytes, str] | None:
        if ".." in Path(rel).parts:
            return None
        for root in self.roots:
            path = root / rel
            gz = path.with_name(path.name + ".gz")
            data = (
                path.read_bytes()
                if path.is_file()
                else gzip.decompress(gz.read_bytes())
                if gz.is_file()
                else None
            )
            if data is not None:
                return data, hashlib.sha256(data).hexdigest()
        return None


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files``, hub-style (``server.hub``) or as a plain mirror."""

    timeout = 10  # a stuck client cannot hold a handler thread for long

    def do_HEAD(self):  # noqa: N802 (http.server's naming)
        self._serve(send_body=False)

    def do_GET(self):  # noqa: N802
        self._serve(send_body=True)

    def _error(self, code: int, hub_code: str | None = None) -> None:
        self.send_response(code)
        if hub_code and self.server.hub:
            self.send_header("X-Error-Code", hub_code)
            self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _rel(self) -> str | None:
        """The file path asked for (the 404 already sent if the repo or revision is unknown)."""
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if not self.server.hub:
            return path.lstrip("/")
        found = [repo for repo in self.server.repos if path.startswith(f"/datasets/{repo}/resolve/")]
        if not found:
            self._error(404, "RepoNotFound")
            return None
        repo, prefix = found[0], f"/datasets/{found[0]}/resolve/"
        files, layout, revisions = self.server.repos[repo]
        revision, _, rel = path[len(prefix) :].partition("/")
        if revision not in revisions:
            self._error(404, "RevisionNotFound")
            return None
        self.repo_files = self.server.files if repo == REPO else files
        return rel if layout is None or known(layout, rel) else f"\0unknown:{rel}"

    def _serve(self, send_body: bool) -> None:
        server = self.server
        if server.down:
            self._error(503)
            return
        rel = self._rel()
        if rel is None:
            return
        unknown = rel.startswith("\0unknown:")
        rel = rel.removeprefix("\0unknown:")
        server.requests.append((self.command, rel, self.headers.get("Range")))
        found = None if unknown else getattr(self, "repo_files", server.files).get(rel)
        if found is None:
            self._error(404, "EntryNotFound")
            return
        data, sha256 = found
        if rel in server.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0])
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
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Accept-Ranges", "bytes")
        if server.hub:
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{sha256}"')
            self.send_header("X-Linked-Etag", f'"{sha256}"')
            self.send_header("X-Linked-Size", str(len(data)))
        self.end_headers()
        if not send_body:
            return
        body = data[start:]
        cut = server.cut.pop(rel, None)  # once
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            server.down = server.down_after_cut
            return
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002
        pass


@contextlib.contextmanager
def serve(files: Files, hub: bool, port: int = 0):
    """Run a server on 127.0.0.1 (an ephemeral port by default) in a thread; stopped on exit.

    Yields the server; ``server.url`` is the endpoint (hub) or the base URL (mirror). Set
    ``server.corrupt`` (paths), ``server.cut`` (path -> bytes sent before the connection is cut,
    once) and ``server.down_after_cut`` (answer 503 to everything after a cut).
    """
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.files, server.hub = files, hub
    # repo -> (its files, the layout it serves or None for any file, the revisions it knows); the mirror's files
    # are always ``server.files`` (a test may swap them). ``server.repos[HOPPER_REPO]`` is set by a test that
    # serves Hopper's second source.
    server.repos = {REPO: (files, MIRROR_LAYOUT, {"main", COMMIT})}
    server.requests, server.corrupt, server.cut = [], set(), {}
    server.down = server.down_after_cut = False
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve folders like the hub's dataset " + REPO)
    parser.add_argument("roots", nargs="+", type=Path, help="folders in Design-Bench's layout")
    parser.add_argument(
        "--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)"
    )
    args = parser.parse_args()
    with serve(Files(*args.roots), hub=True, port=args.port) as server:
        print(f"HF_ENDPOINT={server.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
