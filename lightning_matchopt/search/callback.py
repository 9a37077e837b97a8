"""DesignSearch: the Lightning hooks, the order of a search's steps and the failure policy.

Each step is a function of ascent.py (the climb), ranks.py (the split across ranks), candidates.py
(task units, duplicates, novelty), references.py (the oracle) or report.py (files, TensorBoard, console).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import lightning as L
from lightning.pytorch.callbacks import Callback

from lightning_matchopt import pictures
from lightning_matchopt.metrics import SearchResults
from lightning_matchopt.search import ranks
from lightning_matchopt.search.ascent import climb
from lightning_matchopt.search.candidates import kept_rows, path_features, screen_candidates, unscored_rows
from lightning_matchopt.search.references import ask_oracle
from lightning_matchopt.search.report import early_warnings, final_search_failed, progress_bar, report, summarize, write_designs
from lightning_matchopt.search.settings import check_settings, recorded_settings, resolved_step
from lightning_matchopt.search.starts import search_start
from lightning_matchopt.search.trust_region import check_region, trust_region


class DesignSearch(Callback):
    """Searches designs by gradient ascent on the surrogate and scores them with the task's oracle.

    Each rank climbs and scores its share; rank zero writes ``results.json``, ``designs.npz``,
    ``candidates.csv`` and TensorBoard (the designs before the oracle is asked, then with its scores).
    An oracle failure during training is recorded and training goes on; in the final search it ends
    the run with :class:`~lightning_matchopt.errors.SearchFailed` after the final checkpoint, and a
    resumed run redoes the final search (docs/faults.md).

    Args:
        n_designs: number of candidates (Design-Bench: 128).
        steps: ascent steps on the surrogate (paper: 150).
        lr: step size; default 1e-2 for token tasks (logits), 1e-3 otherwise.
        start: ``top`` (best offline designs), ``random_data`` (random offline designs) or
            ``random`` (N(0, I) in z-scored features: the paper code's TF-Bind-8 start).
        every_n_epochs: also search after every k-th epoch (0: only at the end of training).
        seed: seed of random starts; default: the data module's seed.
        trace_every: final search: also score the designs every k steps (``search_path/*``,
            ``trace`` in ``results.json``; one more oracle call per design each); 0: off.
        oracle_timeout: seconds an oracle in another process (Hopper's workers, a ``files``
            oracle) may take before it is stopped; None: no limit.
        objective: what is climbed on an ensemble: ``mean`` of the members, ``lcb`` (mean minus
            ``beta`` times their std) or ``min`` (Grad. Min); a single surrogate as it is.
        beta: weight of the members' std in ``lcb``.
        drop_duplicates: keep only the first of identical candidates in the files and scores
            (token designs often decode to one sequence); ``n_unique`` and ``n_novel`` count both.
        optimizer: ``adam`` (MATCH-OPT's and RaM's) or ``gradient``, plain steps
            ``x <- x + step * grad`` (design-baselines' Grad.).
        step_rule: ``constant`` (the step is ``lr``) or ``sqrt_dim`` (``lr * sqrt(d)``, d the input width).
        standardize: climb ``(f(x) - mean) / std`` over the offline designs (RaM's output adaptation).
        max_edits: token designs: after every step at most this many positions decode to another
            token than the start's (LaMBO-2's edit budget); None: no bound.
        max_distance: vector designs: after every step each design lies within this L2 distance
            of its start, in z-scored units; None: no bound.
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
        max_edits: int | None = None,
        max_distance: float | None = None,
    ) -> None:
        check_settings(n_designs, steps, lr, start, every_n_epochs, trace_every, oracle_timeout, objective, beta,
                       optimizer, step_rule, max_edits, max_distance)
        self.n_designs, self.steps, self.lr, self.start = n_designs, steps, lr, start
        self.every_n_epochs, self.seed, self.trace_every = every_n_epochs, seed, trace_every
        self.oracle_timeout, self.objective, self.beta = oracle_timeout, objective, beta
        self.drop_duplicates, self.optimizer, self.step_rule = drop_duplicates, optimizer, step_rule
        self.standardize, self.max_edits, self.max_distance = standardize, max_edits, max_distance
        self.history: list[dict[str, Any]] = []
        self._results = SearchResults(sync_on_compute=True)
        self._trained: dict[str, int] | None = None  # epochs and steps done, saved in checkpoints
        self._resumed: dict[str, int] | None = None

    def state_dict(self) -> dict[str, Any]:
        """The searches so far and how far training went: a resumed run knows whether to search again."""
        return {"history": self.history, "trained": self._trained}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (checkpoints without these keys start with none)."""
        self.history = list(state_dict.get("history", []))
        self._trained = self._resumed = state_dict.get("trained")

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Quiet Lightning's placeholder HPARAMS session: the final search writes the real one."""
        pictures.quiet_default_hp_metric(trainer)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Say now what would only show after training (no oracle, a bad start); redo a resumed final search."""
        warnings = early_warnings(trainer.datamodule.task, self.oracle_timeout)  # every rank asks the task
        if warnings and trainer.is_global_zero:
            print("\n".join(warnings))
        table = trainer.datamodule.table
        search_start(table.x, table.y, self.n_designs, self.start, self._seed(trainer))
        check_region(self.max_edits, self.max_distance, trainer.datamodule.task.is_discrete)
        resumed, self._resumed = self._resumed, None
        if resumed and _training_done(trainer, resumed):  # Lightning will skip training and on_train_end
            self.search(trainer, pl_module, resumed["epoch"], final=True)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Record how far training went (for checkpoints); search every ``every_n_epochs`` epochs."""
        epoch = trainer.current_epoch + 1
        self._trained = {"epoch": epoch, "step": trainer.global_step}
        last = trainer.max_epochs is not None and epoch >= trainer.max_epochs  # on_train_end searches then
        if self.every_n_epochs and epoch % self.every_n_epochs == 0 and not last:
            self.search(trainer, pl_module, epoch)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The final search (after the final checkpoint was saved)."""
        self.search(trainer, pl_module, trainer.current_epoch, final=True)

    def search(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int, final: bool = False) -> dict:
        """Search, score, gather, log and write; every rank must call it (it holds collectives)."""
        datamodule, task, device = trainer.datamodule, trainer.datamodule.task, pl_module.device
        lr, step_length = resolved_step(self.lr, self.step_rule, task.is_discrete, datamodule.input_dim)
        start = search_start(datamodule.table.x, datamodule.table.y, self.n_designs, self.start, self._seed(trainer))
        start = start[ranks.share(self.n_designs, trainer)].to(device)
        region = trust_region(start, self.max_edits, self.max_distance, task.num_classes, datamodule.denormalize_x)
        offline_x = datamodule.offline.x.to(device) if self.standardize else None  # RaM: all of x, held-out rows too
        x, traced, snapshots, members = climb(
            pl_module.surrogate, start, self.steps, step_length, self.objective, self.beta, offline_x,
            self.trace_every if final else 0, progress_bar(trainer, epoch), self.optimizer, region,
        )
        rows = unscored_rows(datamodule, x, members)  # this rank's share, in the task's units
        gathered = ranks.gather(self._results, device, rows)
        candidates, counts, keep = screen_candidates(datamodule, gathered["features"], self.drop_duplicates)
        out = Path(trainer.log_dir or trainer.default_root_dir)  # log_dir is a broadcast: all ranks ask
        if trainer.is_global_zero:  # before the oracle is asked: whatever it does, the designs are kept
            write_designs(out, kept_rows(gathered, keep), task, candidates)

        path = path_features(datamodule, snapshots, traced)
        scored, error = ask_oracle(task, rows["features"], path, self.oracle_timeout)
        error = ranks.first_error(trainer, error)  # the same on every rank, so all take the same branch
        if error is None:
            gathered = ranks.gather(self._results, device, {**rows, **scored})
        gathered = kept_rows(gathered, keep)
        settings = recorded_settings(self, lr, step_length)
        summary = summarize(task, gathered, self._seed(trainer), epoch, final, self.n_designs, counts, settings, traced, error)
        self.history.append(summary)
        if trainer.is_global_zero:
            report(trainer, out, summary, gathered, task, candidates, self.history)
        trainer.strategy.barrier("design_search")
        if error is not None and final:
            raise final_search_failed(trainer, task, epoch, error, out)
        return summary

    def _seed(self, trainer: L.Trainer) -> int:
        return self.seed if self.seed is not None else trainer.datamodule.seed


def _training_done(trainer: L.Trainer, trained: dict[str, int]) -> bool:
    """Whether training that went this far already met the trainer's limits (max_epochs, max_steps)."""
    max_epochs, max_steps = trainer.max_epochs, trainer.max_steps
    return (max_epochs is not None and max_epochs >= 0 and trained["epoch"] >= max_epochs) or (
        max_steps is not None and max_steps >= 0 and trained["step"] >= max_steps
    )
