"""The grid runner: independent runs in parallel, skipped when done, summarized with ranks."""

import csv
import json
from pathlib import Path

import pytest

from conftest import TINY_CONFIG
from lightning_matchopt.cli import main
from lightning_matchopt.grid import mean_normalized_ranks


def test_mean_normalized_rank():
    rows = [
        {"task": "a", "method": "x", "score_100th": 0.9}, {"task": "a", "method": "y", "score_100th": 0.5},
        {"task": "b", "method": "x", "score_100th": 0.1}, {"task": "b", "method": "y", "score_100th": 0.7},
        {"task": "b", "method": "y", "score_100th": 0.5},
    ]
    assert mean_normalized_ranks(rows, ["x", "y"], ["a", "b"], "score_100th") == {"x": 1.5, "y": 1.5}
    rows.append({"task": "a", "method": "y", "score_100th": 1.0})  # a: y mean 0.75 < 0.9
    assert mean_normalized_ranks(rows, ["x", "y"], ["a", "b"], "score_100th")["x"] == 1.5


@pytest.mark.slow
def test_grid_runs_in_parallel_resumes_and_writes_the_table(tmp_path, capsys):
    args = ["grid", "--tasks", str(TINY_CONFIG), "--methods", "methods/matchopt", "methods/regression", "--seeds", "0", "1",
            "--root", str(tmp_path), "--workers", "2", "--", "--trainer.max_epochs=1", "--search.trace_every=10"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 0
    assert "4 runs, 0 already done, 4 to run" in capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "runs.csv").open()))
    assert {(r["method"], r["seed"]) for r in rows} == {(m, s) for m in ("matchopt", "regression") for s in "01"}
    table = (tmp_path / "results.md").read_text()
    assert "| tiny |" in table and "MNR (score_100th)" in table and "D(best)" in table
    assert (tmp_path / "scores.png").stat().st_size > 0 and (tmp_path / "scores_by_epoch.png").is_file()
    assert (tmp_path / "scores_by_step.png").stat().st_size > 0  # traced final searches
    fit_log = (tmp_path / "tiny" / "matchopt" / "seed_0" / "fit.log").read_text()
    assert "no last checkpoint available" not in fit_log  # a fresh cell is not told to resume
    with pytest.raises(SystemExit):
        main(args)
    assert "4 runs, 4 already done, 0 to run" in capsys.readouterr().out


def test_a_cell_resumes_only_when_it_has_a_checkpoint(tmp_path):
    from lightning_matchopt.commands.grid.run import Run, cell_command

    run = Run(Path("tfbind8.yaml"), Path("methods/matchopt.yaml"), 0, tmp_path)
    assert not any(arg.startswith("--ckpt_path") for arg in cell_command(run, []))
    checkpoints = run.run_dir / "lightning_logs" / "version_0" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "last.ckpt").write_bytes(b"")
    assert "--ckpt_path=last" in cell_command(run, ["--trainer.max_epochs=1"])


def test_table_shows_every_reference_beside_the_methods():
    from lightning_matchopt.grid import markdown_table

    reference = {"draws": 2000, "score_100th": 0.939, "score_100th_std": 0.037, "score_50th": 0.439, "score_50th_std": 0.02}
    rows = [
        {"task": "tfbind8", "method": "matchopt", "seed": s, "score_100th": v, "score_50th": 0.5, "d_best": 0.439,
         "random_designs": reference}
        for s, v in enumerate((0.9, 1.0))
    ]
    published = {"columns": [
        {"label": "anchor", "note": "others' runs.",
         "tasks": {"tfbind8": {"score_100th": [0.824, 0.067], "score_50th": [0.435, None]}}},
        {"label": "best", "tasks": {"tfbind8": {"score_100th": [0.977, 0.004]}}},  # a 100th alone
    ]}
    table = markdown_table(rows, ["matchopt"], ["tfbind8", "superconductor"], published)
    header, _, tfbind8, superconductor = table.splitlines()[:4]
    assert header == "| task | matchopt | D(best) | 128 random designs | anchor | best |"
    assert tfbind8 == ("| tfbind8 | 0.950 ± 0.050 / 0.500 ± 0.000 (n=2) | 0.439 | 0.939 ± 0.037 / 0.439 (2,000 draws) "
                       "| 0.824 ± 0.067 / 0.435 | 0.977 ± 0.004 / - |")
    wide = [{**r, "random_designs": {**reference, "n_designs": 1000}} for r in rows]  # a search of 1,000 designs
    assert "0.939 ± 0.037 / 0.439 (2,000 draws of 1,000 designs)" in markdown_table(wide, ["matchopt"], ["tfbind8"])
    assert superconductor.endswith("| nan | - | - | - |")  # no runs, no reference, no anchor: said, not invented
    assert "MNR" not in table and "anchor: others' runs." in table
    assert "uniform over the design space for Design-Bench's sequence tasks" in table  # no law recorded: the old runs'
    recorded = [{**r, "random_designs": {**reference, "law": "uniform over the design space"}} for r in rows]
    own = [{**r, "task": "my-ehrlich", "random_designs": {**reference, "law": "its generator"}} for r in rows]
    notes = markdown_table(recorded + own, ["matchopt"], ["tfbind8", "my-ehrlich"])
    assert "(uniform over the design space for tfbind8; its generator for my-ehrlich)" in notes  # each run's own law


