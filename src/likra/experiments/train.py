"""``likra train``: one head (or a TRL baseline) on the first N questions of a pool, saving a whole
learning curve of adapters (``n-000016``, ``n-000032``, ... and the end) in one run."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..defaults import DEFAULT_MODEL
from ..command import FREE, Writes, command, option
from ..errors import ConfigError
from ..negatives import NEGATIVE_SOURCES
from ..train_config import TrainConfig

METHODS = ("likra", "dpo", "kto", "kto-rejected")


@dataclass
class TrainOptions(TrainConfig, Writes):
    model: str = option(DEFAULT_MODEL, "embedded name, local folder or hub id")
    pool: str | None = option(None, "arc (the paper's ARC pool), arc-notest, or TASK[:SPLIT] joined with + and - (e.g. hellaswag:train)")
    role: str | None = option(None, "which head: positive or negative (--head is its old spelling)", flags=("--role", "--head"),
                              choices=("positive", "negative"))
    method: str = option("likra", "likra (a head) or a TRL baseline on the same questions and near-miss negatives", choices=METHODS)
    negatives: str | None = option(None, "negative head's source: " + ", ".join(
        f"{name}:POOL" if name == "unrelated" else name for name in NEGATIVE_SOURCES) + " (default near-miss)")
    per_question: int = option(1, "negatives per question (balanced: 1)")
    examples: int | None = option(None, "train on the first N questions of the seeded order (default: all); --n is its old "
                                  "spelling, which launchers (torchrun, accelerate launch) may take for their own",
                                  flags=("--examples", "--n"))
    seed: int = option(0, "order of the pool, negative draws and LoRA initialisation")
    data_dir: str | None = option(None, "folder of the original benchmark files (or LIKRA_DATA_DIR); default: the hub")
    skip_invalid: bool = option(False, "skip bad rows of the pool (and report how many) instead of stopping")
    stop_at: int | None = option(None, "pause the run once its adapter at this curve point is saved; the same command "
                                 "without --stop-at resumes it to the end (score an early point first)")

    def __post_init__(self) -> None:
        if self.examples is not None and self.examples < 1:
            raise ConfigError(f"--examples {self.examples}: give a positive number of questions")
        if self.lr <= 0 or self.batch_size < 1 or self.epochs < 1:
            raise ConfigError("lr must be positive, batch_size and epochs at least 1")

    def hyperparameters(self) -> TrainConfig:
        return TrainConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(TrainConfig)})


def plot_train_logs(logs: dict[str, list[dict]], path: str | os.PathLike, title: str) -> Path:
    """Training loss against examples seen, one line per head (a trailing mean over 10 steps, the
    per-step losses faint behind it): whether a head converged, stalled or diverged at a glance."""
    import numpy as np

    from . import figures

    fig, ax = figures.axes()
    ns: list[int] = []
    for label, rows in logs.items():
        seen = [r["examples"] for r in rows]
        loss = np.array([r["loss"] for r in rows], dtype=float)
        csum = np.concatenate([[0.0], np.cumsum(loss)])
        k = np.arange(1, len(loss) + 1)
        smooth = (csum[k] - csum[np.maximum(k - 10, 0)]) / np.minimum(k, 10)  # mean of the last (up to) 10 steps
        drawn = figures.line(ax, seen, smooth, None, label, "-", None, seen + [0])
        ax.plot([figures.x_of(n, seen + [0]) for n in seen], loss, color=drawn.get_color(), alpha=0.2, linewidth=0.6)
        ns += seen
    figures.n_axis(ax, sorted({n for n in ns if n & (n - 1) == 0} | {max(ns)}))
    ax.set_xlabel("training examples seen (log scale)")
    ax.set_ylabel("training loss (mean NLL of the answer tokens)")
    return figures.finish(fig, ax, path, title, "Lines: mean of the last 10 steps; faint: each step's loss.")


# every setting but --stop-at must match to resume a run: pausing it is not one of its settings
COMPARE = tuple(f.name for f in dataclasses.fields(TrainOptions) if f.name not in FREE | {"stop_at"})


@command("train", "train a positive or negative LoRA head, saving a learning curve of adapters", TrainOptions,
         compare=COMPARE)
def main(o: TrainOptions, argv: list[str] | None = None) -> list[Path]:
    from ..distributed import rank_world
    from ..heads import train

    if not o.pool or (o.method == "likra" and not o.role):
        raise ConfigError("likra train needs --pool and --role (on the command line or in --config)")
    out = o.require_out("train")
    t0 = time.time()
    saved = train(model=o.model, pool=o.pool, head=o.role, out=out, negatives=o.negatives, n=o.examples, seed=o.seed,
                  data_dir=o.data_dir, config=o.hyperparameters(), per_question=o.per_question,
                  skip_invalid=o.skip_invalid, progress=not o.quiet, method=o.method, stop_at=o.stop_at)
    what = f"{o.role} head" if o.method == "likra" else f"{o.method} adapter"
    if rank_world()[0] == 0:
        paused = f" up to n = {o.stop_at} (paused: rerun without --stop-at to go on)" if o.stop_at else ""
        print(f"trained the {what}{paused} in {time.time() - t0:.0f} s\nadapters:\n" + "\n".join(f"  {p}" for p in saved))
    return saved
