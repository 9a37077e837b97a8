"""DesignSearch: gradient-ascent search at the end of training (and every k epochs), scored by the oracle."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from tqdm.auto import tqdm

from lightning_matchopt.atomic import write_atomic
from lightning_matchopt.errors import ConfigError
from lightning_matchopt.metrics import SearchResults, percentile_scores
from lightning_matchopt.search.ascent import gradient_ascent


class DesignSearch(Callback):
    """Runs MATCH-OPT's search and reports Design-Bench normalized scores.

    Designs are split across ranks; each rank searches and asks the oracle about its own share
    (so the oracle sees each design once), the results are gathered with a torchmetrics state
    that every rank computes, and rank zero logs and writes ``results.json`` and
    ``designs.npz`` (atomically) into the logger's log dir.

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
    ) -> None:
        if n_designs < 1 or steps < 0 or every_n_epochs < 0 or trace_every < 0:
            raise ConfigError(
                f"search.n_designs ({n_designs}) must be >= 1, search.steps ({steps}), "
                f"search.every_n_epochs ({every_n_epochs}) and search.trace_every ({trace_every}) >= 0"
            )
        if lr is not None and not lr > 0:
            raise ConfigError(f"search.lr must be > 0, got {lr}")
        if start not in ("top", "random_data", "random"):
            raise ConfigError(f"unknown search.start {start!r}; use 'top', 'random_data' or 'random'")
        self.n_designs, self.steps, self.lr, self.start = n_designs, steps, lr, start
        self.every_n_epochs, self.seed, self.trace_every = every_n_epochs, seed, trace_every
        self.history: list[dict[str, Any]] = []
        self._results = SearchResults(sync_on_compute=True)

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        reason = trainer.datamodule.task.oracle_unavailable()
        if reason and trainer.is_global_zero:  # said before training, not discovered after it
            print(f"search: designs will not be scored: {reason}")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
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
        start = datamodule.search_start(self.n_designs, self.start, seed)
        share = torch.tensor_split(torch.arange(self.n_designs), trainer.world_size)[trainer.global_rank]

        surrogate = copy.deepcopy(pl_module.surrogate).requires_grad_(False).eval()
        show = trainer.is_global_zero and trainer.progress_bar_callback is not None
        progress = lambda steps: tqdm(steps, desc=f"search (epoch {epoch})", leave=False, disable=not show)  # noqa: E731
        traced = sorted({*range(0, self.steps + 1, self.trace_every), self.steps}) if final and self.trace_every else []
        snapshots: dict[int, torch.Tensor] = {}
        observe = (lambda step, x: snapshots.update({step: x}) if step in traced else None) if traced else None  # noqa: E731
        x = gradient_ascent(surrogate, start[share].to(pl_module.device), self.steps, lr, progress, observe)
        with torch.no_grad():
            predictions = datamodule.denormalize_y(surrogate(x).double())
        features = datamodule.denormalize_x(x.double()).cpu()
        scores = task.oracle(task.from_features(features.numpy()))
        normalized = task.normalize_score(scores)
        path = None
        if traced:  # the last snapshot is the final designs: scored above, not twice
            columns = [
                task.normalize_score(task.oracle(task.from_features(datamodule.denormalize_x(snapshots[s].double()).cpu().numpy())))
                for s in traced[:-1]
            ]
            path = torch.as_tensor(np.stack([*columns, normalized], axis=1))

        device = pl_module.device  # gathered on the module's device: NCCL cannot reduce CPU tensors
        self._results.to(device)
        self._results.update(
            features.to(device),
            torch.as_tensor(scores, device=device),
            torch.as_tensor(normalized, device=device),
            predictions.to(device),
            None if path is None else path.to(device),
        )
        gathered = {k: v.cpu() for k, v in self._results.compute().items()}
        self._results.reset()

        summary = {
            "task": task.name,
            "seed": seed,
            "epoch": epoch,
            "final": final,
            **percentile_scores(gathered["normalized"]),
            "predicted_mean": float(task.normalize_score(gathered["predictions"].numpy()).mean()),
            "n_designs": self.n_designs,
            "n_failed": int((~torch.isfinite(gathered["scores"])).sum()),
            "d_best": datamodule.best_offline_score(),
            "search": {"steps": self.steps, "lr": lr, "start": self.start},
        }
        if traced:
            summary["trace"] = [
                {"step": step, **percentile_scores(gathered["path"][:, i])} for i, step in enumerate(traced)
            ]
        self.history.append(summary)
        out = Path(trainer.log_dir or trainer.default_root_dir)  # log_dir is a broadcast: all ranks ask
        if trainer.is_global_zero:
            self._report(trainer, out, summary, gathered, task)
        trainer.strategy.barrier("design_search")
        return summary

    def _report(self, trainer: L.Trainer, out: Path, summary: dict, gathered: dict[str, torch.Tensor], task) -> None:
        metrics = {f"search/{k}": summary[k] for k in ("score_100th", "score_50th", "score_mean", "score_std")}
        metrics["search/predicted_mean"] = summary["predicted_mean"]
        metrics["search/n_failed"] = summary["n_failed"]
        if summary["final"] and task.has_oracle:  # TensorBoard's HPARAMS tab: the final score, not Lightning's -1
            metrics["hp_metric"] = summary["score_100th"]
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=summary["epoch"])
            for point in summary.get("trace", []):  # step = ascent step of the final search
                path = {f"search_path/{k}": point[k] for k in ("score_100th", "score_50th")}
                logger.log_metrics(path, step=point["step"])
            logger.save()
        if not task.has_oracle:
            print(f"search: not scored ({task.oracle_unavailable()}); designs.npz holds the designs and the surrogate's predictions")
        elif summary["n_failed"]:
            failed = torch.nonzero(~torch.isfinite(gathered["scores"])).flatten().tolist()
            print(f"search: the oracle could not score {len(failed)} designs (indices {failed[:10]}); scored the rest")
        features = gathered["features"].numpy()
        arrays = {
            "designs": task.from_features(features),
            "features": features,
            "scores": gathered["scores"].numpy(),
            "normalized_scores": gathered["normalized"].numpy(),
            "predictions": gathered["predictions"].numpy(),
        }
        write_atomic(out / "designs.npz", lambda f: np.savez(f, **arrays), ".npz")
        results = {**summary, "history": self.history}
        write_atomic(out / "results.json", lambda f: f.write(json.dumps(results, indent=2).encode()), ".json")
        if summary["final"]:
            print(
                f"search ({task.name}, epoch {summary['epoch']}): score_100th={summary['score_100th']:.4f} "
                f"score_50th={summary['score_50th']:.4f} score_mean={summary['score_mean']:.4f} "
                f"(D(best)={summary['d_best']:.4f}) -> {out / 'results.json'}"
            )
