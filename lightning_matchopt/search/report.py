"""What a search reports: results.json, designs.npz, candidates.csv, TensorBoard and the console.

The metrics are ``SEARCH_METRICS`` (``search/metrics.py``), the one list every reader uses.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

import lightning as L
import numpy as np
import torch
from tqdm.auto import tqdm

from lightning_matchopt import pictures
from lightning_matchopt.atomic import write_atomic
from lightning_matchopt.errors import SearchFailed
from lightning_matchopt.metrics import percentile_scores
from lightning_matchopt.search.candidates import Rows
from lightning_matchopt.search.metrics import SEARCH_METRICS, measure
from lightning_matchopt.search.references import best_offline_score, random_designs_reference
from lightning_matchopt.tables import design_columns, write_csv
from lightning_matchopt.tasks import Task

# How the scores count designs the oracle did not score as a number (the rule of metrics.percentile_scores).
SCORE_RULE = (
    "scores: an infeasible design (oracle -inf, n_infeasible) counts at min(0, the worst feasible design's "
    "normalized score) in every percentile, the mean and the std; a design the oracle failed on (NaN, "
    "n_failed) is left out"
)


def progress_bar(trainer: L.Trainer, epoch: int) -> Callable[[Iterable[int]], Iterable[int]]:
    """The ascent's progress bar: on rank zero, where the trainer shows one."""
    show = trainer.is_global_zero and trainer.progress_bar_callback is not None
    return partial(tqdm, desc=f"search (epoch {epoch})", leave=False, disable=not show)


def early_warnings(task: Task, oracle_timeout: float | None) -> list[str]:
    """What would only show after training, said when it starts: no oracle, a timeout that cannot apply."""
    warnings = []
    reason = task.oracle_unavailable()
    if reason:
        warnings.append(f"search: designs will not be scored: {reason}")
    if oracle_timeout is not None and not task.timed_oracle:
        warnings.append(
            f"search: search.oracle_timeout is not applied: {task.oracle_name} runs in this process, which cannot stop it"
        )
    return warnings


def summarize(
    task: Task, rows: Rows, seed: int, epoch: int, final: bool, n_designs: int, counts: dict[str, int],
    settings: dict, traced: list[int], error: str | None,
) -> dict:
    """``results.json``'s summary of one search: the metrics, the references, the settings, the trace."""
    summary = {
        "task": task.name, "seed": seed, "epoch": epoch, "final": final,
        **measure(task, rows), "n_designs": n_designs, **counts,
        "d_best": best_offline_score(task),
        "search": settings,
    }
    if summary["n_infeasible"] or summary["n_failed"]:
        summary["notes"] = SCORE_RULE
    if final and error is None:
        summary["random_designs"] = random_designs_reference(task, n_designs, run=summary)
    if error is not None:
        summary["oracle_error"] = error
    elif traced:
        summary["trace"] = [{"step": step, **percentile_scores(rows["path"][:, i])} for i, step in enumerate(traced)]
    return summary


