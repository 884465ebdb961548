"""A scoring run's progress on disk, so a long run that is stopped goes on where it stopped.

Scoring 25-shot prompts or a larger model can take hours, longer than a working session or a
job's time limit. The scorer appends each finished batch to a JSON-lines file beside the table it
will write (one line per head and item: its options' log-likelihoods and greedy flags), and a
rerun of the same command reads it back and scores only what is missing. JSON keeps every float
exactly (Python writes the shortest repr that reads back to the same double), so resumed rows are
the rows first computed. A line cut short by a kill is the last one: it is dropped and rescored.
The file is removed once the table is saved.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import ConfigError
from ..tasks.base import Item

Done = dict[str, dict[int, tuple[list[float], list[bool]]]]  # head -> item index -> (log-likelihoods, greedy)


class ScoreLog:
    """Append-only record of finished (head, item) scores for one table."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.restored = 0  # (head, item) scores read back by the last load


    def load(self, items: list[Item], heads: list[str]) -> Done:
        """What an earlier run of the same scoring already finished. A line naming another item at
        its index, an unknown head or the wrong number of options means the file belongs to other
        items: refused, with the file and line, rather than mixed in."""
        done: Done = {h: {} for h in heads}
        if not self.path.exists():
            return done
        data = self.path.read_bytes()
        whole = data.rfind(b"\n") + 1
        if whole < len(data):  # a last line cut short when the run was killed: dropped (and scored again)
            os.truncate(self.path, whole)
        for n, line in enumerate(data[:whole].decode().splitlines(), 1):
            try:
                row = json.loads(line)
                i, head, item_id, s, g = row["i"], row["head"], row["id"], row["s"], row["g"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ConfigError(f"{self.path}, line {n}: not a scoring-progress line; remove the file to score afresh") from None
            if head not in done or not (0 <= i < len(items)) or items[i].id != item_id or len(s) != items[i].n_options:
                raise ConfigError(f"{self.path}, line {n}: item {item_id!r} (index {i}, head {head!r}) is not one of this run's "
                                  "items and heads; the file belongs to another scoring: remove it to score afresh")
            done[head][i] = ([float(x) for x in s], [bool(x) for x in g])
        self.restored = sum(len(d) for d in done.values())
        return done

    def append(self, head: str, items: list[Item], finished: dict[int, tuple[list[float], list[bool]]]) -> None:
        """Record one batch's results for one head (flushed at once, so a kill loses at most this batch)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            for i, (s, g) in finished.items():
                f.write(json.dumps({"i": i, "head": head, "id": items[i].id, "s": s, "g": g}) + "\n")
            f.flush()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
