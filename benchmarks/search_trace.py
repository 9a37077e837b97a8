"""The oracle's scores along a search (``results.json``'s ``trace``, from ``--search.trace_every N``) as a table.

    matchopt search --config RUN/config.yaml --ckpt_path RUN/checkpoints/last.ckpt --search.trace_every 10 \\
        --trainer.default_root_dir runs/trace
    python benchmarks/search_trace.py runs/trace/lightning_logs/version_0/results.json > trace.md

A diagnosis of where along the ascent the designs gain or lose, not a way to choose a setting.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def trace_table(results: dict) -> str:
    """One row per traced step: score_100th, score_50th and the mean over the designs."""
    rows = ["| step | score_100th | score_50th | score_mean |", "|---|---|---|---|"]
    for point in results["trace"]:
        rows.append(f"| {point['step']} | {point['score_100th']:.3f} | {point['score_50th']:.3f} | {point['score_mean']:.3f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="a results.json written with search.trace_every > 0")
    results = json.loads(parser.parse_args().results.read_text())
    if not results.get("trace"):
        parser.error("this results.json has no trace: search again with --search.trace_every N")
    print(f"{results['task']}, seed {results['seed']}, epoch {results['epoch']}: the oracle's scores along the search\n")
    print(trace_table(results))


if __name__ == "__main__":
    main()
