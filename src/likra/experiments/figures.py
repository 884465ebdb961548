"""The common style of every figure: a log2 axis of training examples, a grid, a legend, PNG."""

from __future__ import annotations

import os
from pathlib import Path


def axes(width: float = 6.0, height: float = 4.0, ncols: int = 1, **kw):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=(width, height), **kw)


def x_of(n: int) -> int:
    """Where curve point n sits on the log2 axis (n = 0 at the left edge, 8)."""
    return max(n, 8)


def finish(fig, ax, path: str | os.PathLike, title: str) -> Path:
    """Title, grid, legend, saved as PNG."""
    import matplotlib.pyplot as plt

    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
