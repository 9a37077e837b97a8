"""The package's layout: old import paths still resolve, light commands stay light, rooms stay small."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lightning_matchopt"
HEAVY = ("torch", "lightning", "pytorch_lightning", "torchmetrics")

# Import paths users' code and saved config.yaml files name (class_path), and where they live now.
OLD_PATHS = {
    "lightning_matchopt.signals.StopOnSignal": "lightning_matchopt.callbacks.signals.StopOnSignal",
    "lightning_matchopt.checkpoints.EpochCheckpoint": "lightning_matchopt.callbacks.checkpoints.EpochCheckpoint",
    "lightning_matchopt.predict.PredictionWriter": "lightning_matchopt.callbacks.prediction.PredictionWriter",
    "lightning_matchopt.diagnostics.GradientFieldDiagnostics":
        "lightning_matchopt.callbacks.diagnostics.GradientFieldDiagnostics",
    "lightning_matchopt.GradientFieldDiagnostics": "lightning_matchopt.callbacks.diagnostics.GradientFieldDiagnostics",
    "lightning_matchopt.PredictionWriter": "lightning_matchopt.callbacks.prediction.PredictionWriter",
    "lightning_matchopt.search.DesignSearch": "lightning_matchopt.search.callback.DesignSearch",
    "lightning_matchopt.DesignSearch": "lightning_matchopt.search.callback.DesignSearch",
    "lightning_matchopt.cli.main": "lightning_matchopt.commands.main",
    "lightning_matchopt.cli.MatchOptCLI": "lightning_matchopt.commands.cli.MatchOptCLI",
    "lightning_matchopt.grid.markdown_table": "lightning_matchopt.commands.grid.report.markdown_table",
    "lightning_matchopt.config_names.resolve": "lightning_matchopt.commands.config_names.resolve",
    "lightning_matchopt.datafetch.fetch_task": "lightning_matchopt.fetching.fetch.fetch_task",
    "lightning_matchopt.tasks.Shekel": "lightning_matchopt.tasks.synthetic.Shekel",
}


def resolve(path: str):
    """What jsonargparse does with a class_path: import the module, then take the attribute."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("old", OLD_PATHS)
def test_old_import_paths_resolve_to_the_moved_objects(old):
    assert resolve(old) is resolve(OLD_PATHS[old])


def test_a_config_naming_an_old_class_path_still_instantiates():
    from jsonargparse import ArgumentParser
    from lightning.pytorch.callbacks import Callback

    from lightning_matchopt.callbacks import StopOnSignal

    parser = ArgumentParser()
    parser.add_argument("--callback", type=Callback)
    config = parser.parse_args(["--callback", '{"class_path": "lightning_matchopt.signals.StopOnSignal"}'])
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes  # renamed in 4.49
    assert isinstance(instantiate(config).callback, StopOnSignal)


def test_the_task_registry_names_each_class_by_its_own_name():
    from lightning_matchopt.tasks import TASKS

    assert all(TASKS[name].name == name for name in TASKS)


def heavy_modules_after(code: str, cwd: Path) -> list[str]:
    """The heavy packages a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport sys\nprint(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return eval(done.stdout.strip().splitlines()[-1])


def test_matchopt_data_list_imports_neither_torch_nor_lightning(tmp_path):
    code = (
        "from lightning_matchopt.commands import main\ntry:\n    main(['data', 'list'])\nexcept SystemExit as e:\n"
        "    assert e.code == 0"
    )
    assert heavy_modules_after(code, tmp_path) == []


@pytest.mark.slow
def test_a_hopper_oracle_worker_imports_neither_torch_nor_lightning(tmp_path):
    pytest.importorskip("mujoco")
    pytest.importorskip("gymnasium")
    import numpy as np

    from lightning_matchopt.tasks.oracles.hopper import N_PARAMS

    np.save(tmp_path / "designs.npy", np.zeros((1, N_PARAMS)))
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['hopper', {str(tmp_path / 'designs.npy')!r}, '0', '1', '0']\n"
        "runpy.run_module('lightning_matchopt.tasks.oracles.hopper', run_name='__main__')"
    )
    assert heavy_modules_after(code, tmp_path) == []


def test_no_module_is_over_400_lines():
    lengths = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {path: n for path, n in lengths.items() if n > 400} == {}


def test_the_readme_stays_a_front_page_and_the_search_callback_a_thin_room():
    """README: at most 150 lines (the rest is in docs/); the callback: hooks, ranks and failure policy only."""
    readme = (PACKAGE.parent / "README.md").read_text().splitlines()
    callback = (PACKAGE / "search" / "callback.py").read_text().splitlines()
    assert len(readme) <= 150, f"README.md has {len(readme)} lines: move detail into a docs/ page"
    assert len(callback) <= 180, f"search/callback.py has {len(callback)} lines: move a step into its own module"


def test_every_private_attribute_in_compat_exists_in_the_installed_releases(tmp_path):
    """compat.PRIVATE_ATTRIBUTES on the installed Lightning / jsonargparse / torch (a new release: check here)."""
    import argparse

    import jsonargparse
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import TensorBoardLogger
    from torch.utils.tensorboard import SummaryWriter

    from lightning_matchopt import compat

    parser = jsonargparse.ArgumentParser()
    instances = {  # attributes that Lightning and argparse set in __init__ are looked for on an instance
        "lightning.pytorch.Trainer": pl.Trainer,
        "lightning.pytorch.callbacks.ModelCheckpoint": pl.callbacks.ModelCheckpoint(),
        "lightning.pytorch.loggers.TensorBoardLogger": TensorBoardLogger(str(tmp_path)),
        "torch.utils.tensorboard.SummaryWriter": SummaryWriter,
        "lightning.pytorch.core.module.LightningModule": pl.LightningModule(),
        "jsonargparse.ArgumentParser": parser,
        "argparse._SubParsersAction": parser.add_subcommands(),
        "lightning.pytorch.cli.LightningCLI": pl.cli.LightningCLI,
    }
    assert isinstance(instances["argparse._SubParsersAction"], argparse._SubParsersAction)
    missing = [(owner, name) for owner, name, *_ in compat.PRIVATE_ATTRIBUTES if not hasattr(instances[owner], name)]
    assert missing == []


def test_a_missing_optional_dependency_is_named_with_its_extra(monkeypatch):
    from lightning_matchopt.extras import missing

    monkeypatch.setitem(sys.modules, "sklearn", None)  # looks uninstalled
    assert missing("numpy", extra="oracles") is None
    assert missing("numpy", "sklearn", "no_such_module", extra="oracles") == (
        "needs scikit-learn and no_such_module: pip install 'lightning_matchopt[oracles]'"
    )
