"""Ensembles on the synthetic tasks: does their spread flag gradient errors, and which lcb beta?

    matchopt grid --tasks shekel ackley rosenbrock --methods methods/matchopt-ensemble methods/grad-mean \\
        --seeds 0 1 2 3 --root runs/synth-ens
    python benchmarks/ensemble_synthetic.py --root runs/synth-ens --out docs/synthetic/ensembles.md

Reads every finished run of the grid (``<task>/<method>/seed_<s>``: its ``config.yaml`` and
``last.ckpt``) and writes two tables.

1. **Spread against gradient error** (single surrogates beside, as the reference for the errors).
   At 1,024 points drawn from N(0, alpha I) in z-scored design space (alpha = 1: the offline
   data's own spread; the points of ``GradientFieldDiagnostics``), the error of the ensemble's
   mean gradient against the task's analytic one (cosine distance, relative L2), the members' std
   (in units of the offline scores' std), and the Spearman correlation, over the points, between
   each point's std and its gradient's cosine distance.
2. **The lcb beta.** Every MATCH-OPT ensemble searches again, with the run's own search settings,
   on the members' mean and on ``mean - beta * std`` for each beta, and the task's oracle scores
   the designs. The rule, fixed before the runs: the beta > 0 with the best mean rank over the
   tasks of its mean score_100th over seeds (ties: the higher mean score_50th rank), the same
   rank the grid's table uses. Only synthetic tasks are used: a beta chosen on a Design-Bench
   oracle would not be offline optimization. The search with ``mean`` must reproduce each run's
   own final search (checked).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

import torch
import yaml

from lightning_matchopt import MatchOptDataModule, MatchOptModule, gradient_ascent, percentile_scores
from lightning_matchopt.search.ascent import search_objective

ALPHAS = (0.25, 1.0, 4.0, 16.0)
BETAS = (0.25, 0.5, 1.0, 2.0, 4.0)


def load_run(version: Path) -> tuple[MatchOptDataModule, torch.nn.Module, dict]:
    """The data module (its own seed) and the trained surrogate of one finished run."""
    config = yaml.safe_load((version / "config.yaml").read_text())
    data = {**config["data"], "seed": config["data"].get("seed") or config["seed_everything"]}
    datamodule = MatchOptDataModule(**data)
    datamodule.setup("fit")
    module = MatchOptModule.load_from_checkpoint(version / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    return datamodule, module.surrogate.eval().requires_grad_(False), config


def spread_and_gradient_error(datamodule, surrogate, n_points: int = 1024, seed: int = 0) -> dict[float, dict[str, float]]:
    """Per alpha: the mean gradient's errors, the members' std, and their rank correlation over points."""
    generator = torch.Generator().manual_seed(seed)
    rows = {}
    for alpha in ALPHAS:
        z = (torch.randn(n_points, datamodule.input_dim, generator=generator) * alpha**0.5).requires_grad_(True)
        with torch.enable_grad():
            members = surrogate.members(z)  # (K, points)
            (gradient,) = torch.autograd.grad(members.mean(0).sum(), z)
        predicted = gradient.double() * datamodule.y_std / datamodule.x_std  # chain rule through the z-scoring
        true = datamodule.task.gradient(datamodule.denormalize_x(z.detach().double()))
        cosine = 1 - torch.nn.functional.cosine_similarity(predicted, true, dim=1)
        relative = (predicted - true).norm(dim=1) / true.norm(dim=1).clamp_min(1e-12)
        rows[alpha] = {"cosine_distance": float(cosine.mean()), "relative_l2": float(relative.mean())}
        if len(members) > 1:  # a single surrogate has no spread
            std = members.detach().double().std(0, unbiased=False)
            rows[alpha].update(std=float(std.mean()), spearman=spearman(std, cosine))
    return rows


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ranks = [torch.argsort(torch.argsort(v)).double() for v in (a, b)]
    return float(torch.corrcoef(torch.stack(ranks))[0, 1])


def search_scores(datamodule, surrogate, config: dict, objective: str, beta: float) -> dict[str, float]:
    """The run's final search again (its start, steps, lr and seed) on another objective, scored by the oracle."""
    search, task = config["search"], datamodule.task
    seed = search["seed"] if search["seed"] is not None else datamodule.seed
    lr = search["lr"] if search["lr"] is not None else (1e-2 if task.is_discrete else 1e-3)
    start = datamodule.search_start(search["n_designs"], search["start"], seed)
    x = gradient_ascent(search_objective(surrogate, objective, beta), start, search["steps"], lr)
    features = datamodule.denormalize_x(x.double())
    normalized = task.normalize_score(task.oracle(task.from_features(features.numpy())))
    return percentile_scores(torch.as_tensor(normalized))


