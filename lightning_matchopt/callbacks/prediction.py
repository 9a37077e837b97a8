"""PredictionWriter: the surrogate's scores of a file of designs, written by ``matchopt predict``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torchmetrics.functional import spearman_corrcoef

from lightning_matchopt.atomic import write_atomic
from lightning_matchopt.metrics import PairedValues
from lightning_matchopt.tables import design_columns, write_csv


class PredictionWriter(BasePredictionWriter):
    """Writes ``predictions.csv`` and ``predictions.npz``: every design with its predicted score.

    Predictions are in the task's score units (and normalized like the search's scores), in the
    order of the input file. Under DDP each rank predicts its share of the rows; the shares and
    their row indices are gathered with a torchmetrics state that every rank computes, and rank
    zero writes the files.

    Args:
        output_dir: folder of the two files; default: the run's log dir.
    """

    def __init__(self, output_dir: str | None = None) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self._gathered = PairedValues(sync_on_compute=True)

    def write_on_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, prediction: Any, batch_indices: Any,
        batch: Any, batch_idx: int, dataloader_idx: int,
    ) -> None:
        """Collect this rank's predictions with their row indices (written at the epoch's end)."""
        self._gathered.to(pl_module.device)
        self._gathered.update(torch.as_tensor(batch_indices, device=pl_module.device), prediction)

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Gather every rank's predictions in row order and write them (rank zero)."""
        rows, predicted = (t.cpu() for t in self._gathered.compute())  # a collective: every rank
        self._gathered.reset()
        out = Path(self.output_dir or trainer.log_dir or trainer.default_root_dir)  # log_dir: all ranks ask
        if trainer.is_global_zero:
            order = rows.argsort()
            self._write(trainer.datamodule, out, trainer.datamodule.denormalize_y(predicted[order]).numpy())
        trainer.strategy.barrier("prediction_writer")

    @staticmethod
    def _write(datamodule, out: Path, predictions: np.ndarray) -> None:
        task, inputs = datamodule.task, datamodule.predict_inputs
        names = inputs.columns or (getattr(task, "column_names", None) if inputs.source == "offline data" else None)
        arrays = {
            "designs": inputs.designs,
            "predictions": predictions,
            "normalized_predictions": task.normalize_score(predictions),
        }
        if inputs.y is not None:
            arrays["y"] = inputs.y
        if inputs.held_out is not None:
            arrays["held_out"] = inputs.held_out
        write_atomic(out / "predictions.npz", lambda f: np.savez(f, **arrays), ".npz")
        columns = design_columns(inputs.designs, names)
        columns.update(
            prediction=predictions,
            normalized_prediction=arrays["normalized_predictions"],
            **{k: arrays[k] for k in ("y", "held_out") if k in arrays},
        )
        write_csv(out / "predictions.csv", columns)
        known, rows, label = "", np.ones(len(predictions), dtype=bool), "the file's scores"
        if inputs.held_out is not None:  # offline data: only the held-out rows say something
            rows, label = inputs.held_out, "the held-out rows' scores"
        if inputs.y is not None and rows.sum() > 1:
            rho = spearman_corrcoef(torch.as_tensor(predictions[rows]), torch.as_tensor(inputs.y[rows]).double())
            known = f"; Spearman with {label} {float(rho):.4f}"
        where = out / "predictions.csv"
        print(f"predict ({task.name}): {len(predictions)} designs from {inputs.source}{known} -> {where}")
