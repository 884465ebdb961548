"""likra's own error types: what a user can fix (a bad row, a bad config, a missing model, a
refused adapter or output folder). The command line prints these in one line with exit code 2;
anything else is a bug in likra and keeps its traceback."""

from __future__ import annotations


class LikraError(Exception):
    """A failure the user can act on; the message names the file, row or field and the fix."""


class ConfigError(LikraError, ValueError):
    """A config file or flag that cannot be used (unknown key, wrong type, missing option)."""


class OutputRefused(LikraError):
    """An output folder that holds another command's or other settings' results."""


class AdapterRefused(LikraError, ValueError):
    """An adapter folder that cannot be loaded as a head of this base model."""


class ResultMissing(LikraError, FileNotFoundError):
    """An experiment's input (a run, a score table, a curve) that is not on disk."""


class InputRefused(LikraError, ValueError):
    """An item, option or question that cannot be scored (empty text, too long), named in the message."""
