"""What a result records about the software that made it."""

from __future__ import annotations

import platform

from .defaults import __version__


def versions() -> dict[str, str]:
    out = {"likra": __version__, "python": platform.python_version()}
    for mod in ("torch", "transformers", "peft", "datasets"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - an optional package missing is not an error here
            out[mod] = "not installed"
    return out
