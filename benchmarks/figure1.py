"""The paper's Figure 1, trained to convergence: does gradient matching give a better gradient field
away from the data?

    python benchmarks/figure1.py --root runs/figure1 --out docs/synthetic  # after the runs:
    # their commands are in docs/synthetic/README.md (matchopt grid, then --not-stopped to extend)

Reads every run under ``--root`` (``n<n_samples>/shekel/<method>/seed_<s>``, as ``matchopt grid``
lays them out with ``benchmarks/figure1/shekel.yaml``) from its TensorBoard events and
``config.yaml``, and writes ``figure1.md`` (tables), ``figure1.png`` and ``figure1_runs.csv`` (one
row per run, the numbers the tables are made of; the notebook reads it).

Where a run stopped improving is decided from its held-out loss alone, as Lightning's
``EarlyStopping(mode="min", patience=20, min_delta=0)`` would have on the same series: the held-out
loss is the method's own objective on the held-out 10% (``gm_weight * val/loss_gm +
regression_weight * val/loss_reg``), checked every 5 epochs; training "stops" at the first check
after which 20 checks (100 epochs) bring no new minimum, and the run's converged surrogate is the
one at its best check. The gradient errors are those ``GradientFieldDiagnostics`` logged at that
epoch: mean over 1,024 points from N(0, alpha I) in z-scored design space (alpha = 1: the offline
data's own spread) of the cosine distance and relative L2 error between the surrogate's gradient
and Shekel's analytic one. No oracle score enters any choice here.
"""

from __future__ import annotations

import argparse
import csv
import re
import statistics
from collections import defaultdict
from pathlib import Path

import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

PATIENCE = 20  # held-out checks (of 5 epochs each) without a new minimum
ALPHAS = (0.25, 1.0, 4.0, 16.0)
METHODS = ("matchopt", "regression", "gm-only", "matchopt-exact")  # table order
TAG = re.compile(r"diag/grad_(cosine|rel_l2)_a(.+)")


def loss_weights(model: dict) -> tuple[float, float]:
    """The gradient-matching and regression weights of a run's model config, flat or component form."""
    if "objectives" not in model:  # runs made before methods were components
        return model["gm_weight"], model["regression_weight"]
    weights = {"GradientMatching": 0.0, "Regression": 0.0}
    for term in model["objectives"]:
        name = term["class_path"].rpartition(".")[2]
        if name in weights:
            weights[name] += (term.get("init_args") or {}).get("weight", 1.0)
    return weights["GradientMatching"], weights["Regression"]


def early_stopping(losses: list[float], patience: int = PATIENCE) -> tuple[int, int | None]:
    """``(best, stop)`` indices into ``losses``, as ``EarlyStopping(mode="min", min_delta=0)``.

    ``stop`` is the check at which ``patience`` checks in a row have brought no value strictly
    below the best so far; None if the series ends first (the budget ran out before it stopped).
    """
    best, waited = 0, 0
    for i, value in enumerate(losses[1:], start=1):
        if value < losses[best]:
            best, waited = i, 0
        else:
            waited += 1
            if waited >= patience:
                return best, i
    return best, None


def read_run(versions: list[Path]) -> dict:
    """One run's held-out objective per check, its diagnostics per epoch, and its settings.

    ``versions``: the run's log folders in order; a run extended with ``--ckpt_path`` (see
    ``--not-stopped``) continues in the next ``version_N``, and the series are joined.
    """
    config = yaml.safe_load((versions[0] / "config.yaml").read_text())
    gm_weight, reg_weight = loss_weights(config["model"])
    objective, check_steps = [], []
    diagnostics: dict[int, dict[tuple[str, float], float]] = defaultdict(dict)
    for version in versions:
        events = EventAccumulator(str(version), size_guidance={"scalars": 0})
        events.Reload()
        gm, reg = events.Scalars("val/loss_gm"), events.Scalars("val/loss_reg")
        for a, b in zip(gm, reg, strict=True):
            objective.append(gm_weight * a.value + reg_weight * b.value)
            check_steps.append(a.step + 1)  # Lightning logs the global step before the increment
        for tag in events.Tags()["scalars"]:
            if match := TAG.fullmatch(tag):
                for event in events.Scalars(tag):  # logged with step = epoch
                    diagnostics[event.step][(match[1], float(match[2]))] = event.value
    every = config["trainer"]["check_val_every_n_epoch"]
    check_epochs = [every * (i + 1) for i in range(len(objective))]
    return {
        "config": config,
        "objective": objective,
        "check_epochs": check_epochs,
        "check_steps": check_steps,
        "diagnostics": diagnostics,
    }


