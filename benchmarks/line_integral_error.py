"""How wrong the paper's line integral is on Shekel's own trajectory pairs, for the true function.

    python benchmarks/line_integral_error.py

The gradient-matching loss of the TRUE Shekel function (z-scored as training does) on one epoch of
the Figure 1 study's training pairs (128 bins, seed 0), for the left Riemann sum (the paper's
Eq. 13) with kappa points, the midpoint rule, and the exact integral ``g(v) - g(u)``; beside it the
loss of a constant surrogate, ``mean (y_v - y_u)^2``. A loss whose minimizer is the true function
must give the truth the smaller number.
"""

from __future__ import annotations

import torch

from lightning_matchopt import MatchOptDataModule
from lightning_matchopt.models.losses import endpoint_matching_loss, gradient_matching_loss


def main() -> None:
    datamodule = MatchOptDataModule(
        "shekel", task_options={"n_samples": 5000, "max_percentile": 50}, n_bins=128, seed=0
    )
    datamodule.setup("fit")
    y_mean, y_std = datamodule.y_mean.double(), datamodule.y_std.double()

    def truth(z: torch.Tensor) -> torch.Tensor:
        return (datamodule.task.value(datamodule.denormalize_x(z.double())) - y_mean) / y_std

    x, y = (torch.cat(parts) for parts in zip(*datamodule.train_dataloader(), strict=True))
    x, y = x.reshape(-1, *x.shape[-2:]).double(), y.reshape(-1, y.shape[-1]).double()
    d = x.shape[-1]
    pairs = (x[:, :-1].reshape(-1, d), x[:, 1:].reshape(-1, d), y[:, :-1].ravel(), y[:, 1:].ravel())
    x_u, x_v, y_u, y_v = pairs
    distance = float((x_v - x_u).norm(dim=1).mean())
    print(f"{len(x_u)} pairs; mean |z_v - z_u| = {distance:.2f} data-stds")
    print(f"constant surrogate, mean (y_v - y_u)^2:  {float(((y_v - y_u) ** 2).mean()):.6f}")
    for kappa in (5, 50, 500):
        loss = gradient_matching_loss(truth, *pairs, kappa, "left")
        print(f"true function, left sum, kappa={kappa:<4}  {float(loss):.6f}")
    midpoint = gradient_matching_loss(truth, *pairs, 5, "midpoint")
    print(f"true function, midpoint, kappa=5      {float(midpoint):.6f}")
    print(
        f"true function, exact g(v) - g(u):     {float(endpoint_matching_loss(truth, *pairs)):.2e}"
    )


if __name__ == "__main__":
    main()
