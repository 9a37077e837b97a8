"""MatchOptTrainer: Lightning's Trainer with a ``search`` stage, so that ``matchopt search`` is a subcommand."""

from __future__ import annotations

from typing import Any

import lightning as L

from lightning_matchopt.errors import ConfigError
from lightning_matchopt.search import DesignSearch


class MatchOptTrainer(L.Trainer):
    """A Trainer that can also run only the design search with a trained surrogate.

    ``search`` is ``validate``'s machinery (processes launched, checkpoint and data restored, log
    dir created) with its evaluation loop replaced by the ``DesignSearch`` callback's final
    search: the same code as the search at the end of ``fit``, so the same checkpoint and
    settings give the same designs and scores.
    """

    _search_only = False
    _search_summary: dict[str, Any] | None = None

    def search_only(
        self,
        model: L.LightningModule,
        datamodule: L.LightningDataModule | None = None,
        ckpt_path: str | None = None,
        weights_only: bool | None = None,
    ) -> dict[str, Any] | None:
        """Search with a trained surrogate, score the designs with the task's oracle, write results into a new log dir.

        Args:
            model: the module whose weights ``ckpt_path`` holds.
            datamodule: the task's data module.
            ckpt_path: checkpoint written by ``matchopt fit``.
            weights_only: as for ``Trainer.validate`` (so a fit's saved ``config.yaml``, which
                carries it, is a valid config for ``matchopt search`` too).
        """
        if not any(isinstance(c, DesignSearch) for c in self.callbacks):
            raise ConfigError("matchopt search needs the DesignSearch callback (search.*)")
        self._search_only = True
        try:
            self.validate(model, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False, weights_only=weights_only)
        finally:
            self._search_only = False
        return self._search_summary

    # The subcommand ``matchopt search``. LightningCLI names a subcommand's argument group after
    # the method, so the method keeps another name: "search" is the callback's settings (search.*).
    search = search_only

    def _run_stage(self) -> Any:
        if not self._search_only:
            return super()._run_stage()
        self.strategy.barrier("run-stage")
        callback = next(c for c in self.callbacks if isinstance(c, DesignSearch))
        callback.history = []  # the searches saved in the checkpoint belong to the training run
        module = self.lightning_module
        self._search_summary = callback.search(self, module, module.trained_epochs, final=True)
        return []
