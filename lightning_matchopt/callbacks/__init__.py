"""The project's Lightning callbacks: checkpoints, stop signals, the prediction writer, diagnostics."""

from lightning_matchopt.callbacks.checkpoints import EpochCheckpoint
from lightning_matchopt.callbacks.diagnostics import GradientFieldDiagnostics
from lightning_matchopt.callbacks.prediction import PredictionWriter
from lightning_matchopt.callbacks.signals import StopOnSignal

__all__ = ["EpochCheckpoint", "GradientFieldDiagnostics", "PredictionWriter", "StopOnSignal"]
