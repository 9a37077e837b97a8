"""DesignSearch: gradient-ascent search at the end of training (and every k epochs), scored by the oracle."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from tqdm.auto import tqdm

from lightning_matchopt import pictures
from lightning_matchopt.errors import ConfigError, SearchFailed
from lightning_matchopt.metrics import SearchResults
from lightning_matchopt.search.ascent import (
    OBJECTIVES,
    OPTIMIZERS,
    STEP_RULES,
    search_objective,
    standardized,
    step_size,
    traced_ascent,
)
from lightning_matchopt.search.candidates import count_unique_and_novel, describe_candidates
from lightning_matchopt.search.references import oracle_scores
from lightning_matchopt.search.report import report, summarize, write_designs
from lightning_matchopt.search.starts import START_KINDS, search_start


class DesignSearch(Callback):
    """Runs MATCH-OPT's search and reports Design-Bench normalized scores.

    Designs are split across ranks; each rank searches and asks the oracle about its own share
    (so the oracle sees each design once), the results are gathered with a torchmetrics state
    that every rank computes, and rank zero logs and writes ``results.json``, ``designs.npz`` and
    ``candidates.csv`` (atomically) into the logger's log dir. TensorBoard also gets histograms
    of the candidates' scores and predictions and a predicted-vs-oracle scatter plot at every
    search, and the HPARAMS tab (settings beside the final scores) at the final one.

    The oracle is outside our control (a simulator, a lab pipeline), so the designs and the
    surrogate's predictions are written before it is asked (``designs.npz`` and
    ``candidates.csv`` with the candidate columns, scores empty), and again with the scores. If it raises (or outlives
    ``oracle_timeout``) in a search during training, the failure is printed and recorded in
    ``results.json`` and training goes on; in the final search the run ends with
    :class:`~lightning_matchopt.errors.SearchFailed`, after the final checkpoint was saved.
    Ranks agree on the failure first, so none waits in a collective for one that gave up.
    A run resumed from a checkpoint of finished training redoes the final search (Lightning
    would otherwise end at once), so a run killed during it, or whose oracle failed, finishes.

    Args:
        n_designs: number of candidates (Design-Bench: 128).
        steps: Adam steps on ``-surrogate(x)`` (paper: 150).
        lr: search step size; default 1e-2 for token tasks (logits), 1e-3 otherwise.
        start: ``top`` (best offline designs), ``random_data`` (random offline designs) or
            ``random`` (N(0, I) in z-scored feature space, the paper code's TF-Bind-8 start).
        every_n_epochs: also search after every k-th epoch (0: only at the end of training).
        seed: seed of random starts; default: the data module's seed.
        trace_every: in the final search, also score the designs every k ascent steps (0: off),
            for the score-against-step curve (``search_path/*``, ``trace`` in ``results.json``).
            Each traced step costs one more oracle call per design.
        drop_duplicates: keep only the first of identical candidates (token designs: the argmax
            often maps several searched logit vectors to one sequence) in the written files and
            the scores; ``n_unique`` and ``n_novel`` in ``results.json`` count them either way.
        oracle_timeout: seconds one oracle call may take before it is stopped, for oracles that
            run in other processes (``hopper``'s workers; a ``files`` oracle, then run in a
            subprocess); None: no limit.
        objective: what the search climbs on an ensemble (``model.surrogate.ensemble_size > 1``):
            ``mean`` of the members, ``lcb``, the mean minus ``beta`` times their std, or ``min``
            (Grad. Min). A single surrogate is climbed as it is.
        beta: weight of the members' std in ``lcb``.
        optimizer: ``adam`` (MATCH-OPT's and RaM's search) or ``gradient``, plain steps
            ``x <- x + step * grad`` (design-baselines' Grad.).
        step_rule: ``constant`` (the step is ``lr``) or ``sqrt_dim`` (``lr * sqrt(d)``, d the
            surrogate's input width: design-baselines').
        standardize: climb ``(f(x) - mean) / std`` with the mean and std of the climbed objective
            on the offline designs (RaM's output adaptation).
    """

    def __init__(
        self,
        n_designs: int = 128,
        steps: int = 150,
        lr: float | None = None,
        start: Literal["top", "random_data", "random"] = "top",
        every_n_epochs: int = 0,
        seed: int | None = None,
        trace_every: int = 0,
        oracle_timeout: float | None = None,
        objective: Literal["mean", "lcb", "min"] = "mean",
        beta: float = 1.0,
        drop_duplicates: bool = False,
        optimizer: Literal["adam", "gradient"] = "adam",
        step_rule: Literal["constant", "sqrt_dim"] = "constant",
        standardize: bool = False,
    ) -> None:
        if n_designs < 1 or steps < 0 or every_n_epochs < 0 or trace_every < 0:
            raise ConfigError(
                f"search.n_designs ({n_designs}) must be >= 1, search.steps ({steps}), "
                f"search.every_n_epochs ({every_n_epochs}) and search.trace_every ({trace_every}) >= 0"
            )
        if lr is not None and not lr > 0:
            raise ConfigError(f"search.lr must be > 0, got {lr}")
        if objective not in OBJECTIVES or beta < 0:
            raise ConfigError(f"search.objective must be one of {', '.join(OBJECTIVES)} (got {objective!r}) and search.beta >= 0 (got {beta})")
        if start not in START_KINDS:
            raise ConfigError(f"unknown search.start {start!r}; use 'top', 'random_data' or 'random'")
        if oracle_timeout is not None and not oracle_timeout > 0:
            raise ConfigError(f"search.oracle_timeout must be > 0 seconds or null, got {oracle_timeout}")
        self.n_designs, self.steps, self.lr, self.start = n_designs, steps, lr, start
        self.every_n_epochs, self.seed, self.trace_every = every_n_epochs, seed, trace_every
        self.oracle_timeout = oracle_timeout
        self.objective, self.beta = objective, beta
        self.drop_duplicates = drop_duplicates
        if optimizer not in OPTIMIZERS or step_rule not in STEP_RULES:
            raise ConfigError(
                f"search.optimizer must be one of {', '.join(OPTIMIZERS)} (got {optimizer!r}) and "
                f"search.step_rule one of {', '.join(STEP_RULES)} (got {step_rule!r})"
            )
        self.optimizer, self.step_rule, self.standardize = optimizer, step_rule, standardize
        self.history: list[dict[str, Any]] = []
        self._results = SearchResults(sync_on_compute=True)
        self._trained: dict[str, int] | None = None  # epochs and steps done, saved in checkpoints
        self._resumed: dict[str, int] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "trained": self._trained}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        self._trained = self._resumed = state_dict.get("trained")

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        pictures.quiet_default_hp_metric(trainer)  # the final search writes the HPARAMS session

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        task = trainer.datamodule.task
        reason = task.oracle_unavailable()
        if reason and trainer.is_global_zero:  # said before training, not discovered after it
            print(f"search: designs will not be scored: {reason}")
        if self.oracle_timeout is not None and not task.timed_oracle and trainer.is_global_zero:
            print(f"search: search.oracle_timeout is not applied: {task.oracle_name} runs in this process, which cannot stop it")
        seed = self.seed if self.seed is not None else trainer.datamodule.seed
        table = trainer.datamodule.table
        search_start(table.x, table.y, self.n_designs, self.start, seed)  # a bad start fails now, not after training
        resumed, self._resumed = self._resumed, None
        if resumed and _training_done(trainer, resumed):  # Lightning will skip training and on_train_end
            self.search(trainer, pl_module, resumed["epoch"], final=True)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        self._trained = {"epoch": epoch, "step": trainer.global_step}
        last = trainer.max_epochs is not None and epoch >= trainer.max_epochs  # on_train_end searches then
        if self.every_n_epochs and epoch % self.every_n_epochs == 0 and not last:
            self.search(trainer, pl_module, epoch)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.search(trainer, pl_module, trainer.current_epoch, final=True)

    def search(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int, final: bool = False) -> dict:
        """Search, score, gather, log and write; every rank must call it (it holds collectives)."""
        datamodule = trainer.datamodule
        task = datamodule.task
        seed = self.seed if self.seed is not None else datamodule.seed
        lr = self.lr if self.lr is not None else (1e-2 if task.is_discrete else 1e-3)
        step_length = step_size(lr, self.step_rule, datamodule.input_dim)
        start = search_start(datamodule.table.x, datamodule.table.y, self.n_designs, self.start, seed)
        share = torch.tensor_split(torch.arange(self.n_designs), trainer.world_size)[trainer.global_rank]

        surrogate = copy.deepcopy(pl_module.surrogate).requires_grad_(False).eval()
        show = trainer.is_global_zero and trainer.progress_bar_callback is not None
        progress = lambda steps: tqdm(steps, desc=f"search (epoch {epoch})", leave=False, disable=not show)  # noqa: E731
        climb = search_objective(surrogate, self.objective, self.beta)
        if self.standardize:  # on every offline design, held-out ones included (RaM: all of x)
            climb = standardized(climb, datamodule.offline.x.to(pl_module.device))
        trace_every = self.trace_every if final else 0
        x, traced, snapshots = traced_ascent(
            climb, start[share].to(pl_module.device), self.steps, step_length, trace_every, progress, self.optimizer
        )
        with torch.no_grad():
            members = surrogate.members(x).double()  # (K, designs): the ensemble's opinions
            predictions = datamodule.denormalize_y(members.mean(0))
            prediction_std = members.std(0, unbiased=False) * datamodule.y_std.to(members)
        features = datamodule.denormalize_x(x.double()).cpu()
        device = pl_module.device  # gathered on the module's device: NCCL cannot reduce CPU tensors
        unscored = torch.full((len(features),), float("nan"), dtype=torch.float64)
        gathered = self._gather(device, features, unscored, unscored, predictions, prediction_std)
        candidates = self._describe(datamodule, gathered["features"])  # every rank: the counts go in history
        counts = count_unique_and_novel(candidates)
        keep = ~candidates["duplicate"] if self.drop_duplicates else np.ones(len(candidates["duplicate"]), bool)
        candidates = {k: v[keep] for k, v in candidates.items()}
        out = Path(trainer.log_dir or trainer.default_root_dir)  # log_dir is a broadcast: all ranks ask
        if trainer.is_global_zero:  # before the oracle is asked: whatever it does, the designs are kept
            write_designs(out, _rows(gathered, keep), task, candidates)

        error = None
        try:
            path = [datamodule.denormalize_x(snapshots[s].double()).cpu() for s in traced[:-1]] if traced else None
            scores, normalized, path_scores = oracle_scores(task, features, path, self.oracle_timeout)
        except Exception as e:  # a user's simulator or lab pipeline: any failure is its own
            error = f"{type(e).__name__}: {e}"
        error = _first_error(trainer, error)  # the same on every rank, so all take the same branch
        if error is None:
            gathered = self._gather(device, features, scores, normalized, predictions, prediction_std, path_scores)
        gathered = _rows(gathered, keep)

        settings = {
            "steps": self.steps, "lr": lr, "start": self.start, "objective": self.objective, "beta": self.beta,
            "drop_duplicates": self.drop_duplicates, "optimizer": self.optimizer, "step_rule": self.step_rule,
            "step_size": step_length, "standardize": self.standardize,
        }
        summary = summarize(task, gathered, seed, epoch, final, self.n_designs, counts, settings, traced, error)
        self.history.append(summary)
        if trainer.is_global_zero:
            report(trainer, out, summary, gathered, task, candidates, self.history)
        trainer.strategy.barrier("design_search")
        if error is not None and final:
            raise self._final_search_failed(trainer, task, epoch, error, out)
        return summary

    @staticmethod
    def _final_search_failed(trainer: L.Trainer, task, epoch: int, error: str, out: Path) -> SearchFailed:
        """The error that ends a run whose final oracle failed, naming what was kept and how to go on."""
        if getattr(trainer, "_search_only", False):  # matchopt search: the checkpoint is the user's file
            checkpoint, again = trainer.ckpt_path, "run the same matchopt search command again"
        else:
            checkpoint = getattr(trainer.checkpoint_callback, "last_model_path", "") or "none saved (checkpointing is off)"
            again = "run the same fit command again with --ckpt_path last (it redoes only the final search)"
        return SearchFailed(
            f"{task.oracle_name} failed in the final search (epoch {epoch}): {error}. Kept: the trained "
            f"model ({checkpoint}) and the unscored designs with the surrogate's predictions "
            f"({out / 'designs.npz'}); to score them when the oracle works, {again}"
        )

    def _gather(self, device: torch.device, *tensors: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Every rank's share in rank order (a collective: every rank calls it)."""
        self._results.to(device)
        self._results.update(*(None if t is None else t.to(device) for t in tensors))
        gathered = {k: v.cpu() for k, v in self._results.compute().items()}
        self._results.reset()
        return gathered

    @staticmethod
    def _describe(datamodule, features: torch.Tensor) -> dict[str, np.ndarray]:
        """Duplicates, novelty and distance to the offline data (all offline rows, held-out ones included)."""
        task = datamodule.task
        return describe_candidates(
            task.from_features(features.numpy()), task.data.x,
            datamodule.normalize_x(features.double()), datamodule.offline.x, task.is_discrete,
        )


def _rows(gathered: dict[str, torch.Tensor], keep: np.ndarray) -> dict[str, torch.Tensor]:
    """The kept candidates' rows (``search.drop_duplicates``), in order."""
    return gathered if keep.all() else {k: v[torch.from_numpy(keep)] for k, v in gathered.items()}


def _first_error(trainer: L.Trainer, error: str | None) -> str | None:
    """The error of the lowest rank that had one, on every rank (two collectives every rank reaches)."""
    rank, world = trainer.global_rank, trainer.world_size
    flag = torch.tensor(rank if error is not None else world, device=trainer.strategy.root_device)
    first = int(trainer.strategy.reduce(flag, reduce_op="min"))
    return None if first == world else trainer.strategy.broadcast(error, src=first)


def _training_done(trainer: L.Trainer, trained: dict[str, int]) -> bool:
    """Whether training that went this far already met the trainer's limits (max_epochs, max_steps)."""
    max_epochs, max_steps = trainer.max_epochs, trainer.max_steps
    return (max_epochs is not None and max_epochs >= 0 and trained["epoch"] >= max_epochs) or (
        max_steps is not None and max_steps >= 0 and trained["step"] >= max_steps
    )
