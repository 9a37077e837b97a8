"""Every shipped config parses and instantiates, so configs cannot rot."""

from pathlib import Path

import pytest

from conftest import REPO
from lightning_matchopt.cli import MatchOptCLI
from lightning_matchopt.data import MatchOptDataModule
from lightning_matchopt.models import MatchOptModule

TASK_CONFIGS = sorted((REPO / "configs").glob("*.yaml")) + sorted((REPO / "configs" / "official").glob("*.yaml"))
TRAINER_PRESETS = sorted((REPO / "configs" / "trainer").glob("*.yaml"))
METHODS = sorted((REPO / "configs" / "methods").glob("*.yaml"))


@pytest.mark.parametrize("config", TASK_CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_task_config_instantiates(config: Path, data_root, tmp_path):
    extra = []
    if config.name == "files.yaml":  # the example config points at the user's file: make one
        import numpy as np

        np.savez(tmp_path / "my_designs.npz", x=np.random.rand(300, 3), y=np.random.rand(300))
        extra = [f"--data.task_options={{path: {tmp_path / 'my_designs.npz'}}}"]
    cli = MatchOptCLI(
        MatchOptModule, MatchOptDataModule,
        args=["--config", str(config), f"--data.data_root={data_root}", f"--trainer.default_root_dir={tmp_path}", *extra],
        run=False,
    )
    assert cli.model.hparams.input_dim == cli.datamodule.input_dim
    assert isinstance(cli.config["seed_everything"], int)


@pytest.mark.parametrize("preset", TRAINER_PRESETS, ids=lambda p: p.name)
def test_trainer_preset_parses(preset: Path, tmp_path):
    cli = MatchOptCLI(
        MatchOptModule, MatchOptDataModule,
        args=["--config", str(REPO / "configs" / "shekel.yaml"), "--config", str(preset),
              "--trainer.accelerator=cpu", f"--trainer.default_root_dir={tmp_path}"],
        run=False,
    )
    assert cli.trainer is not None


def test_tfbind8_config_has_the_paper_settings():
    import yaml

    config = yaml.safe_load((REPO / "configs" / "tfbind8.yaml").read_text())
    assert config["trainer"]["max_epochs"] == 200 and config["data"]["n_bins"] == 128
    gm, reg = config["model"]["objectives"]
    assert gm["class_path"].endswith(".GradientMatching") and gm["init_args"]["integration_steps"] == 5
    assert reg["class_path"].endswith(".Regression") and reg["init_args"]["weight"] == 1.0  # alpha
    assert config["model"]["lr"] == 1e-4 and config["search"]["steps"] == 150 and config["search"]["n_designs"] == 128


@pytest.mark.parametrize("method", METHODS, ids=lambda p: p.name)
def test_method_overlays_change_the_model_and_search_only(method: Path, tmp_path):
    import yaml

    assert set(yaml.safe_load(method.read_text())) <= {"model", "search"}
    cli = MatchOptCLI(
        MatchOptModule, MatchOptDataModule,
        args=["--config", str(REPO / "configs" / "shekel.yaml"), "--config", str(method),
              f"--trainer.default_root_dir={tmp_path}"],
        run=False,
    )
    assert any(term.weight > 0 for term in cli.model.objectives)
    assert cli.datamodule.ensemble_size == cli.model.ensemble_size  # each member its own draws


@pytest.mark.parametrize("config", sorted((REPO / "configs" / "official").glob("*.yaml")), ids=lambda p: p.name)
def test_official_configs_have_the_official_codes_settings(config: Path):
    """gm_surrogate_traj_sampling.py: lr 1e-3 on every task, random start on TF-Bind-8 only, its buckets."""
    import yaml

    c = yaml.safe_load(config.read_text())
    assert c["trainer"]["max_epochs"] == 200 and c["data"]["n_bins"] == 128 and c["data"]["trajectories_per_batch"] == 1
    assert c["data"]["binning"] == "last_takes_remainder"
    models = "lightning_matchopt.models"
    assert c["model"] == {
        "surrogate": {
            "class_path": f"{models}.MLPSurrogate", "init_args": {"hidden_dims": [512, 128, 32], "negative_slope": 0.3},
        },
        "objectives": [
            {"class_path": f"{models}.GradientMatching", "init_args": {"weight": 1.0, "integration_steps": 5}},
            {"class_path": f"{models}.Regression", "init_args": {"weight": 1.0}},
        ],
        "lr": 1e-4,
    }
    assert c["search"]["lr"] == 1e-3 and c["search"]["steps"] == 150 and c["search"]["n_designs"] == 128
    assert c["search"]["start"] == ("random" if config.stem == "tfbind8" else "top")
    assert c["search"]["every_n_epochs"] == 20
    if config.stem == "tfbind10":
        assert c["data"]["task_options"] == {"subsample": 10000, "subsample_seed": None}  # a draw per run


def test_every_package_and_config_ships_in_the_wheel():
    # pyproject lists the packages by hand (configs/ is mapped to lightning_matchopt.configs): a new
    # subpackage missing there would work in a checkout and vanish from the wheel.
    tomllib = pytest.importorskip("tomllib")
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "lightning_matchopt").rglob("__init__.py")}
    assert set(setuptools["packages"]) == found | {"lightning_matchopt.configs"}
    assert setuptools["package-dir"] == {"lightning_matchopt.configs": "configs"}
    assert setuptools["package-data"]["lightning_matchopt.configs"] == ["**/*.yaml"]
