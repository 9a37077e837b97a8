"""configs/published/: each baseline as its authors ran it instantiates, cites its source, and runs
end to end at a small size."""

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from conftest import REPO, TINY_CONFIG
from lightning_matchopt.cli import MatchOptCLI, main
from lightning_matchopt.data import MatchOptDataModule
from lightning_matchopt.models import GaussianMLP, LagrangianConservative, MatchOptModule, MLPSurrogate, Regression

PUBLISHED = sorted((REPO / "configs" / "published").glob("*/*.yaml"))


@pytest.mark.parametrize("config", PUBLISHED, ids=lambda p: f"{p.parent.name}/{p.stem}")
@pytest.mark.slow
def test_published_config_instantiates_and_cites_its_source(config: Path, data_root, tmp_path):
    text = config.read_text()
    assert (
        text.startswith("# ") and " @ " in text.splitlines()[0]
    )  # repository @ commit on the first line
    cli = MatchOptCLI(
        MatchOptModule,
        MatchOptDataModule,
        args=[
            "--config",
            str(config),
            f"--data.data_root={data_root}",
            f"--trainer.default_root_dir={tmp_path}",
        ],
        run=False,
    )
    method, settings = config.parent.name, yaml.safe_load(text)
    surrogate = cli.model.surrogate
    if method.startswith("grad"):
        assert isinstance(surrogate, GaussianMLP) and surrogate.ensemble_size == (
            1 if method == "grad" else 5
        )
        assert (
            cli.datamodule.ensemble_size == surrogate.ensemble_size
        )  # each member its own bootstrap
        assert (
            settings["search"]["optimizer"] == "gradient"
            and settings["search"]["step_rule"] == "sqrt_dim"
        )
    elif method == "coms":
        assert isinstance(surrogate, MLPSurrogate) and surrogate.negative_slope == 0  # ReLU
        assert surrogate.initialization == "glorot"
        reg, cons = cli.model.objectives
        assert type(reg) is Regression and type(cons) is LagrangianConservative and cons.steps == 50
        search = settings["search"]
        assert search["optimizer"] == "gradient" and search["step_rule"] == "sqrt_dim" and search["steps"] == 50
        # the same particle_lr * sqrt(d) finds x_adv in training and moves the designs in the search
        assert cons.step_size == pytest.approx(search["lr"] * cli.datamodule.input_dim**0.5, rel=1e-12)
        assert cli.datamodule.standardize_x == (config.stem == "superconductor")  # --normalize-xs
        assert cli.datamodule.lists.length == 128 and not cli.datamodule.lists.bootstrap
    else:
        assert isinstance(surrogate, MLPSurrogate) and surrogate.negative_slope == 0  # ReLU
        assert settings["search"]["standardize"] and settings["search"]["optimizer"] == "adam"
        assert cli.datamodule.lists.length == (1000 if "no-aug" not in method else 128)


def tiny(tmp_path, name, *overlay_lines):
    overlay = tmp_path / f"{name}.yaml"
    overlay.write_text("\n".join(overlay_lines) + "\n")
    main(
        [
            "fit",
            "--config",
            str(TINY_CONFIG),
            "--config",
            str(overlay),
            f"--trainer.default_root_dir={tmp_path / name}",
        ]
    )
    log_dir = tmp_path / name / "lightning_logs" / "version_0"
    return json.loads((log_dir / "results.json").read_text()), log_dir


@pytest.mark.slow  # an ensemble fit
def test_grad_mean_at_a_small_size_trains_by_likelihood_and_climbs_the_members_min(tmp_path):
    results, log_dir = tiny(
        tmp_path,
        "grad",
        "data:",
        "  lists:",
        "    class_path: lightning_matchopt.data.RowLists",
        "    init_args: {length: 16, lists_per_batch: 1, bootstrap: true}",
        "model:",
        "  surrogate:",
        "    class_path: lightning_matchopt.models.GaussianMLP",
        "    init_args: {hidden_dims: [16, 16], ensemble_size: 2}",
        "  objectives: [{class_path: lightning_matchopt.models.GaussianLikelihood}]",
        "search: {optimizer: gradient, step_rule: sqrt_dim, lr: 0.01, objective: min}",
    )
    assert results["search"]["step_size"] == pytest.approx(0.01 * 2)  # shekel's d = 4
    assert results["search"]["optimizer"] == "gradient" and results["predicted_std"] > 0
    scalars = (log_dir / "hparams.yaml").read_text()
    assert "GaussianLikelihood" in scalars