def test_cells_say_how_often_runs_beat_random_designs_and_how_many_designs_were_infeasible(tmp_path):
    from lightning_matchopt.commands.grid.report import write_runs
    from lightning_matchopt.grid import markdown_table

    reference = {"draws": 2000, "score_100th": 0.9, "score_100th_std": 0.03, "score_50th": 0.4, "score_50th_std": 0.02}
    rows = [
        {"task": "sequences", "method": "matchopt", "seed": s, "score_100th": 0.9, "score_50th": 0.5, "d_best": 0.4,
         "n_infeasible": n, "random_designs": {**reference, "beats_100th": b100, "beats_50th": b50}}
        for s, (n, b100, b50) in enumerate(((3, 0.5, 1.0), (0, 0.7, 0.9)))
    ]
    table = markdown_table(rows, ["matchopt"], ["sequences"])
    assert "0.900 ± 0.000 / 0.500 ± 0.000 (n=2; beats random 60% / 95%; 1.5 infeasible)" in table
    assert "beats random: the share of the random-design draws" in table and "infeasible: designs the oracle" in table
    feasible = [{**r, "n_infeasible": 0} for r in rows]
    assert "infeasible" not in markdown_table(feasible, ["matchopt"], ["sequences"])  # none proposed: not said
    no_reference = [{**r, "random_designs": None} for r in feasible]
    assert "(n=2) |" in markdown_table(no_reference, ["matchopt"], ["sequences"])
    write_runs(rows, tmp_path / "runs.csv")
    written = list(csv.DictReader((tmp_path / "runs.csv").open()))
    assert [(r["n_infeasible"], r["beats_random_100th"], r["beats_random_50th"]) for r in written] == [
        ("3", "0.5", "1.0"), ("0", "0.7", "0.9")]


def test_earlier_runs_fill_missing_cells_and_are_marked(tmp_path):
    from lightning_matchopt.grid import Run, earlier_rows, markdown_table

    earlier = tmp_path / "runs.csv"
    earlier.write_text(
        "task,method,seed,score_100th,score_50th,score_mean,d_best,epoch\n"
        "tfbind8,coms,0,0.9,0.5,0.5,0.439,50\n"
        "tfbind8,coms,1,0.8,0.6,0.5,0.439,50\n"
        "tfbind8,matchopt,0,0.1,0.1,0.1,0.439,200\n"  # a cell this grid ran itself: not taken
    )
    runs = [Run(Path("tfbind8.yaml"), Path(f"{m}.yaml"), s, tmp_path) for m in ("matchopt", "coms") for s in (0, 1)]
    done = {("tfbind8", "matchopt", 0), ("tfbind8", "matchopt", 1)}
    rows = earlier_rows([earlier], runs, done)
    assert [(r["method"], r["seed"], r["source"]) for r in rows] == [("coms", 0, str(earlier)), ("coms", 1, str(earlier))]
    table = markdown_table(rows, ["coms"], ["tfbind8"])
    assert "0.850 ± 0.050 / 0.550 ± 0.050 (n=2, 2 from an earlier grid†)" in table
    assert f"† runs read from an earlier grid's {earlier}" in table


@pytest.mark.slow
def test_an_overlay_that_differs_only_in_search_reuses_the_trained_surrogates(tmp_path, capsys):
    """The lcb cells search with the ensemble cells' last.ckpt: no second training, the scores of a full fit."""
    args = ["grid", "--tasks", str(TINY_CONFIG), "--methods", "methods/matchopt-ensemble", "methods/matchopt-ensemble-lcb",
            "--seeds", "0", "--root", str(tmp_path / "grid"), "--", "--trainer.max_epochs=1",
            "--model.surrogate=lightning_matchopt.models.EnsembleMLP", "--model.surrogate.ensemble_size=2"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "matchopt-ensemble-lcb differs from matchopt-ensemble only in search.*" in out
    assert "tiny / matchopt-ensemble / seed 0: fit ok" in out and "tiny / matchopt-ensemble-lcb / seed 0: search ok" in out
    lcb_dir = tmp_path / "grid" / "tiny" / "matchopt-ensemble-lcb" / "seed_0"
    assert not list(lcb_dir.rglob("*.ckpt"))  # nothing trained there
    (searched,) = lcb_dir.glob("lightning_logs/version_*/results.json")
    searched = json.loads(searched.read_text())
    assert searched["final"] and searched["search"]["objective"] == "lcb"

    main(["fit", "--config", str(TINY_CONFIG), "--config", "methods/matchopt-ensemble-lcb", "--trainer.max_epochs=1",
          "--model.surrogate=lightning_matchopt.models.EnsembleMLP", "--model.surrogate.ensemble_size=2", "--seed_everything=0",
          f"--trainer.default_root_dir={tmp_path / 'fit'}"])  # the same cell as a full fit
    (fitted,) = (tmp_path / "fit").glob("lightning_logs/version_*/results.json")
    fitted = json.loads(fitted.read_text())
    for key in ("score_100th", "score_50th", "predicted_mean", "predicted_std"):
        assert searched[key] == fitted[key], key
