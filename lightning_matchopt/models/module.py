"""MatchOptModule: a surrogate trained on a weighted sum of loss terms (thin Lightning shell)."""

from __future__ import annotations

import functools
import inspect
import io
import warnings
from collections.abc import Callable, Sequence

import lightning as L
import torch
from torch import nn
from torchmetrics import MeanMetric, PearsonCorrCoef, SpearmanCorrCoef

from lightning_matchopt import pictures
from lightning_matchopt.errors import ConfigError
from lightning_matchopt.metrics import PairedValues
from lightning_matchopt.models.legacy import is_legacy, upgrade_hyperparameters
from lightning_matchopt.models.objectives import GradientMatching, Objective, Regression, share
from lightning_matchopt.models.surrogate import MLPSurrogate


class MatchOptModule(L.LightningModule):
    """A surrogate trained on the sum of its weighted loss terms (a thin Lightning shell).

    A method is a composition (``configs/methods/*.yaml``, ``configs/published/``): the surrogate
    network (``model.surrogate``: ``MLPSurrogate``, ``EnsembleMLP``, ``GaussianMLP``, each built
    with the task's input width) and a list of loss terms (``model.objectives``: gradient
    matching, regression, Gaussian likelihood, ListNet, RankCosine, COMs' conservative term,
    ``models/objectives.py``), ``loss = sum of weight * term`` in list order. The default is
    MATCH-OPT: the paper's MLP with gradient matching plus regression.

    Under DDP every rank receives the same batch and each term computes an equal share of it,
    scaled so that DDP's gradient average equals the one-process gradient of the whole batch:
    the optimizer step is the same on any number of processes. Validation splits the held-out
    trajectories the same way and gathers its metrics with torchmetrics; it needs no autograd
    (the MLP's directional derivatives are plain tensor algebra), so it runs under inference mode.

    Args:
        input_dim: surrogate input width (linked from the data module by the CLI).
        surrogate: builds the network from ``input_dim`` (a ``class_path`` in YAML; its other
            arguments under ``init_args``). An ensemble's members each get their own draws
            (``data.ensemble_size`` is linked to its ``ensemble_size``).
        objectives: the loss terms; None: MATCH-OPT's ``[GradientMatching(), Regression()]``.
        lr: Adam learning rate.
        weight_decay: Adam's L2 weight decay (RaM: 1e-5).
    """

    def __init__(
        self,
        input_dim: int,
        surrogate: Callable[[int], nn.Module] = MLPSurrogate,
        objectives: Sequence[Objective] | None = None,
        lr: float = 1e-4,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        if input_dim < 1:
            raise ConfigError(f"model.input_dim must be >= 1, got {input_dim}")
        if not lr > 0:
            raise ConfigError(f"model.lr must be > 0, got {lr}")
        if weight_decay < 0:
            raise ConfigError(f"model.weight_decay must be >= 0, got {weight_decay}")
        objectives = [GradientMatching(), Regression()] if objectives is None else list(objectives)
        if not objectives or all(term.weight == 0 for term in objectives):
            raise ConfigError("model.objectives needs at least one loss term with a weight > 0")
        names = [term.name for term in objectives]
        if len(set(names)) != len(names):
            raise ConfigError(f"model.objectives names a loss term twice ({', '.join(names)}): give each once")
        self.save_hyperparameters()
        if "_instantiator" not in self.hparams:  # built in Python, not by LightningCLI: store the CLI's form
            self.hparams.update(config_form(surrogate, objectives))
        self.surrogate = surrogate(input_dim)
        self.ensemble_size = int(getattr(self.surrogate, "ensemble_size", 1))
        self.objectives = objectives
        # A term's own parameters (COMs' tuned alpha), registered so that checkpoints, devices and
        # DDP see them; empty for every other method, which leaves its weights and steps as they were.
        self.objective_parameters = nn.ParameterList(
            [p for term in objectives for group in term.parameter_groups() for p in group["params"]]
        )
        self._loss_names = ("loss", *(f"loss_{name}" for name in names))
        self._epoch_sums, self._epoch_steps = torch.zeros(len(self._loss_names)), 0
        # Held-out diagnostics in z-scored units, whatever the objectives: gradient matching with
        # the method's own quadrature if it has one (the paper's otherwise) and squared error.
        self._val_matching = next((t for t in objectives if isinstance(t, GradientMatching)), GradientMatching())
        self.val_loss_gm, self.val_loss_reg = MeanMetric(), MeanMetric()
        self._val_objective = held_out_objective(objectives)
        with warnings.catch_warnings():  # it keeps every held-out prediction: a few thousand numbers
            warnings.filterwarnings("ignore", "Metric `SpearmanCorrcoef` will save all targets")
            self.val_spearman = SpearmanCorrCoef()
        self.val_pearson = PearsonCorrCoef()
        self.val_points = PairedValues()  # predicted and true held-out scores, for the scatter plot
        self.trained_epochs = 0  # of the loaded checkpoint: the step of a search from it

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, hparams_file=None, strict=None, **kwargs):
        """Lightning's loader, which also reads checkpoints saved before the surrogate and objectives were components."""
        checkpoint = torch.load(checkpoint_path, map_location=map_location or "cpu", weights_only=False)
        hparams = checkpoint.get("hyper_parameters")
        if isinstance(hparams, dict) and is_legacy(hparams):
            checkpoint["hyper_parameters"] = upgrade_hyperparameters(hparams)
            buffer = io.BytesIO()
            torch.save(checkpoint, buffer)
            buffer.seek(0)
            checkpoint_path = buffer
        return super().load_from_checkpoint(checkpoint_path, map_location, hparams_file, strict, **kwargs)

    def __setattr__(self, name: str, value: object) -> None:
        # Lightning sets ``_current_fx_name`` twice around each of the ~20 hook calls of a
        # training step, and nn.Module.__setattr__ first checks every value for parameters,
        # buffers and submodules. A hook name needs none of that (about 2% of a TF-Bind-8 run).
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The surrogate's prediction (so the module predicts like its surrogate)."""
        return self.surrogate(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Every objective's term on this rank's share of the batch; their weighted sum is the loss."""
        # (K * groups, m, d), member-major: member k's own draws are block k. Each term takes
        # this rank's share of every member's rows, so rows stay member-major.
        x, y = batch
        k = self.ensemble_size
        x, y = x.reshape(k, -1, *x.shape[1:]), y.reshape(k, -1, y.shape[-1])
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self._trainer else (0, 1)
        # Every listed term is computed, even at weight 0, so that every parameter is used (DDP
        # requires it: gradient matching alone never reaches the output bias).
        terms = [term(self.surrogate, x, y, rank, world) for term in self.objectives]
        loss = self.objectives[0].weight * terms[0]
        for term, value in zip(self.objectives[1:], terms[1:], strict=True):
            loss = loss + term.weight * value
        # Summed here and logged once per epoch (as the members' mean): self.log on every step
        # costs as much as a quarter of this small step on CPU.
        self._epoch_sums += torch.stack([loss, *terms]).detach()
        self._epoch_steps += 1
        return loss

    def on_train_epoch_start(self) -> None:
        """Reset the epoch's loss sums (logged once an epoch)."""
        self._epoch_sums = torch.zeros(len(self._loss_names), device=self.device)
        self._epoch_steps = 0

    def on_train_epoch_end(self) -> None:
        """Log the epoch's mean losses (``train/*``), averaged over ranks."""
        # Each rank's losses are (its share of the batch sum) * world, so the mean over ranks
        # (sync_dist) of the per-rank epoch means is the epoch mean of the whole-batch losses.
        means = self._epoch_sums / max(self._epoch_steps, 1) / self.ensemble_size
        for name, value in zip(self._loss_names, means, strict=True):
            self.log(f"train/{name}", value, sync_dist=True)
        for term in self.objectives:
            for name, value in term.statistics().items():
                self.log(f"train/{name}", value, sync_dist=True)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Held-out losses and rank correlations; on an ensemble, every member sees the same held-out rows.

        ``val/loss_gm`` and ``val/loss_reg`` are the mean over members of each member's own loss
        (as ``train/*`` are), ``val/spearman`` and ``val/pearson`` (and the scatter plot) are
        those of the members' mean prediction, the score the search climbs with ``objective: mean``.
        """
        x, y = batch  # held-out trajectories: (trajectories, m, d), (trajectories, m); one split for all members
        k, d = self.ensemble_size, x.shape[-1]
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self._trainer else (0, 1)
        pairs = share(x.shape[0] * (x.shape[1] - 1), rank, world)
        x_u, x_v = x[:, :-1].reshape(-1, d)[pairs], x[:, 1:].reshape(-1, d)[pairs]
        y_u, y_v = y[:, :-1].reshape(-1)[pairs], y[:, 1:].reshape(-1)[pairs]
        points = share(x.shape[0] * x.shape[1], rank, world)
        x_points, y_points = x.reshape(-1, d)[points], y.reshape(-1)[points]
        if len(x_u):
            # Member-major copies (block k for member k): the sum over members of each one's loss.
            tiled = (part.repeat(k, *([1] * (part.dim() - 1))) for part in (x_u, x_v, y_u, y_v))
            self.val_loss_gm.update(self._val_matching.matching_sum(self.surrogate, *tiled) / (k * len(x_u)), len(x_u))
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
        """The method's held-out objective (``val/objective``), and the predicted-vs-true picture once a run."""
        if self._val_objective:  # the method's own loss on held-out rows: what EarlyStopping should monitor
            held_out = {"gm": self.val_loss_gm, "reg": self.val_loss_reg}
            self.log("val/objective", sum(weight * held_out[name].compute() for name, weight in self._val_objective.items()))
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
        """Record how many epochs the weights were trained for: the epoch a later search reports."""
        # Epochs whose steps these weights hold (Lightning's "processed" count; "epoch" is one less
        # in a checkpoint saved at an epoch's end): the epoch a search in fit would report.
        progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
        self.trained_epochs = int(progress.get("processed", checkpoint.get("epoch", 0)))

    def predict_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        """The surrogate's scores of z-scored designs (an ensemble: its members' mean); the writer maps them to score units."""
        return self.surrogate.members(batch).mean(0)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam on the surrogate's parameters and on a term's own at its own rate (fused where the device has the kernel)."""
        # The fused kernel does the whole update in one op: a few percent of a CPU step.
        fused = self.device.type in ("cpu", "cuda")
        hp = self.hparams
        groups = [{"params": self.surrogate.parameters()}, *(g for term in self.objectives for g in term.parameter_groups())]
        return torch.optim.Adam(groups, lr=hp.lr, weight_decay=hp.weight_decay, fused=fused)


def held_out_objective(objectives: Sequence[Objective]) -> dict[str, float]:
    """The weights of ``val/loss_gm`` and ``val/loss_reg`` whose sum is the method's loss on held-out rows.

    Empty (no ``val/objective``) when a term has no held-out counterpart here (likelihood,
    ranking, conservative terms): a partial sum would not be the method's objective.
    """
    if not all(type(term) in (GradientMatching, Regression) for term in objectives):
        return {}
    weights: dict[str, float] = {}
    for term in objectives:
        if term.weight > 0:
            weights[term.name] = weights.get(term.name, 0.0) + term.weight
    return weights


def config_form(surrogate: Callable, objectives: Sequence[Objective]) -> dict:
    """``surrogate`` and ``objectives`` as LightningCLI would save them (``class_path`` and ``init_args``).

    A checkpoint of a module built in Python then holds no pickled objects: ``matchopt search``
    (which reads checkpoints with ``weights_only=True``) and ``load_from_checkpoint`` both read it.
    Empty where a part cannot be written so (a lambda, a term with an argument it does not keep).
    """

    def class_path(cls: type) -> str:
        return f"{cls.__module__}.{cls.__qualname__}"

    if isinstance(surrogate, functools.partial) and isinstance(surrogate.func, type) and not surrogate.args:
        network = {"class_path": class_path(surrogate.func), "init_args": dict(surrogate.keywords)}
    elif isinstance(surrogate, type):
        network = {"class_path": class_path(surrogate)}
    else:
        return {}
    terms = []
    for term in objectives:
        names = [n for n in inspect.signature(type(term).__init__).parameters if n != "self"]
        if not all(hasattr(term, n) for n in names):
            return {}
        terms.append({"class_path": class_path(type(term)), "init_args": {n: getattr(term, n) for n in names}})
    return {"surrogate": network, "objectives": terms, "_instantiator": "lightning.pytorch.cli.instantiate_module"}