def finished_versions(run_dir: Path) -> list[Path]:
    """The run's log folders in order, if its last one finished (wrote results.json)."""
    versions = sorted(
        run_dir.glob("lightning_logs/version_*"), key=lambda p: int(p.name.split("_")[1])
    )
    return versions if versions and (versions[-1] / "results.json").is_file() else []


def summarize(root: Path) -> list[dict]:
    """One row per finished run: where it converged and its gradient errors there and at the end."""
    rows = []
    for run_dir in sorted(root.glob("n*/*/*/seed_*")):
        versions = finished_versions(run_dir)
        if not versions:
            continue
        run = read_run(versions)
        best, stop = early_stopping(run["objective"])
        epoch = run["check_epochs"][best]
        last_epoch = max(run["diagnostics"])
        row = {
            "n_samples": int(run_dir.parts[-4].removeprefix("n")),
            "method": run_dir.parent.name,
            "seed": int(run_dir.name.removeprefix("seed_")),
            "best_epoch": epoch,
            "best_step": run["check_steps"][best],
            "stopped_epoch": run["check_epochs"][stop] if stop is not None else "",
            "budget_epochs": run["check_epochs"][-1],
            "budget_steps": run["check_steps"][-1],
            "heldout_loss": run["objective"][best],
            "last_version": str(versions[-1]),
        }
        for kind, alpha in ((k, a) for k in ("cosine", "rel_l2") for a in ALPHAS):
            row[f"{kind}_a{alpha:g}"] = run["diagnostics"][epoch][(kind, alpha)]
            row[f"last_{kind}_a{alpha:g}"] = run["diagnostics"][last_epoch][(kind, alpha)]
        row["curve"] = {e: d for e, d in sorted(run["diagnostics"].items())}
        rows.append(row)
    return rows


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.fmean(values):.3f} ± {statistics.pstdev(values):.3f}"


def _methods(rows: list[dict]) -> list[str]:
    present = {r["method"] for r in rows}
    return [m for m in METHODS if m in present] + sorted(present - set(METHODS))


def convergence_table(rows: list[dict]) -> list[str]:
    lines = [
        "| data (n_samples) | method | seeds | best held-out epoch (step) | stopped at epoch "
        "| budget: epochs (steps) |",
        "|---|---|---|---|---|---|",
    ]
    for n in sorted({r["n_samples"] for r in rows}):
        for method in _methods(rows):
            runs = [r for r in rows if r["n_samples"] == n and r["method"] == method]
            if not runs:
                continue
            best = ", ".join(f"{r['best_epoch']} ({r['best_step']})" for r in runs)
            stopped = ", ".join(
                str(r["stopped_epoch"]) if r["stopped_epoch"] != "" else "not" for r in runs
            )
            budget = ", ".join(f"{r['budget_epochs']} ({r['budget_steps']})" for r in runs)
            lines.append(f"| {n} | {method} | {len(runs)} | {best} | {stopped} | {budget} |")
    return lines


def error_table(rows: list[dict], kind: str, prefix: str = "") -> list[str]:
    lines = [
        "| method | seeds | " + " | ".join(f"alpha={a:g}" for a in ALPHAS) + " |",
        "|---|---|" + "---|" * len(ALPHAS),
    ]
    for method in _methods(rows):
        runs = [r for r in rows if r["method"] == method]
        cells = [_mean_std([r[f"{prefix}{kind}_a{a:g}"] for r in runs]) for a in ALPHAS]
        lines.append(f"| {method} | {len(runs)} | " + " | ".join(cells) + " |")
    return lines


