"""Tasks: benchmark data -> items (contexts, continuations, gold) exactly as lm-eval builds them."""

from .base import DataError, Doc, Item, TaskSpec, build_items
from .load import DataUnavailable, TaskItems, load_docs, load_items, load_pool, resolve_spec
from .registry import GROUPS, POOLS, TASKS, task_names

__all__ = [
    "DataError", "DataUnavailable", "Doc", "Item", "TaskItems", "TaskSpec", "GROUPS", "POOLS", "TASKS",
    "build_items", "load_docs", "load_items", "load_pool", "resolve_spec", "task_names",
]
