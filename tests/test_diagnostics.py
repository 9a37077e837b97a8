import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import TINY_CONFIG
from lightning_matchopt import GradientFieldDiagnostics, MatchOptDataModule, gradient_errors
from lightning_matchopt.cli import main


def test_gradient_errors_definition():
    true = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert gradient_errors(true * 3, true) == {"cosine_distance": 0.0, "relative_l2": 2.0}
    errors = gradient_errors(torch.tensor([[0.0, 1.0], [0.0, -2.0]]), true)
    assert abs(errors["cosine_distance"] - 1.5) < 1e-12  # orthogonal (1) and opposite (2)


def test_a_perfect_surrogate_has_zero_error_through_the_z_scoring():
    datamodule = MatchOptDataModule(task="shekel", task_options={"n_samples": 400}, n_bins=8)
    datamodule.setup()
    task = datamodule.task

    class Exact(torch.nn.Module):  # the true function, seen in z-scored coordinates
        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(()))

        def forward(self, z):
            x = datamodule.denormalize_x(z.double())
            return ((task.value(x) - datamodule.y_mean) / datamodule.y_std).float() + self.dummy

        def members(self, z):  # the surrogate interface the diagnostics use (one member), as MLPSurrogate's
            return self(z).unsqueeze(0)

    metrics = GradientFieldDiagnostics(alphas=[1.0, 9.0], n_points=64).measure(datamodule, Exact())
    assert all(value < 1e-4 for value in metrics.values()), metrics


@pytest.mark.slow
def test_diagnostics_are_logged_during_training(tmp_path):
    main(["fit", "--config", str(TINY_CONFIG), f"--trainer.default_root_dir={tmp_path}",
          "--trainer.callbacks+=lightning_matchopt.GradientFieldDiagnostics",
          "--trainer.callbacks.alphas=[1.0, 4.0]", "--trainer.callbacks.n_points=32"])
    (events_dir,) = {p.parent for p in tmp_path.glob("lightning_logs/version_*/events.*")}
    events = EventAccumulator(str(events_dir))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"diag/grad_cosine_a1", "diag/grad_cosine_a4", "diag/grad_rel_l2_a1", "diag/grad_rel_l2_a4"} <= tags
    assert [e.step for e in events.Scalars("diag/grad_cosine_a1")] == [1, 2]
