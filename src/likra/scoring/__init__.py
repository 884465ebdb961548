"""Scoring: models + items -> score tables (the engine), and the table itself."""

from .table import COLUMNS, OptionMatrix, ScoreTable, option_matrix

__all__ = ["COLUMNS", "OptionMatrix", "ScoreTable", "option_matrix"]
