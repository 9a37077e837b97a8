"""Which GPU each running cell of ``matchopt grid --devices`` gets, and what a cell asks a scheduler for."""

from __future__ import annotations

import queue
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from lightning_matchopt.commands.config_names import resolve


class GridError(ValueError):
    """A grid argument that cannot work; its message is the one line the user sees."""


def parse_devices(value: str, count: int | None = None) -> list[str]:
    """``"0,1"`` -> ``["0", "1"]``; ``"auto"`` -> every GPU torch sees (``count``: how many, for tests).

    On a machine where torch sees no GPU at all, named GPUs are refused too: every cell would fail.
    """
    if count is None:
        import torch

        count = torch.cuda.device_count()
    if count == 0 and value != "auto":
        raise GridError(f"--devices {value}: torch sees no GPU on this machine; leave --devices out to run on CPU")
    if value == "auto":
        if count == 0:
            raise GridError("--devices auto: torch sees no GPU; name them (--devices 0,1) or leave --devices out to run on CPU")
        return [str(i) for i in range(count)]
    ids = [part.strip() for part in value.split(",")]
    bad = [part for part in ids if not part.isdigit()]
    if bad:
        raise GridError(f"--devices {value!r}: {bad[0]!r} is not a GPU index; give indices such as 0,1 or auto")
    if len(set(ids)) != len(ids):
        raise GridError(f"--devices {value!r} names a GPU twice; use --cells-per-device to run several cells on one GPU")
    return ids


class DevicePool:
    """Slots for running cells: each device ``per_device`` times; a cell holds one while it runs.

    Thread-safe (a queue), so the local pool's threads take and give back slots without a lock of
    their own; ``held`` and ``peak`` record use, for tests and for the log.
    """

    def __init__(self, devices: list[str], per_device: int = 1) -> None:
        if per_device < 1:
            raise GridError(f"--cells-per-device {per_device}: it must be at least 1")
        self.devices = list(devices)
        self.size = len(self.devices) * per_device
        self._free: queue.SimpleQueue[str] = queue.SimpleQueue()
        for _ in range(per_device):  # round-robin order: the first cells spread over the devices
            for device in self.devices:
                self._free.put(device)
        self.held: dict[str, int] = dict.fromkeys(self.devices, 0)
        self.peak: dict[str, int] = dict.fromkeys(self.devices, 0)

    def take(self, block: bool = True) -> str | None:
        """A free device (waiting for one if ``block``), or None if none is free."""
        try:
            device = self._free.get(block=block)
        except queue.Empty:
            return None
        self.held[device] += 1  # dict item updates are atomic under the GIL; only stats
        self.peak[device] = max(self.peak[device], self.held[device])
        return device

    def give_back(self, device: str) -> None:
        """Free a slot taken with :meth:`take`."""
        self.held[device] -= 1
        self._free.put(device)

    @contextmanager
    def slot(self) -> Iterator[str]:
        """Hold a device for the length of a ``with`` block."""
        device = self.take()
        assert device is not None
        try:
            yield device
        finally:
            self.give_back(device)


def cell_env(threads: int, device: str | None = None) -> dict[str, str]:
    """The variables a cell's process gets on top of the grid's own environment."""
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if device is not None:
        env["CUDA_VISIBLE_DEVICES"] = device
    return env


def _option(extra: list[str], key: str) -> list[str]:
    """Every value of ``--key V`` / ``--key=V`` in a fit's arguments, in order."""
    values = []
    for i, arg in enumerate(extra):
        if arg == key and i + 1 < len(extra):
            values.append(extra[i + 1])
        elif arg.startswith(key + "="):
            values.append(arg.split("=", 1)[1])
    return values


def gpus_of(configs: list[Path], extra: list[str]) -> int | None:
    """The GPUs a fit of these configs and arguments trains on (0 on CPU); None if the config leaves it open.

    Last wins, as in LightningCLI: the configs in order, then ``--config`` and ``--trainer.*`` arguments.
    Only ``accelerator: gpu`` (``trainer/gpu``) asks for GPUs: Lightning's ``auto`` trains on what
    the job is given, so such a cell is a CPU job unless ``--gpus-per-cell`` says otherwise.
    """
    accelerator, devices = "auto", 1
    for path in [*configs, *(Path(resolve(c)) for c in _option(extra, "--config"))]:
        trainer = (yaml.safe_load(path.read_text()) or {}).get("trainer") or {}
        accelerator, devices = trainer.get("accelerator", accelerator), trainer.get("devices", devices)
    for value in _option(extra, "--trainer.accelerator"):
        accelerator = value
    for value in _option(extra, "--trainer.devices"):
        devices = yaml.safe_load(value)
    if str(accelerator) not in ("gpu", "cuda"):
        return 0
    if isinstance(devices, list):
        return len(devices)
    if isinstance(devices, str) and "," in devices:
        return len([d for d in devices.split(",") if d.strip()])
    if isinstance(devices, int) or (isinstance(devices, str) and devices.isdigit()):
        return int(devices) if int(devices) >= 0 else None
    return None  # "auto", -1: as many as the machine has


def describe(env: dict[str, str]) -> str:
    """``CUDA_VISIBLE_DEVICES=0 OMP_NUM_THREADS=2 ...`` for the log."""
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()))
