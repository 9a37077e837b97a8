"""Pictures and the HPARAMS session for TensorBoard: what a run looks like, not only its numbers.

Only TensorBoard loggers get them (other loggers are left alone), only rank zero should call
these functions, and matplotlib stays optional: without it, scatter plots are skipped and
histograms (drawn by TensorBoard itself) remain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from lightning_matchopt import compat


def tensorboards(trainer: L.Trainer) -> list[TensorBoardLogger]:
    """The trainer's TensorBoard loggers (the others have no images, histograms or layouts)."""
    return [logger for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]


def _finite(values: Any) -> np.ndarray:
    values = np.asarray(torch.as_tensor(values).detach().cpu().double())
    return values[np.isfinite(values)]


def scatter_image(x: Any, y: Any, xlabel: str, ylabel: str) -> np.ndarray | None:
    """A scatter plot of ``y`` against ``x`` with the line ``y = x``, as an ``(H, W, 3)`` uint8 image.

    None without matplotlib. Drawn on a bare Agg canvas, so no GUI backend or pyplot state is touched.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    x, y = np.asarray(torch.as_tensor(x).cpu().double()), np.asarray(torch.as_tensor(y).cpu().double())
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    figure = Figure(figsize=(4, 4), dpi=80)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.scatter(x, y, s=8, alpha=0.5, linewidths=0)
    if len(x):
        low, high = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        axes.plot([low, high], [low, high], color="gray", linestyle="--", linewidth=1)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(f"{len(x)} points", fontsize=9)
    figure.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def log_scatter(trainer: L.Trainer, tag: str, x: Any, y: Any, step: int, xlabel: str, ylabel: str) -> None:
    """A scatter plot as a TensorBoard image (IMAGES tab)."""
    loggers = tensorboards(trainer)
    image = scatter_image(x, y, xlabel, ylabel) if loggers else None
    for logger in loggers if image is not None else []:
        logger.experiment.add_image(tag, image, step, dataformats="HWC")


def log_histogram(trainer: L.Trainer, tag: str, values: Any, step: int) -> None:
    """A histogram of the finite values (HISTOGRAMS and DISTRIBUTIONS tabs)."""
    values = _finite(values)
    for logger in tensorboards(trainer) if len(values) else []:
        logger.experiment.add_histogram(tag, values, step)


def log_search_pictures(trainer: L.Trainer, step: int, normalized: Any, predicted: Any) -> None:
    """The candidates of one search: their normalized oracle and predicted scores, and one against the other."""
    log_histogram(trainer, "search/normalized_scores", normalized, step)
    log_histogram(trainer, "search/normalized_predictions", predicted, step)
    if len(_finite(normalized)):
        log_scatter(trainer, "search/predicted_vs_oracle", predicted, normalized, step,
                    "predicted (normalized)", "oracle (normalized)")


def flat_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as ``a/b`` keys with values TensorBoard accepts (lists, None and objects as text)."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if str(key).startswith("_"):  # Lightning's bookkeeping (``_instantiator``), not a setting
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flat_params(value, f"{name}/"))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


def quiet_default_hp_metric(trainer: L.Trainer) -> None:
    """Stop Lightning's start-of-run HPARAMS session (its only metric: ``hp_metric = -1``).

    TensorBoard keeps the first session a run writes, so the one with the final scores
    (``write_hparams``) must be the only one.
    """
    for logger in tensorboards(trainer):
        compat.disable_default_hp_metric(logger)


def write_hparams(trainer: L.Trainer, params: Mapping[str, Any], metric_tags: list[str]) -> None:
    """The HPARAMS tab: the run's settings beside the latest values of ``metric_tags`` (scalar tags already logged)."""
    from torch.utils.tensorboard.summary import hparams

    flat = flat_params(params)
    for logger in tensorboards(trainer):
        # Only the metric names go into the session; TensorBoard reads their values from the scalars.
        experiment, start, end = hparams(flat, dict.fromkeys(metric_tags, 0.0))
        writer = compat.file_writer(logger)
        for summary in (experiment, start, end):
            writer.add_summary(summary)
        writer.flush()
