"""Silence known third-party noise that says nothing about the run (the CLI and the notebook call it).

Each filter names one message and why it is noise; the project's own warnings are never touched.
"""

from __future__ import annotations

import logging
import warnings

# Lightning's product tips, printed on every run (logger_connector.py, callback_connector.py).
_TIPS = ("💡 Tip:",)


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_TIPS)


def silence_third_party_noise() -> None:
    """Filter the warnings and log lines below; safe to call more than once."""
    # Lightning's own _pytree helper (lightning/pytorch/utilities/_pytree.py) builds a LeafSpec,
    # which torch >= 2.10 deprecates; nothing a user can change.
    warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning)
    # The tips advertise cloud services (litlogger, litmodels); they go through the rank-zero loggers.
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in logger.filters):
            logger.addFilter(_DropTips())
