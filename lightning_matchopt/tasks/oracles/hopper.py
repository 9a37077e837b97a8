"""Hopper controller's oracle: one episode of a fixed policy network in MuJoCo's Hopper.

Design-Bench's ``HopperControllerOracle`` reads the 5,126 floats as, in order (C order):
``W0 (11, 64), b0 (64), W1 (64, 64), b1 (64), W2 (64, 3), b2 (3)`` and a ``(1, 3)`` log-std that
it discards; the action is ``tanh(tanh(obs W0 + b0) W1 + b1) W2 + b2``, deterministic and not
clipped by the policy. It runs one episode of gym's ``Hopper-v2`` (up to 1,000 steps) and
returns the summed reward.

Re-created with gymnasium's ``Hopper-v5`` on the maintained ``mujoco`` bindings, headless.
The differences from the original mujoco-py ``Hopper-v2``:

- physics: MuJoCo 3.x/4.x instead of MuJoCo 1.5/2.0 under mujoco-py; the model file, frame skip
  (4), reward (forward velocity + 1 healthy - 1e-3 |a|^2), termination (height > 0.7,
  |angle| < 0.2, state within +-100) and observation (qpos[1:], qvel clipped to +-10) are
  unchanged, but solver changes between MuJoCo versions move long rollouts apart;
- the start state: v2 adds U(+-0.005) noise from an unseeded generator, so Design-Bench's
  oracle is itself slightly random; here the reset is seeded (``seed``) and every design starts
  from the same state, so a design's score is reproducible;
- MuJoCo clamps the action to the actuators' control range [-1, 1], as it did under v2;
- v5's fix of the healthy reward only matters when termination is off; it is on here, as in v2.

Scores are therefore on the same scale as Design-Bench's (its normalizer 87.9 .. 1361.6) but not
equal design by design. Episodes run in parallel worker processes, with a progress bar (on a terminal).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from lightning_matchopt.errors import OracleError

LAYER_SHAPES = ((11, 64), (64,), (64, 64), (64,), (64, 3), (3,), (1, 3))  # the last one (log-std) is unused
N_PARAMS = sum(int(np.prod(shape)) for shape in LAYER_SHAPES)  # 5126
ENV_ID = "Hopper-v5"
MAX_STEPS = 1000

_env = None  # one environment per worker process, made on first use


def policy_layers(design: np.ndarray) -> list[np.ndarray]:
    """The policy's weights and biases from a flat design, in Design-Bench's order (log-std dropped)."""
    design = np.asarray(design, dtype=np.float64).reshape(-1)
    if design.size != N_PARAMS:
        raise OracleError(f"hopper: a design must hold {N_PARAMS} policy weights, got {design.size}")
    layers, offset = [], 0
    for shape in LAYER_SHAPES:
        size = int(np.prod(shape))
        layers.append(design[offset : offset + size].reshape(shape))
        offset += size
    return layers[:-1]


def policy_action(layers: list[np.ndarray], observation: np.ndarray) -> np.ndarray:
    """The action of the policy a design encodes (tanh hidden layers, linear output)."""
    w0, b0, w1, b1, w2, b2 = layers
    hidden = np.tanh(observation @ w0 + b0)
    hidden = np.tanh(hidden @ w1 + b1)
    return hidden @ w2 + b2


def episode_return(design: np.ndarray, seed: int = 0) -> float:
    """One episode's summed reward (float32 sum, as Design-Bench); NaN if the simulation fails."""
    global _env
    layers = policy_layers(design)
    if _env is None:
        import gymnasium

        _env = gymnasium.make(ENV_ID, max_episode_steps=MAX_STEPS, disable_env_checker=True)
    observation, _ = _env.reset(seed=seed)
    total = np.float32(0.0)
    try:
        for _ in range(MAX_STEPS):
            observation, reward, terminated, truncated, _ = _env.step(policy_action(layers, observation))
            total += np.float32(reward)
            if terminated or truncated:
                break
    except Exception:  # MuJoCo raises on a diverged simulation (NaN state): that design fails alone
        return float("nan")
    return float(total)


def evaluate_policies(
    designs: np.ndarray, workers: int | None = None, seed: int = 0, progress: bool = True, timeout: float | None = None
) -> np.ndarray:
    """Episode returns of ``(N, 5126)`` designs, run in ``workers`` processes (default: CPU cores, at most 8).

    Workers are fresh interpreters (``python -m lightning_matchopt.tasks.oracles.hopper``) fed
    through a temporary ``.npy`` file: unlike multiprocessing's fork they share no thread pools
    with the caller (torch, DDP), and unlike spawn they need no ``if __name__ == "__main__"``
    guard in the caller's script or notebook. With a ``timeout`` (seconds, for all episodes)
    even one worker runs in its own process, so that a hung simulation can be stopped.
    """
    from tqdm.auto import tqdm

    designs = np.asarray(designs, dtype=np.float64)
    if designs.ndim != 2 or designs.shape[1] != N_PARAMS:
        raise OracleError(f"hopper: designs must be (N, {N_PARAMS}) policy weights, got {designs.shape}")
    workers = max(1, min(workers or min(os.cpu_count() or 1, 8), len(designs)))
    returns = np.full(len(designs), np.nan)
    with tqdm(total=len(designs), desc="hopper episodes", unit="design", disable=None if progress else True, leave=False) as bar:
        if workers == 1 and timeout is None:
            for i, design in enumerate(designs):
                returns[i] = episode_return(design, seed)
                bar.update()
            return returns
        with tempfile.TemporaryDirectory(prefix="matchopt-hopper-") as tmp:
            path = Path(tmp) / "designs.npy"
            np.save(path, designs)
            shares = np.array_split(np.arange(len(designs)), workers)
            env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
            deadline = None if timeout is None else time.monotonic() + timeout
            procs = [
                subprocess.Popen(
                    [sys.executable, "-m", __name__, str(path), str(rows[0]), str(rows[-1] + 1), str(seed)],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                )  # fmt: skip
                for rows in shares
                if len(rows)
            ]
            lock = threading.Lock()

            def collect(proc: subprocess.Popen) -> None:
                for line in proc.stdout:  # "row value", one per finished episode
                    row, value = line.split()
                    returns[int(row)] = float(value)
                    with lock:
                        bar.update()

            readers = [threading.Thread(target=collect, args=(proc,), daemon=True) for proc in procs]
            for reader in readers:
                reader.start()
            try:
                for proc, reader in zip(procs, readers, strict=True):
                    reader.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
                    if reader.is_alive():
                        raise OracleError(
                            f"hopper: the episodes did not finish within {timeout:g} s (search.oracle_timeout); "
                            "their workers were stopped"
                        )
                    if proc.wait() != 0:
                        message = proc.stderr.read().strip().splitlines()
                        raise OracleError(f"hopper: an episode worker failed: {message[-1] if message else proc.returncode}")
            finally:  # on a timeout, a failed worker or Ctrl-C: no worker outlives the call
                for proc in procs:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
    return returns


def _worker(path: str, start: int, stop: int, seed: int) -> None:
    designs = np.load(path, mmap_mode="r")
    for row in range(start, stop):
        print(row, episode_return(np.array(designs[row]), seed), flush=True)


if __name__ == "__main__":
    _worker(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
