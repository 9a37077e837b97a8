"""GradientFieldDiagnostics: the surrogate's gradient against the true one, for tasks that know it.

MATCH-OPT's claim (the paper's Figure 1) is that matching gradients along trajectories gives a
gradient field that stays accurate away from the data, where plain regression drifts. On
synthetic tasks with analytic gradients this callback measures it during training, on points
drawn from N(0, alpha I) in the z-scored design space (unit: one standard deviation of the
offline data, so alpha = 1 is the data's own spread and larger alpha is further out).
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn

from lightning_matchopt.errors import ConfigError
from lightning_matchopt.metrics import gradient_errors


def surrogate_gradient(surrogate: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Gradient of the surrogate (an ensemble: of its members' mean) with respect to its z-scored input."""
    z = z.detach().requires_grad_(True)
    with torch.enable_grad():
        return torch.autograd.grad(surrogate.members(z).mean(0).sum(), z)[0]


class GradientFieldDiagnostics(Callback):
    """Logs ``diag/grad_cosine_a<alpha>`` and ``diag/grad_rel_l2_a<alpha>`` every k epochs.

    For an ensemble, the gradient is that of the members' mean, and ``diag/ensemble_std_a<alpha>``
    is the members' mean std at the same points, in units of the offline scores' std: does the
    ensemble know where its gradient goes wrong?

    Args:
        alphas: variances of the test distributions N(0, alpha I) in z-scored design space.
        n_points: test points per alpha (the same points every epoch).
        every_n_epochs: how often to measure.
        seed: seed of the test points.
    """

    def __init__(
        self, alphas: Sequence[float] = (0.25, 1.0, 4.0, 16.0), n_points: int = 1024, every_n_epochs: int = 1,
        seed: int = 0,
    ) -> None:
        if not alphas or min(alphas) <= 0 or n_points < 1 or every_n_epochs < 1:
            raise ConfigError("diagnostics: alphas must be > 0, n_points and every_n_epochs >= 1")
        self.alphas, self.n_points, self.every_n_epochs, self.seed = list(alphas), n_points, every_n_epochs, seed
        self.history: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Measure and log the gradient errors every ``every_n_epochs`` epochs (rank zero only)."""
        epoch = trainer.current_epoch + 1
        task = trainer.datamodule.task
        if epoch % self.every_n_epochs or not trainer.is_global_zero:  # no collectives below
            return
        if not hasattr(task, "gradient"):
            rank_zero_warn(f"GradientFieldDiagnostics: task {task.name!r} has no analytic gradient; skipped")
            return
        metrics = self.measure(trainer.datamodule, pl_module.surrogate)
        self.history.append({"epoch": epoch, **metrics})
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=epoch)

    def measure(self, datamodule, surrogate: torch.nn.Module) -> dict[str, float]:
        """Gradient errors per alpha, in the design space of the task (chain rule through z-scoring)."""
        device = next(surrogate.parameters()).device
        generator = torch.Generator().manual_seed(self.seed)
        metrics = {}
        for alpha in self.alphas:
            z = torch.randn(self.n_points, datamodule.input_dim, generator=generator) * alpha**0.5
            x = datamodule.denormalize_x(z.double())
            true = datamodule.task.gradient(x)
            # g(x) = y_mean + y_std * s((x - x_mean) / x_std)  =>  grad g = y_std * grad s / x_std
            predicted = surrogate_gradient(surrogate, z.to(device)).cpu().double()
            predicted = predicted * datamodule.y_std / datamodule.x_std
            errors = gradient_errors(predicted, true)
            metrics[f"diag/grad_cosine_a{alpha:g}"] = errors["cosine_distance"]
            metrics[f"diag/grad_rel_l2_a{alpha:g}"] = errors["relative_l2"]
            if getattr(surrogate, "ensemble_size", 1) > 1:
                with torch.no_grad():
                    spread = surrogate.members(z.to(device)).std(0, unbiased=False).mean()
                metrics[f"diag/ensemble_std_a{alpha:g}"] = float(spread)
        return metrics