@pytest.mark.slow
def test_ram_at_a_small_size_ranks_lists_and_standardizes_its_search(tmp_path):
    results, log_dir = tiny(
        tmp_path,
        "ram",
        "data:",
        "  val_fraction: 0",
        "  lists:",
        "    class_path: lightning_matchopt.data.RowLists",
        "    init_args: {length: 20, lists_per_batch: 4, n_lists: 12}",
        "model:",
        "  surrogate:",
        "    class_path: lightning_matchopt.models.MLPSurrogate",
        "    init_args: {hidden_dims: [16, 16], negative_slope: 0.0}",
        "  objectives: [{class_path: lightning_matchopt.models.ListNet}]",
        "  weight_decay: 1.0e-5",
        "search: {standardize: true, lr: 0.1, steps: 5}",
    )
    assert results["search"]["standardize"] and results["final"]
    module = MatchOptModule.load_from_checkpoint(log_dir / "checkpoints" / "last.ckpt")
    assert [type(t).__name__ for t in module.objectives] == ["ListNet"]
    assert module.configure_optimizers().param_groups[0]["weight_decay"] == 1e-5
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    assert len(events.Scalars("train/loss_listnet")) == 2  # one an epoch


@pytest.mark.slow
def test_coms_at_a_small_size_tunes_alpha_and_climbs_with_plain_steps(tmp_path):
    results, log_dir = tiny(
        tmp_path,
        "coms",
        "data:",
        "  standardize_x: false",
        "  lists:",
        "    class_path: lightning_matchopt.data.RowLists",
        "    init_args: {length: 16, lists_per_batch: 1}",
        "model:",
        "  surrogate:",
        "    class_path: lightning_matchopt.models.MLPSurrogate",
        "    init_args: {hidden_dims: [16, 16], negative_slope: 0.0, initialization: glorot}",
        "  objectives:",
        "  - class_path: lightning_matchopt.models.Regression",
        "  - class_path: lightning_matchopt.models.LagrangianConservative",
        "    init_args: {steps: 3, step_size: 0.1, initial_alpha: 0.1, alpha_lr: 0.01, target: -1.0}",
        "search: {optimizer: gradient, step_rule: sqrt_dim, lr: 0.05, steps: 5}",
    )
    assert results["search"]["step_size"] == pytest.approx(0.05 * 2)  # shekel's d = 4
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    alphas = [event.value for event in events.Scalars("train/alpha")]  # one an epoch
    assert len(alphas) == 2 and len(events.Scalars("train/loss_lagrangian_cons")) == 2
    # The ascent raises g, so the penalty is above the target of -1 at every step: alpha only grows,
    # each of Adam's steps on log alpha about alpha_lr (the gradient keeps its sign).
    steps = torch.load(log_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert 0.1 < alphas[0] < alphas[1]
    assert 0.5 * 0.01 * steps < math.log(alphas[1] / 0.1) < 1.5 * 0.01 * steps
    module = MatchOptModule.load_from_checkpoint(log_dir / "checkpoints" / "last.ckpt")
    (cons,) = [t for t in module.objectives if isinstance(t, LagrangianConservative)]
    assert float(cons.log_alpha.detach().exp()) == pytest.approx(alphas[1], rel=1e-6)  # the tuned alpha is saved


def test_unstandardized_features_are_the_raw_features(data_root):
    raw = MatchOptDataModule(task="tfbind8", data_root=str(data_root), val_fraction=0.0152, standardize_x=False)
    raw.setup()
    features = raw.task.to_features(raw.task.data.x)
    assert torch.equal(raw.table.x, torch.from_numpy(features)[raw.train_rows])  # the logits as they are
    z = MatchOptDataModule(task="tfbind8", data_root=str(data_root), val_fraction=0.0152)
    z.setup()
    assert torch.equal(z.train_rows, raw.train_rows) and z.table.x.std(0).sub(1).abs().max() < 1e-3
