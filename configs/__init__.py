"""The shipped configs: this folder is installed as ``lightning_matchopt.configs``.

``matchopt fit --config NAME`` finds ``NAME.yaml`` here from any folder (``matchopt configs``
lists them); see ``lightning_matchopt/commands/config_names.py``.
"""