def write_designs(out: Path, rows: Rows, task: Task, candidates: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``designs.npz`` and ``candidates.csv``: before the oracle is asked (scores NaN / empty), then scored."""
    features = rows["features"].numpy()
    predictions = rows["predictions"].numpy()
    arrays = {
        "designs": task.from_features(features),
        "features": features,
        "scores": rows["scores"].numpy(),
        "normalized_scores": rows["normalized"].numpy(),
        "predictions": predictions,
        "normalized_predictions": task.normalize_score(predictions),
        "prediction_std": rows["prediction_std"].numpy(),
        **candidates,
    }
    write_atomic(out / "designs.npz", lambda f: np.savez(f, **arrays), ".npz")
    write_csv(out / "candidates.csv", {
        **design_columns(arrays["designs"], getattr(task, "column_names", None)),
        "prediction": predictions,
        "prediction_std": arrays["prediction_std"],
        "score": arrays["scores"],
        "normalized_prediction": arrays["normalized_predictions"],
        "normalized_score": arrays["normalized_scores"],
        "infeasible": np.isneginf(arrays["scores"]),  # the oracle's -inf: the design cannot exist
        **candidates,
    })
    return arrays


def write_results(out: Path, summary: dict, history: list[dict]) -> None:
    """``results.json``: this search's summary, with every search of the run in ``history``."""
    results = {**summary, "history": history}
    write_atomic(out / "results.json", lambda f: f.write(json.dumps(results, indent=2).encode()), ".json")


def reference_scalars(summary: dict) -> dict[str, float]:
    """The references beside the scores, as ``search/reference_*`` scalars (random designs: final search only)."""
    scalars = {"search/reference_dbest": summary["d_best"]}
    random = summary.get("random_designs")
    if random:
        for p in ("100th", "50th"):
            scalars[f"search/reference_random_{p}"] = random[f"score_{p}"]
            scalars[f"search/beats_random_{p}"] = random[f"beats_{p}"]
    return scalars


# TensorBoard's CUSTOM SCALARS tab: each score in one chart with its references.
SCORE_CHARTS = {
    "search: scores and references": {
        "score_100th": ["Multiline", ["search/score_100th", "search/reference_dbest", "search/reference_random_100th"]],
        "score_50th": ["Multiline", ["search/score_50th", "search/reference_dbest", "search/reference_random_50th"]],
        "score_mean": ["Multiline", ["search/score_mean", "search/predicted_mean", "search/reference_dbest"]],
    },
}


def log_score_charts(trainer: L.Trainer) -> None:
    """Write the :data:`SCORE_CHARTS` layout once per TensorBoard log (the first search writes it)."""
    for logger in pictures.tensorboards(trainer):
        if not getattr(logger, "_matchopt_score_charts", False):
            logger.experiment.add_custom_scalars(SCORE_CHARTS)
            logger._matchopt_score_charts = True


def log_metrics(trainer: L.Trainer, summary: dict) -> None:
    """The search metrics and their references as ``search/*`` scalars at the epoch, the traced path at the ascent step."""
    metrics = {f"search/{name}": summary[name] for name in SEARCH_METRICS}
    metrics.update(reference_scalars(summary))
    log_score_charts(trainer)
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=summary["epoch"])
        for point in summary.get("trace", []):  # step = ascent step of the final search
            path = {f"search_path/{k}": point[k] for k in ("score_100th", "score_50th")}
            logger.log_metrics(path, step=point["step"])
        logger.save()


def method_label(objectives: list, ensemble_size: int, search: dict) -> str:
    """What defines the method, in one cell: the weighted loss terms, the ensemble and how the search climbs.

    ``objectives``: the module's loss terms (``name``, ``weight``); ``search``: the recorded
    search settings. MATCH-OPT's defaults read ``gm + reg, adam``.
    """
    terms = " + ".join(t.name if t.weight == 1 else f"{t.weight:g} {t.name}" for t in objectives if t.weight)
    if ensemble_size > 1:
        climbed = f"lcb beta {search['beta']:g}" if search["objective"] == "lcb" else search["objective"]
        terms += f", ensemble of {ensemble_size} ({climbed})"
    climb = search["optimizer"] + (", sqrt_dim steps" if search["step_rule"] == "sqrt_dim" else "")
    climb += ", standardized" if search["standardize"] else ""
    if search.get("max_edits") is not None:
        climb += f", at most {search['max_edits']} edits"
    if search.get("max_distance") is not None:
        climb += f", within {search['max_distance']:g} of the start"
    return f"{terms}, {climb}"


# The HPARAMS table's first columns. TensorBoard sorts settings by name (upper case first) and puts
# every metric after them, so the method and the final scores lead as settings of their own.
LEADING_SCORES = ("score_100th", "score_50th", "score_mean")


def leading_hparams(module: L.LightningModule, summary: dict) -> dict:
    """``Method`` and the final ``Score/*``: the HPARAMS columns that say what ran and how it did."""
    objectives = getattr(module, "objectives", None)  # a module of the user's own may have none
    label = method_label(objectives, module.ensemble_size, summary["search"]) if objectives else type(module).__name__
    return {"Method": label, "Score": {name.removeprefix("score_"): summary[name] for name in LEADING_SCORES}}


