"""The one style of every figure: training examples n on a log2 axis with n = 0 (the base model) as
its own point left of a break, lines with a stated interval as a band, the base model as a line
across, every line named in the legend, and a caption under the plot that says what the bands are
and where the paper's numbers stand when its protocol is the same."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

Z95 = 1.959964  # two-sided 95% normal quantile


def axes(width: float = 6.4, height: float = 4.2, ncols: int = 1, **kw):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=(width, height), **kw)


def x_of(n: int, ns: list[int] | None = None) -> float:
    """Where n sits: log2(n), and n = 0 one and a half octaves left of the smallest n > 0."""
    if n > 0:
        return math.log2(n)
    smallest = min((m for m in ns or [] if m > 0), default=16)
    return math.log2(smallest) - 1.5


def n_axis(ax, ns: list[int]) -> None:
    """Ticks at the curve's n (thinned to fit), n = 0 labelled "0 (base)", a break mark after it."""
    ns = sorted(set(ns))
    positive = [n for n in ns if n > 0]
    step = max(1, math.ceil(len(positive) / 8))
    shown = positive[::step] + ([positive[-1]] if positive and positive[-1] not in positive[::step] else [])
    ticks = ([0] if 0 in ns else []) + shown
    ax.set_xticks([x_of(n, ns) for n in ticks], ["0\n(base)" if n == 0 else str(n) for n in ticks], fontsize=8)
    if 0 in ns and positive:
        gap = (x_of(0, ns) + x_of(positive[0])) / 2
        ax.axvline(gap, color="black", linewidth=0.6, linestyle=(0, (1, 2)), alpha=0.6)
    ax.set_xlabel("training examples n (log scale)")


def line(ax, ns: list[int], mean, half=None, label: str = "", style: str = "-o", color=None, all_ns: list[int] | None = None):
    """A curve with its interval as a band (``half``: the half-width at each point)."""
    xs = [x_of(n, all_ns or ns) for n in ns]
    mean = np.asarray(mean, dtype=float)
    (drawn,) = ax.plot(xs, mean, style, markersize=4, label=label, color=color)
    if half is not None:
        half = np.asarray(half, dtype=float)
        ax.fill_between(xs, mean - half, mean + half, alpha=0.18, color=drawn.get_color(), linewidth=0)
    return drawn


def base_line(ax, value: float, half: float | None, ns: list[int], label: str = "base model (n = 0)") -> None:
    """The base model's accuracy across the whole plot, with its interval."""
    lo, hi = x_of(0, ns) - 0.3, x_of(max(ns), ns) + 0.3
    ax.hlines(value, lo, hi, colors="black", linestyles="--", linewidth=1, label=label)
    if half:
        ax.fill_between([lo, hi], value - half, value + half, color="black", alpha=0.06, linewidth=0)
    ax.set_xlim(lo, hi)


def binomial_half(acc: float, stderr: float) -> float:
    """Half-width of the 95% interval of one accuracy (normal approximation)."""
    return Z95 * stderr


def finish(fig, ax, path: str | os.PathLike, title: str, caption: str = "", legend_axes=None,
           legend_below: bool = False) -> Path:
    """Title, grid, legend (below the axes with ``legend_below``, where points fill the whole plot),
    caption under the plot; saved as PNG."""
    import matplotlib.pyplot as plt

    for a in np.atleast_1d(legend_axes if legend_axes is not None else ax):
        a.grid(alpha=0.3)
        if legend_below:  # a fixed distance under the axes, clear of tick labels and x label at any axes height
            from matplotlib.transforms import offset_copy

            a.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 0), framealpha=0.85,
                     bbox_transform=offset_copy(a.transAxes, fig=fig, y=-34 if a.get_xlabel() else -20, units="points"))
        else:
            a.legend(fontsize=7, loc="best", framealpha=0.85)
    ax.set_title(title, fontsize=10) if title else None
    if caption:
        # Wrapped here, not by matplotlib, so that the plot can be lifted by the caption's real height.
        import textwrap

        width_pt, height_pt = fig.get_size_inches() * 72
        lines = [w for par in caption.split("\n") for w in textwrap.wrap(par, int(width_pt / (7 * 0.56))) or [""]]
        fig.text(0.01, 0.01, "\n".join(lines), fontsize=7, ha="left", va="bottom", color="#333333")
        fig.tight_layout(rect=(0, 0.015 + len(lines) * 7 * 1.3 / height_pt, 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def paper_caption(task: str, shots: int) -> str:
    """The paper's Table 1 values for the same task and shots, as a line for a caption ('' if none)."""
    from .table1 import PAPER_ROWS, load_paper_rows

    rows = [r for r in load_paper_rows(PAPER_ROWS)["rows"] if r["task"] == task and r.get("shots", shots) == shots]
    if not rows or task != "arc_challenge":  # the paper does not state HellaSwag's shots: not comparable
        return ""
    parts = [f"{r['model']}: base {r['base']:.3f}, SFT {r['sft']:.3f}, Likra {r['likra']:.3f}" for r in rows]
    return f"Paper, same protocol ({shots}-shot, all 6615 pool questions, 3B-7B models; not drawn, off this scale): " + "; ".join(parts)
