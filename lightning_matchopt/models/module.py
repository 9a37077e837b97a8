"""MatchOptModule: the surrogate trained with gradient matching + regression (thin Lightning shell)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import lightning as L
import torch
from torchmetrics import MeanMetric, PearsonCorrCoef, SpearmanCorrCoef

from lightning_matchopt import pictures
from lightning_matchopt.errors import ConfigError
from lightning_matchopt.metrics import PairedValues
from lightning_matchopt.models.losses import (
    QUADRATURES,
    conservative_penalty,
    endpoint_matching_loss,
    gradient_matching_loss,
    regression_loss,
)
from lightning_matchopt.models.ensemble import EnsembleMLP
from lightning_matchopt.models.surrogate import MLPSurrogate


def _share(n: int, rank: int, world: int) -> slice:
    """This rank's contiguous share of ``n`` items (shares differ by at most one)."""
    return slice(n * rank // world, n * (rank + 1) // world)


class MatchOptModule(L.LightningModule):
    """MATCH-OPT: ``loss = gm_weight * loss_gm + regression_weight * loss_reg (+ conservative_weight * loss_cons)``.

    With ``gm_weight=0`` this is the plain regression (gradient-ascent) baseline, with
    ``regression_weight=0`` gradient matching alone, and with ``gm_weight=0`` and
    ``conservative_weight>0`` COMs (regression plus a conservative penalty); all config changes
    (``configs/methods/*.yaml``).

    Under DDP every rank receives the same trajectory batch and computes an equal share of its
    pairs and points; losses are sums scaled so that DDP's gradient average equals the
    one-process gradient of the whole batch. The optimizer step is therefore the same on any
    number of processes, and the learning rate needs no scaling. Validation splits the held-out
    trajectories the same way and gathers its metrics with torchmetrics; it needs no autograd
    (the MLP's directional derivatives are plain tensor algebra), so it runs under inference mode.

    Args:
        input_dim: surrogate input width (linked from the data module by the CLI).
        hidden_dims: hidden layer widths of the MLP surrogate.
        negative_slope: LeakyReLU slope.
        lr: Adam learning rate.
        integration_steps: kappa, quadrature points per trajectory pair.
        regression_weight: alpha, weight of the regression regularizer.
        gm_weight: weight of the gradient-matching term.
        quadrature: ``left`` (paper), ``midpoint``, ``trapezoid`` or ``exact`` (``g(v) - g(u)``).
        conservative_weight: weight of COMs' conservative penalty (0: off).
        conservative_steps: gradient-ascent steps that find the penalized designs (COMs: 50).
        conservative_step_size: their step size, in z-scored design units (COMs: 0.05).
        ensemble_size: K surrogates trained together in one optimizer step, each from its own
            initialization and on its own trajectory draws (``EnsembleMLP``); 1 is the paper's
            single ``MLPSurrogate``, bit for bit. The search then climbs the members' mean (or a
            lower confidence bound, ``search.objective``).
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int] = (512, 128, 32),
        negative_slope: float = 0.3,
        lr: float = 1e-4,
        integration_steps: int = 5,
        regression_weight: float = 1.0,
        gm_weight: float = 1.0,
        quadrature: str = "left",
        conservative_weight: float = 0.0,
        conservative_steps: int = 50,
        conservative_step_size: float = 0.05,
        ensemble_size: int = 1,
    ) -> None:
        super().__init__()
        if input_dim < 1:
            raise ConfigError(f"model.input_dim must be >= 1, got {input_dim}")
        if integration_steps < 1:
            raise ConfigError(f"model.integration_steps must be >= 1, got {integration_steps}")
        if not lr > 0:
            raise ConfigError(f"model.lr must be > 0, got {lr}")
        if regression_weight < 0 or gm_weight < 0 or regression_weight + gm_weight == 0:
            raise ConfigError(
                f"model.regression_weight ({regression_weight}) and model.gm_weight ({gm_weight}) "
                "must be >= 0 and not both 0"
            )
        if conservative_weight < 0 or conservative_steps < 0 or conservative_step_size <= 0:
            raise ConfigError(
                f"model.conservative_weight ({conservative_weight}) and model.conservative_steps "
                f"({conservative_steps}) must be >= 0, model.conservative_step_size ({conservative_step_size}) > 0"
            )
        if ensemble_size < 1:
            raise ConfigError(f"model.ensemble_size must be >= 1, got {ensemble_size}")
        if quadrature not in (*QUADRATURES, "exact"):
            raise ConfigError(f"unknown model.quadrature {quadrature!r}; use one of {', '.join(QUADRATURES)}, exact")
        self.save_hyperparameters()
        if ensemble_size == 1:
            self.surrogate = MLPSurrogate(input_dim, hidden_dims, negative_slope)
        else:
            self.surrogate = EnsembleMLP(input_dim, hidden_dims, negative_slope, ensemble_size)
        self._loss_names = ("loss", "loss_gm", "loss_reg", "loss_cons")
        self._epoch_sums, self._epoch_steps = torch.zeros(len(self._loss_names)), 0
        # Held-out metrics, synced across processes; z-scored units like the training losses.
        self.val_loss_gm, self.val_loss_reg = MeanMetric(), MeanMetric()
        with warnings.catch_warnings():  # it keeps every held-out prediction: a few thousand numbers
            warnings.filterwarnings("ignore", "Metric `SpearmanCorrcoef` will save all targets")
            self.val_spearman = SpearmanCorrCoef()
        self.val_pearson = PearsonCorrCoef()
        self.val_points = PairedValues()  # predicted and true held-out scores, for the scatter plot
        self.trained_epochs = 0  # of the loaded checkpoint: the step of a search from it

    def __setattr__(self, name: str, value: object) -> None:
        # Lightning sets ``_current_fx_name`` twice around each of the ~20 hook calls of a
        # training step, and nn.Module.__setattr__ first checks every value for parameters,
        # buffers and submodules. A hook name needs none of that (about 2% of a TF-Bind-8 run).
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.surrogate(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        # (K * trajectories, n_bins, d), member-major: member k's own draws are block k. Each rank
        # takes its share of every member's pairs and points, so rows stay member-major.
        x, y = batch
        k, d = self.hparams.ensemble_size, x.shape[-1]
        x, y = x.reshape(k, -1, *x.shape[1:]), y.reshape(k, -1, y.shape[-1])
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self._trainer else (0, 1)
        x_u, x_v = x[:, :, :-1].reshape(k, -1, d), x[:, :, 1:].reshape(k, -1, d)
        y_u, y_v = y[:, :, :-1].reshape(k, -1), y[:, :, 1:].reshape(k, -1)
        n_pairs, n_points = x_u.shape[1], x.shape[1] * x.shape[2]
        pairs, points = _share(n_pairs, rank, world), _share(n_points, rank, world)
        x_points, y_points = x.reshape(k, -1, d)[:, points].reshape(-1, d), y.reshape(k, -1)[:, points].reshape(-1)

        # Sums over members of each member's own loss: every member gets exactly its own gradient.
        loss_gm = torch.zeros((), device=x.device)  # not computed (nor logged) for the regression baseline
        if self.hparams.gm_weight > 0:
            loss_gm = self._matching_sum(
                *(part[:, pairs].reshape(-1, *part.shape[2:]) for part in (x_u, x_v, y_u, y_v))
            ) * world / n_pairs
        # Always differentiated, even at weight 0, so every parameter is used (DDP requires it).
        loss_reg = regression_loss(self.surrogate, x_points, y_points, "sum") * world / n_points
        loss = self.hparams.gm_weight * loss_gm + self.hparams.regression_weight * loss_reg
        loss_cons = torch.zeros((), device=x.device)
        if self.hparams.conservative_weight > 0:
            hp = self.hparams
            loss_cons = conservative_penalty(
                self.surrogate, x_points, hp.conservative_steps, hp.conservative_step_size, "sum"
            ) * world / n_points
            loss = loss + hp.conservative_weight * loss_cons

        # Summed here and logged once per epoch (as the members' mean): self.log on every step
        # costs as much as a quarter of this small step on CPU.
        self._epoch_sums += torch.stack([loss, loss_gm, loss_reg, loss_cons]).detach()
        self._epoch_steps += 1
        return loss

    def on_train_epoch_start(self) -> None:
        self._epoch_sums = torch.zeros(len(self._loss_names), device=self.device)
        self._epoch_steps = 0

    def on_train_epoch_end(self) -> None:
        # Each rank's losses are (its share of the batch sum) * world, so the mean over ranks
        # (sync_dist) of the per-rank epoch means is the epoch mean of the whole-batch losses.
        means = self._epoch_sums / max(self._epoch_steps, 1) / self.hparams.ensemble_size
        for name, value in zip(self._loss_names, means):
            weight = {"loss_gm": self.hparams.gm_weight, "loss_cons": self.hparams.conservative_weight}.get(name, 1)
            if weight > 0:
                self.log(f"train/{name}", value, sync_dist=True)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Held-out losses and rank correlations; on an ensemble, every member sees the same held-out rows.

        ``val/loss_gm`` and ``val/loss_reg`` are the mean over members of each member's own loss
        (as ``train/*`` are), ``val/spearman`` and ``val/pearson`` (and the scatter plot) are
        those of the members' mean prediction, the score the search climbs with ``objective: mean``.
        """
        x, y = batch  # held-out trajectories: (trajectories, m, d), (trajectories, m); one split for all members
        k, d = self.hparams.ensemble_size, x.shape[-1]
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self._trainer else (0, 1)
        pairs = _share(x.shape[0] * (x.shape[1] - 1), rank, world)
        x_u, x_v = x[:, :-1].reshape(-1, d)[pairs], x[:, 1:].reshape(-1, d)[pairs]
        y_u, y_v = y[:, :-1].reshape(-1)[pairs], y[:, 1:].reshape(-1)[pairs]
        points = _share(x.shape[0] * x.shape[1], rank, world)
        x_points, y_points = x.reshape(-1, d)[points], y.reshape(-1)[points]
        if len(x_u):
            # Member-major copies (block k for member k): the sum over members of each one's loss.
            tiled = (part.repeat(k, *([1] * (part.dim() - 1))) for part in (x_u, x_v, y_u, y_v))
            self.val_loss_gm.update(self._matching_sum(*tiled) / (k * len(x_u)), len(x_u))
        if len(x_points):
            members = self.surrogate.members(x_points)  # (K, points)
            self.val_loss_reg.update(((members - y_points) ** 2).mean(), len(x_points))
            predictions = members.mean(0)
            self.val_spearman.update(predictions, y_points)
            self.val_pearson.update(predictions, y_points)
            self.val_points.update(predictions, y_points)
        for name in ("loss_gm", "loss_reg", "spearman", "pearson"):
            self.log(f"val/{name}", getattr(self, f"val_{name}"), on_step=False, on_epoch=True)

    def on_validation_epoch_end(self) -> None:
        # One picture per run (the last epoch's, or matchopt validate's), not one per epoch.
        trainer = self.trainer
        last = trainer.max_epochs is not None and trainer.current_epoch + 1 >= trainer.max_epochs
        if not trainer.sanity_checking and (trainer.state.fn == "validate" or last):
            predicted, true = self.val_points.compute()  # a collective: every rank
            if trainer.is_global_zero:
                step = trainer.global_step
                pictures.log_scatter(trainer, "val/predicted_vs_true", true, predicted, step,
                                     "true score (z-scored)", "predicted score (z-scored)")
        self.val_points.reset()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Epochs whose steps these weights hold (Lightning's "processed" count; "epoch" is one less
        # in a checkpoint saved at an epoch's end): the epoch a search in fit would report.
        progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
        self.trained_epochs = int(progress.get("processed", checkpoint.get("epoch", 0)))

    def predict_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        """The surrogate's scores of z-scored designs (an ensemble: its members' mean); the writer maps them to score units."""
        return self.surrogate.members(batch).mean(0)

    def _matching_sum(self, x_u, x_v, y_u, y_v) -> torch.Tensor:
        if self.hparams.quadrature == "exact":
            return endpoint_matching_loss(self.surrogate, x_u, x_v, y_u, y_v, reduction="sum")
        return gradient_matching_loss(
            self.surrogate, x_u, x_v, y_u, y_v, self.hparams.integration_steps, self.hparams.quadrature, "sum"
        )

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # The fused kernel does the whole update in one op: a few percent of a CPU step.
        fused = self.device.type in ("cpu", "cuda")
        return torch.optim.Adam(self.surrogate.parameters(), lr=self.hparams.lr, fused=fused)