def data_table(rows: list[dict], alpha: float) -> list[str]:
    sizes = sorted({r["n_samples"] for r in rows})
    lines = [
        "| method | " + " | ".join(f"n_samples={n}" for n in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for method in _methods(rows):
        cells = []
        for n in sizes:
            runs = [r for r in rows if r["method"] == method and r["n_samples"] == n]
            cells.append(
                " / ".join(
                    _mean_std([r[f"{k}_a{alpha:g}"] for r in runs]) for k in ("cosine", "rel_l2")
                )
                + f" (n={len(runs)})"
                if runs
                else "-"
            )
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def steps_table(rows: list[dict], alpha: float, epochs: tuple[int, ...]) -> list[str]:
    """Errors at fixed epochs: mean over the runs that trained that long (n: if not all did)."""
    lines = ["| method | " + " | ".join(f"epoch {e}" for e in epochs) + " |"]
    lines.append("|---|" + "---|" * len(epochs))
    for method in _methods(rows):
        runs = [r for r in rows if r["method"] == method]
        cells = []
        for epoch in epochs:
            at = [r["curve"][epoch] for r in runs if epoch in r["curve"]]
            if not at:
                cells.append("-")
                continue
            cell = " / ".join(
                f"{statistics.fmean(d[(k, alpha)] for d in at):.3f}" for k in ("cosine", "rel_l2")
            )
            cells.append(cell + (f" (n={len(at)})" if len(at) < len(runs) else ""))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def plot(rows: list[dict], base: int, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(14, 4))
    main = [r for r in rows if r["n_samples"] == base]
    for method in _methods(main):
        runs = [r for r in main if r["method"] == method]
        for ax, kind in zip(axes[:2], ("cosine", "rel_l2"), strict=True):
            means = [statistics.fmean(r[f"{kind}_a{a:g}"] for r in runs) for a in ALPHAS]
            ax.plot(ALPHAS, means, marker="o", label=method)
        color = axes[0].lines[-1].get_color()
        for r in runs:  # every run, as long as it trained
            steps_per_epoch = r["budget_steps"] / r["budget_epochs"]
            epochs = sorted(r["curve"])
            curve = [r["curve"][e][("cosine", 16.0)] for e in epochs]
            axes[2].plot(
                [e * steps_per_epoch for e in epochs],
                curve,
                color=color,
                lw=0.8,
                label=method if r is runs[0] else None,
            )
    titles = ("cosine distance at the best held-out epoch", "relative L2 error there")
    for ax, title in zip(axes[:2], titles, strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("alpha (variance of N(0, alpha I), z-scored units)")
        ax.set_title(title)
    axes[1].set_yscale("log")
    axes[2].set_xlabel("training step")
    axes[2].set_title("cosine distance at alpha = 16, each run")
    for ax in axes:
        ax.legend(fontsize=8)
    figure.suptitle(f"Shekel, n_samples={base}; left and middle: mean over seeds", fontsize=10)
    figure.tight_layout()
    figure.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--not-stopped",
        action="store_true",
        help="print the last log folder of every run the rule has not stopped, and exit",
    )
    parser.add_argument("--base", type=int, default=5000, help="n_samples of the main set")
    args = parser.parse_args()
    rows = summarize(args.root)
    if not rows:
        raise SystemExit(
            f"no finished run under {args.root}: expected n<N>/shekel/<method>/seed_<s>"
        )
    if args.not_stopped:
        print("\n".join(r["last_version"] for r in rows if r["stopped_epoch"] == ""))
        return
    if args.out is None:
        parser.error("--out is required (unless --not-stopped)")
    main_rows = [r for r in rows if r["n_samples"] == args.base]
    budget = max(r["budget_epochs"] for r in main_rows)
    epochs = tuple(e for e in (5, 20, 50, 100, 200, 300, 450, 600) if e <= budget)
    command = f"python benchmarks/figure1.py --root {args.root} --out {args.out}"
    lines = [
        f"Generated by `{command}` from the runs' event files.",
        "",
        "### Where the held-out loss stopped improving",
        "",
        *convergence_table(rows),
        "",
        f"### Gradient error at the best held-out epoch (n_samples={args.base}): cosine distance",
        "",
        *error_table(main_rows, "cosine"),
        "",
        f"### Gradient error at the best held-out epoch (n_samples={args.base}): relative L2 error",
        "",
        *error_table(main_rows, "rel_l2"),
        "",
        "### The same at the end of each run's budget (above): cosine distance",
        "",
        *error_table(main_rows, "cosine", "last_"),
        "",
        "### The same at the end of each run's budget (above): relative L2 error",
        "",
        *error_table(main_rows, "rel_l2", "last_"),
        "",
    ]
    for alpha in (1.0, 16.0):
        lines += [
            f"### With training (n_samples={args.base}, alpha={alpha:g}): cosine / relative L2, "
            "mean over seeds",
            "",
            *steps_table(main_rows, alpha, epochs),
            "",
        ]
    for alpha in (1.0, 16.0):
        lines += [
            f"### With the amount of data (best held-out epoch, alpha={alpha:g}): cosine / rel. L2",
            "",
            *data_table(rows, alpha),
            "",
        ]
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "figure1.md").write_text(text)
    plot(rows, args.base, args.out / "figure1.png")
    fields = [k for k in rows[0] if k not in ("curve", "last_version")]
    with (args.out / "figure1_runs.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