def mean_ranks(cells: dict[str, dict[str, list[float]]], key: str) -> dict[str, float]:
    """``cells[task][setting]`` -> mean over tasks of each setting's rank (1 = best) by its mean ``key``."""
    ranks: dict[str, list[int]] = defaultdict(list)
    for per_setting in cells.values():
        means = {s: statistics.fmean(v[key] for v in runs) for s, runs in per_setting.items()}
        ordered = sorted(means.values(), reverse=True)
        for setting, value in means.items():
            ranks[setting].append(1 + ordered.index(value))
    return {s: statistics.fmean(r) for s, r in ranks.items()}


def _cell(values: list[float]) -> str:
    return f"{statistics.fmean(values):.3f} ± {statistics.pstdev(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_grad_enabled(False)

    spread: dict[tuple[str, str], dict[float, list[dict]]] = defaultdict(lambda: defaultdict(list))
    searches: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    seeds: dict[tuple[str, str], list[int]] = defaultdict(list)
    for run_dir in sorted(args.root.glob("*/*/seed_*")):
        task, method = run_dir.parent.parent.name, run_dir.parent.name
        finished = [p.parent for p in sorted(run_dir.glob("lightning_logs/version_*/results.json"))
                    if json.loads(p.read_text()).get("final")]
        if not finished:
            continue
        version = finished[-1]
        if not (version / "checkpoints" / "last.ckpt").is_file():
            continue  # a search-only cell (the grid's reuse of another method's surrogates)
        datamodule, surrogate, config = load_run(version)
        seeds[(task, method)].append(int(run_dir.name.removeprefix("seed_")))
        for alpha, row in spread_and_gradient_error(datamodule, surrogate).items():
            spread[(task, method)][alpha].append(row)
        if method != "matchopt-ensemble" or surrogate.ensemble_size < 2:
            continue
        own = json.loads((version / "results.json").read_text())
        mean = search_scores(datamodule, surrogate, config, "mean", 0.0)
        if own["search"]["objective"] == "mean" and abs(mean["score_100th"] - own["score_100th"]) > 1e-9:
            raise SystemExit(f"{version}: the search on the mean gives {mean['score_100th']}, the run's own {own['score_100th']}")
        searches[task]["mean"].append(mean)
        for beta in BETAS:
            searches[task][f"lcb, beta={beta:g}"].append(search_scores(datamodule, surrogate, config, "lcb", beta))
        print(f"{task} / seed {run_dir.name}: searched", flush=True)

    lines = ["## The members' spread against the error of the ensemble's gradient", "",
             "Mean over seeds; points from N(0, alpha I) in z-scored design space (alpha = 1: the offline data's spread). "
             "cos: cosine distance of the mean gradient to the true one (0: right direction, 1: orthogonal); "
             "rel L2: its relative L2 error; std: the members' std in units of the offline scores' std; "
             "rho: Spearman correlation over the 1,024 points between a point's std and its cosine distance. "
             "The single surrogates (matchopt, regression) have no spread: their rows are the reference for the errors.", "",
             "| task | method | seeds | " + " | ".join(f"alpha={a:g}: cos / rel L2 / std / rho" for a in ALPHAS) + " |",
             "|---|---|---|" + "---|" * len(ALPHAS)]
    for (task, method), per_alpha in sorted(spread.items()):
        cells = []
        for alpha in ALPHAS:
            rows = per_alpha[alpha]
            cells.append(" / ".join(f"{statistics.fmean(r[k] for r in rows):.3f}" if k in rows[0] else "-"
                                    for k in ("cosine_distance", "relative_l2", "std", "spearman")))
        lines.append(f"| {task} | {method} | {len(seeds[(task, method)])} | " + " | ".join(cells) + " |")

    settings = ["mean", *(f"lcb, beta={b:g}" for b in BETAS)]
    tasks = sorted(searches)
    ranks_100, ranks_50 = mean_ranks(searches, "score_100th"), mean_ranks(searches, "score_50th")
    chosen = min((s for s in settings if s != "mean"), key=lambda s: (ranks_100[s], ranks_50[s]))
    lines += ["", "## The lcb beta, chosen on synthetic tasks only", "",
              "MATCH-OPT ensembles (K = 5) of the grid, each searched again with its own search settings; "
              "score_100th / score_50th, mean ± std over seeds. Rank: mean over tasks of the setting's rank "
              "by mean score_100th (score_50th).", "",
              "| objective | " + " | ".join(tasks) + " | rank 100th | rank 50th |", "|---|" + "---|" * (len(tasks) + 2)]
    for setting in settings:
        runs = {t: searches[t][setting] for t in tasks}
        cells = [f"{_cell([r['score_100th'] for r in runs[t]])} / {_cell([r['score_50th'] for r in runs[t]])}" for t in tasks]
        lines.append(f"| {setting} | " + " | ".join(cells) + f" | {ranks_100[setting]:.2f} | {ranks_50[setting]:.2f} |")
    beats = ranks_100[chosen] < ranks_100["mean"]
    lines += ["", f"Chosen by the rule: **{chosen}** (rank {ranks_100[chosen]:.2f} against the mean's "
              f"{ranks_100['mean']:.2f}: lcb {'beats' if beats else 'does not beat'} the plain mean on these tasks "
              "by score_100th).", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
