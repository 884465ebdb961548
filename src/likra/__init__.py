"""likra: likelihood-ratio language models that learn from negative examples.

``likra.train(...)`` trains a head from Python; ``likra.LikraModel`` scores with two heads. Both load
lazily: ``import likra`` stays light (no torch) for the command line and for tools that only read results.
"""

from __future__ import annotations

from typing import Any

from .defaults import DEFAULT_MODEL, __version__  # noqa: F401  (the package's constants)


def train(**options: Any) -> list:
    """Train a head (or a TRL baseline) as ``likra train`` does; returns the adapter folders (Paths).

    The keywords are the command's options, ``likra.experiments.train.TrainOptions`` (``pool``,
    ``role``, ``out``, ``examples``, ``seed``, ``negatives``, ``lr``, ... and ``config``, a YAML file of
    them), checked as the command checks its flags: an unknown or mistyped one is an error naming
    the nearest option. The output folder is claimed and recorded as the command's, so a run begun
    here resumes from the command line and the other way round."""
    from .command import COMMANDS, check_values, load_config, to_argv
    from .experiments.runs import run_in_folder
    from .experiments.train import TrainOptions

    values = check_values(TrainOptions, options, "likra.train", in_file=False)
    if values.get("config"):
        values = {**load_config(TrainOptions, values["config"]), **values}
    opts = TrainOptions(**values)
    return run_in_folder(COMMANDS["train"], opts, to_argv("train", opts))[0]


def __getattr__(name: str) -> Any:
    if name in ("LikraModel", "LikraResult"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'likra' has no attribute '{name}'")
