"""The score table: one row per (item, option, head). Everything after scoring reads it.

Stored as parquet (columns + run metadata in the file's key-value metadata) or JSONL (first line
``{"_meta": ...}``, then one row per line), whichever suffix the path has.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, ResultMissing
from ..io import atomic_path

COLUMNS = ("item_id", "option", "head", "loglik", "n_tokens", "n_chars", "gold", "greedy", "truncated")
_TYPES = {"item_id": str, "option": int, "head": str, "loglik": float, "n_tokens": int, "n_chars": int,
          "gold": bool, "greedy": bool, "truncated": bool}


@dataclass
class ScoreTable:
    columns: dict[str, list] = field(default_factory=lambda: {c: [] for c in COLUMNS})
    meta: dict = field(default_factory=dict)

    @classmethod
    def empty(cls) -> "ScoreTable":
        return cls()

    def __len__(self) -> int:
        return len(self.columns["item_id"])

    def append(self, **row) -> None:
        for c in COLUMNS:
            self.columns[c].append(_TYPES[c](row[c]))

    def heads(self) -> list[str]:
        return list(dict.fromkeys(self.columns["head"]))

    def rows(self):
        for i in range(len(self)):
            yield {c: self.columns[c][i] for c in COLUMNS}

    def select(self, head: str) -> "ScoreTable":
        out = ScoreTable(meta=dict(self.meta))
        for r in self.rows():
            if r["head"] == head:
                out.append(**r)
        return out

    def concat(self, other: "ScoreTable") -> "ScoreTable":
        out = ScoreTable(meta={**self.meta, **other.meta})
        for c in COLUMNS:
            out.columns[c] = self.columns[c] + other.columns[c]
        return out

    # ---- storage -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Atomic write (temporary name, then rename): a killed run never leaves half a table."""
        path = Path(path)
        if path.suffix not in (".parquet", ".jsonl"):
            raise ConfigError(f"{path}: a score table is saved as .parquet or .jsonl")
        with atomic_path(path) as tmp:
            self._write(tmp, path.suffix)
        return path

    def _write(self, tmp: Path, suffix: str) -> None:
        if suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            arrays = {c: pa.array(self.columns[c]) for c in COLUMNS}
            t = pa.table(arrays).replace_schema_metadata({"likra_meta": json.dumps(self.meta)})
            pq.write_table(t, tmp)
        else:
            with open(tmp, "w") as f:
                f.write(json.dumps({"_meta": self.meta}) + "\n")
                for r in self.rows():
                    f.write(json.dumps(r) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ScoreTable":
        path = Path(path)
        if not path.exists():
            raise ResultMissing(f"{path}: no such score table")
        out = cls()
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            import pyarrow as pa

            try:
                t = pq.read_table(path)
            except (pa.ArrowInvalid, OSError) as err:
                raise ConfigError(f"{path}: not a readable parquet file ({err}); score it again or remove it") from None
            missing = [c for c in COLUMNS if c not in t.column_names]
            if missing:
                raise ConfigError(f"{path}: not a likra score table (missing columns {missing})")
            for c in COLUMNS:
                out.columns[c] = [_TYPES[c](v) for v in t.column(c).to_pylist()]
            raw = (t.schema.metadata or {}).get(b"likra_meta")
            out.meta = json.loads(raw) if raw else {}
            return out
        with open(path) as f:
            for n, line in enumerate(f, 1):
                row = json.loads(line)
                if "_meta" in row:
                    out.meta = row["_meta"]
                    continue
                try:
                    out.append(**row)
                except KeyError as err:
                    raise ConfigError(f"{path}, line {n}: missing field {err}") from None
        return out


@dataclass
class OptionMatrix:
    """One head's scores as per-item arrays (items keep the table's order)."""

    item_ids: list[str]
    loglik: list[np.ndarray]
    n_chars: list[np.ndarray]
    n_tokens: list[np.ndarray]
    gold: np.ndarray  # gold option index per item


def option_matrix(table: ScoreTable, head: str) -> OptionMatrix:
    by_item: dict[str, dict[int, dict]] = {}
    for r in table.rows():
        if r["head"] == head:
            by_item.setdefault(r["item_id"], {})[r["option"]] = r
    if not by_item:
        raise ConfigError(f"no rows for head '{head}' (heads in the table: {table.heads()})")
    ids, ll, nc, nt, gold = [], [], [], [], []
    for item_id, opts in by_item.items():
        rows = [opts[o] for o in sorted(opts)]
        golds = [i for i, r in enumerate(rows) if r["gold"]]
        if len(golds) != 1:
            raise ValueError(f"item '{item_id}', head '{head}': {len(golds)} gold options (expected exactly one)")
        ids.append(item_id)
        ll.append(np.array([r["loglik"] for r in rows], dtype=np.float64))
        nc.append(np.array([r["n_chars"] for r in rows], dtype=np.float64))
        nt.append(np.array([r["n_tokens"] for r in rows], dtype=np.float64))
        gold.append(golds[0])
    return OptionMatrix(ids, ll, nc, nt, np.array(gold))
