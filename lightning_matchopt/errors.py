"""Exceptions that name the problem and the fix; the CLI prints them as one line and exits with ``exit_code``."""


class MatchOptError(Exception):
    """Base class: any error the user can fix (bad data, bad config, bad oracle)."""

    exit_code = 2  # a usage error, as argparse reports one


class DataError(MatchOptError, ValueError):
    """A data file or array is missing, unreadable or unfit for training."""


class ConfigError(MatchOptError, ValueError):
    """A configuration value is out of its domain or unknown."""


class OracleError(MatchOptError, RuntimeError):
    """The oracle returned something that is not one finite score per design, or could not run."""


class CheckpointError(MatchOptError, RuntimeError):
    """A checkpoint to resume from cannot be read or belongs to another task or model."""


class SearchFailed(MatchOptError, RuntimeError):
    """The oracle failed in the final search; the model and the unscored designs are kept."""

    exit_code = 1  # a fault during the run, not a bad argument


class RunStopped(MatchOptError, RuntimeError):
    """Training was stopped by a signal after a completed epoch; its checkpoint is kept."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum  # what a shell reports for a process ended by that signal