def write_hparams(trainer: L.Trainer, summary: dict) -> None:
    """The HPARAMS tab: the method and its final scores first, then model, data and search settings and the metrics."""
    params = {
        **leading_hparams(trainer.lightning_module, summary),
        "model": dict(trainer.lightning_module.hparams),
        "data": dict(trainer.datamodule.hparams),
        "search": {"n_designs": summary["n_designs"], **summary["search"], "seed": summary["seed"]},
    }
    tags = [f"search/{name}" for name in SEARCH_METRICS]
    tags += sorted(k for k in trainer.callback_metrics if k.startswith("val/"))
    pictures.write_hparams(trainer, params, tags)


def report(
    trainer: L.Trainer, out: Path, summary: dict, rows: Rows, task: Task, candidates: dict[str, np.ndarray],
    history: list[dict],
) -> None:
    """Everything rank zero reports of one search, after the oracle was asked (or failed)."""
    log_metrics(trainer, summary)
    if "oracle_error" in summary:
        write_results(out, summary, history)
        if not summary["final"]:  # the final one ends the run with its own line
            print(
                f"search (epoch {summary['epoch']}): {task.oracle_name} failed: {summary['oracle_error']}; "
                f"designs.npz holds the designs unscored, results.json records it; training goes on"
            )
        return
    if not task.has_oracle:
        print(f"search: not scored ({task.oracle_unavailable()}); designs.npz holds the designs and the surrogate's predictions")
    elif summary["n_failed"]:
        failed = torch.nonzero(torch.isnan(rows["scores"])).flatten().tolist()
        print(f"search: the oracle could not score {len(failed)} designs (indices {failed[:10]}); scored the rest")
    arrays = write_designs(out, rows, task, candidates)
    pictures.log_search_pictures(trainer, summary["epoch"], arrays["normalized_scores"], arrays["normalized_predictions"])
    if summary["final"]:  # after the scalars it names: TensorBoard reads their values from them
        write_hparams(trainer, summary)
    for logger in trainer.loggers:
        logger.save()
    write_results(out, summary, history)
    if summary["final"]:
        print(console_line(summary, out / "results.json"))


def console_line(summary: dict, results: Path) -> str:
    """The final search's line: its scores beside their references, and how many designs were not counted.

    A score means little alone (on TF-Bind-8 random designs beat most searches' 100th percentile),
    so D(best) and, where the task has them, as many random designs stand beside it, with how
    often the run beats them.
    """
    counts = f"{summary['n_designs']} designs"
    if summary.get("n_unique") is not None and summary["n_unique"] < summary["n_designs"]:
        counts += f", {summary['n_unique']} distinct"
    if summary.get("n_infeasible"):
        counts += f", {summary['n_infeasible']} infeasible (counted as the worst)"
    if summary.get("n_failed"):
        counts += f", {summary['n_failed']} unscored (left out)"
    references = f"D(best)={summary['d_best']:.4f}"
    random = summary.get("random_designs")
    if random:
        references += (
            f"; {random['n_designs']} random designs{_law(random)}: score_100th={random['score_100th']:.4f} "
            f"score_50th={random['score_50th']:.4f}; this run beats {random['beats_100th']:.0%} / "
            f"{random['beats_50th']:.0%} of {random['draws']} such draws"
        )
    return (
        f"search ({summary['task']}, epoch {summary['epoch']}): score_100th={summary['score_100th']:.4f} "
        f"score_50th={summary['score_50th']:.4f} score_mean={summary['score_mean']:.4f} [{counts}] "
        f"({references}) -> {results}"
    )


def _law(reference: dict) -> str:
    """The reference's law where it is not the uniform one (an Ehrlich function's generator), else nothing."""
    law = reference.get("law", Task.random_designs_law)
    return "" if law == Task.random_designs_law else f" (from {law})"


def final_search_failed(trainer: L.Trainer, task: Task, epoch: int, error: str, out: Path) -> SearchFailed:
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
