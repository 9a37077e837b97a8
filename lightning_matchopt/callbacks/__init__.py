"""The project's Lightning callbacks: checkpoints, stop signals, a failed start's cleanup, the prediction writer, diagnostics."""

from lightning_matchopt.callbacks.checkpoints import EpochCheckpoint
from lightning_matchopt.callbacks.diagnostics import GradientFieldDiagnostics
from lightning_matchopt.callbacks.failed_start import DiscardFailedStart
from lightning_matchopt.callbacks.prediction import PredictionWriter
from lightning_matchopt.callbacks.signals import StopOnSignal

__all__ = ["DiscardFailedStart", "EpochCheckpoint", "GradientFieldDiagnostics", "PredictionWriter", "StopOnSignal"]
