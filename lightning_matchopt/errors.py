"""Exceptions that name the problem and the fix; the CLI prints them as one line."""


class MatchOptError(Exception):
    """Base class: any error the user can fix (bad data, bad config, bad oracle)."""


class DataError(MatchOptError, ValueError):
    """A data file or array is missing, unreadable or unfit for training."""


class ConfigError(MatchOptError, ValueError):
    """A configuration value is out of its domain or unknown."""


class OracleError(MatchOptError, RuntimeError):
    """The oracle returned something that is not one finite score per design."""
