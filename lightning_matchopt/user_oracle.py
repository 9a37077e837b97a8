"""A user's ``package.module:function`` oracle: imported in process, or run in a subprocess with a timeout.

Light on purpose (numpy only): the subprocess imports this module, and its start-up counts
against the user's timeout.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lightning_matchopt.errors import ConfigError, OracleError


def load_oracle(spec: str) -> Callable[[np.ndarray], np.ndarray]:
    """Import ``package.module:function``; errors name what is missing."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"oracle must look like 'package.module:function', got {spec!r}")
    if os.getcwd() not in sys.path:  # console scripts do not put the working directory on the path
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"cannot import the oracle's module {module_name!r}: {e}") from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ConfigError(f"module {module_name!r} has no callable {attribute!r} to use as the oracle")
    return function


def run_in_subprocess(spec: str, designs: np.ndarray, timeout: float) -> np.ndarray:
    """Call oracle ``spec`` on ``designs`` in a fresh interpreter; stop it (and what it started) after ``timeout`` s.

    The child sees the caller's working directory and Python path, so it imports the oracle as
    the caller would; it reports an exception as one line, not a traceback.
    """
    with tempfile.TemporaryDirectory(prefix="matchopt-oracle-") as tmp:
        np.save(Path(tmp) / "designs.npy", np.asarray(designs))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), *filter(None, sys.path)])}
        proc = subprocess.Popen([sys.executable, "-m", __name__, spec, tmp], env=env, start_new_session=True)
        try:
            proc.wait(timeout)
        except BaseException as e:  # the timeout, or Ctrl-C (which the child's own session does not get)
            os.killpg(proc.pid, signal.SIGKILL)  # the oracle and anything it started
            proc.wait()
            if isinstance(e, subprocess.TimeoutExpired):
                raise OracleError(
                    f"the oracle {spec} did not return within {timeout:g} s (search.oracle_timeout); it was stopped"
                ) from None
            raise
        if proc.returncode != 0:
            error = Path(tmp) / "error.txt"
            reason = error.read_text() if error.is_file() else f"its process ended with code {proc.returncode}"
            raise OracleError(f"the oracle {spec} failed: {reason}")
        return np.load(Path(tmp) / "scores.npy")


def _child(spec: str, folder: str) -> None:
    try:
        scores = load_oracle(spec)(np.load(Path(folder) / "designs.npy"))
        np.save(Path(folder) / "scores.npy", np.asarray(scores, dtype=np.float64))
    except Exception as e:
        (Path(folder) / "error.txt").write_text(f"{type(e).__name__}: {e}")
        raise SystemExit(1) from None


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
