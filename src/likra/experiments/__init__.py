"""The experiments, one recipe module each, and the registry that finds them.

Importing this package declares every command (``likra.command.COMMANDS``) and every report
section (``SECTIONS``): the CLI, ``likra reproduce`` and ``likra report`` look recipes up here and
never re-implement a step. Recipe modules import only light modules at the top; torch and the
models load when a recipe scores.
"""

from __future__ import annotations

from . import compare, curve, evaluate, mass, negtypes, scaling, sweep, table1, train  # noqa: F401  (each declares its command)
from .curve import CURVE_RULES, curve_accuracies, plot_curve, score_curve
from .mass import MASS_CATEGORIES, mass_changes, mass_items
from .negtypes import negative_type_accuracies
from .sweep import sweep_from_curve
from .table1 import load_paper_rows, table1_markdown, table1_row

__all__ = ["CURVE_RULES", "MASS_CATEGORIES", "curve_accuracies", "load_paper_rows", "mass_changes", "mass_items",
           "negative_type_accuracies", "plot_curve", "score_curve", "sweep_from_curve", "table1_markdown", "table1_row"]
