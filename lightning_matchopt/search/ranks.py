"""What the ranks of one search do together: split the designs, gather the results, agree on a failure.

Designs are split across ranks so that the oracle sees each design once. ``gather`` and
``first_error`` hold collectives: every rank must call them, in the same order.
"""

from __future__ import annotations

import lightning as L
import torch

from lightning_matchopt.metrics import SearchResults


def share(n_designs: int, trainer: L.Trainer) -> torch.Tensor:
    """The indices of the designs this rank searches and scores (ranks in order, as even as possible)."""
    return torch.tensor_split(torch.arange(n_designs), trainer.world_size)[trainer.global_rank]


def gather(results: SearchResults, device: torch.device, rows: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor]:
    """Every rank's share of ``rows`` (``SearchResults.update``'s arguments) in rank order, on the CPU.

    Gathered on ``device``: NCCL cannot reduce CPU tensors.
    """
    results.to(device)
    results.update(**{k: None if t is None else t.to(device) for k, t in rows.items()})
    gathered = {k: v.cpu() for k, v in results.compute().items()}
    results.reset()
    return gathered


def first_error(trainer: L.Trainer, error: str | None) -> str | None:
    """The error of the lowest rank that had one, on every rank, so that all take the same branch."""
    rank, world = trainer.global_rank, trainer.world_size
    flag = torch.tensor(rank if error is not None else world, device=trainer.strategy.root_device)
    first = int(trainer.strategy.reduce(flag, reduce_op="min"))
    return None if first == world else trainer.strategy.broadcast(error, src=first)
