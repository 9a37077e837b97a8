"""Gradient-field errors from a grid's runs: does matching gradients keep them right out of distribution?

    python benchmarks/gradient_field_table.py --root runs/grid --out docs/synthetic/gradient_field.md
    # tasks without runs under --root: their rows from an earlier table of this script, marked
    python benchmarks/gradient_field_table.py --root runs/grid --earlier old.md --out new.md

Reads the last ``diag/grad_cosine_a*`` and ``diag/grad_rel_l2_a*`` values that
``GradientFieldDiagnostics`` logged in every run under ``--root`` (``<task>/<method>/seed_<s>``)
and prints, per task and method, the mean over seeds for each alpha (variance of the N(0, alpha I)
test points in z-scored design space).
"""

from __future__ import annotations

import argparse
import re
import statistics
from collections import defaultdict
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

TAG = re.compile(r"diag/grad_(cosine|rel_l2)_a(.+)")


def last_values(run_dir: Path) -> dict[tuple[str, float], float]:
    values = {}
    for version in run_dir.glob("lightning_logs/version_*"):
        events = EventAccumulator(str(version))
        events.Reload()
        for tag in events.Tags()["scalars"]:
            if match := TAG.fullmatch(tag):
                values[(match[1], float(match[2]))] = events.Scalars(tag)[-1].value
    return values


def earlier_rows(path: Path) -> dict[str, list[str]]:
    """``kind -> table rows`` of an earlier output of this script, keyed by its section titles."""
    rows: dict[str, list[str]] = defaultdict(list)
    title = None
    for line in path.read_text().splitlines():
        if line.startswith("### Gradient error: "):
            title = line
        elif title and line.startswith("| ") and not line.startswith("| task |"):
            rows[title].append(line)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--earlier", type=Path, help="an earlier table: rows of tasks not under --root")
    args = parser.parse_args()
    table: dict[tuple[str, str], dict[tuple[str, float], list[float]]] = defaultdict(lambda: defaultdict(list))
    for run_dir in sorted(args.root.glob("*/*/seed_*")):
        task, method = run_dir.parent.parent.name, run_dir.parent.name
        for key, value in last_values(run_dir).items():
            table[(task, method)][key].append(value)
    alphas = sorted({a for cells in table.values() for (_, a) in cells})
    earlier = earlier_rows(args.earlier) if args.earlier else {}
    lines = []
    for kind, title in (("cosine", "mean cosine distance (0 = right direction)"), ("rel_l2", "mean relative L2 error")):
        lines += [f"### Gradient error: {title}", "", "| task | method | " + " | ".join(f"alpha={a:g}" for a in alphas) + " |",
                  "|---|---|" + "---|" * len(alphas)]
        rows = {}
        for (task, method), cells in sorted(table.items()):
            row = [f"{statistics.fmean(cells[(kind, a)]):.3f}" if cells[(kind, a)] else "-" for a in alphas]
            rows[(task, method)] = f"| {task} | {method} | " + " | ".join(row) + " |"
        section = lines[-4]  # this table's "### Gradient error: ..." line
        for line in earlier.get(section, []):
            task, method = (part.strip() for part in line.split("|")[1:3])
            if task not in {t for t, _ in table}:
                rows[(task, method)] = line.replace(f"| {method} |", f"| {method} † |", 1)
        lines += [rows[key] for key in sorted(rows)]
        lines.append("")
    if any("†" in line for line in lines):
        lines += [f"† from {args.earlier} (tasks with no run under {args.root}).", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
